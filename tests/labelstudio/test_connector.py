"""The connector's parts against the real Label Studio: what CreateExperiment refuses (and says), the
labeling configs it makes for images, text and tables, and the webhook endpoint."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pyarrow as pa
import pytest
from labelloop.controller.label_studio.content import IMAGE, TABLE, TEXT, labeling_config, layout_of
from labelloop.controller.label_studio.project import Project
from labelloop.controller.label_studio.webhook import Wakeups, serve_webhooks
from labelloop.controller.labelers.label_studio import LabelStudioLabeler
from labelloop.core.errors import FailedPrecondition, InvalidArgument, NotFound
from labelloop.v1 import dataset_store_pb2
from labelloop.v1 import experiments_pb2 as pb

from tests.labelstudio.server import LabelStudio
from tests.support.ports import free_port

pytestmark = pytest.mark.labelstudio

TOKEN_ENV = "LABELLOOP_TEST_LS_TOKEN"


def labeler(url: str, **fields: object) -> LabelStudioLabeler:
    return LabelStudioLabeler(pb.LabelStudioProject(url=url, api_token_env=TOKEN_ENV, **fields))  # type: ignore[arg-type]


def test_creation_refuses_what_a_user_must_fix(
    label_studio: LabelStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(FailedPrecondition, match=f"set the environment variable {TOKEN_ENV}"):
        labeler(label_studio.url).check()

    monkeypatch.setenv(TOKEN_ENV, label_studio.token)
    labeler(label_studio.url).check()  # a good URL and token: accepted
    with pytest.raises(
        InvalidArgument, match=re.escape("label_studio.url='label-studio:8080' is not an http")
    ):
        labeler("label-studio:8080").check()
    with pytest.raises(InvalidArgument, match=re.escape("label_studio.rules.quorum")):
        labeler(label_studio.url, rules=pb.LabelingRules(quorum=2)).check()
    with pytest.raises(FailedPrecondition, match="is unreachable"):
        labeler(f"http://127.0.0.1:{free_port()}").check()  # nothing listens there
    with pytest.raises(NotFound, match=re.escape("check label_studio.project_id")):
        labeler(label_studio.url, project_id=9999).check()

    monkeypatch.setenv(TOKEN_ENV, "not-a-token")
    with pytest.raises(FailedPrecondition, match="refused the API token"):
        labeler(label_studio.url).check()


@pytest.mark.parametrize(
    ("dataset", "schema", "kind"),
    [
        (
            dataset_store_pb2.Dataset(image_column="image_path"),
            pa.schema([("image_path", pa.string())]),
            IMAGE,
        ),
        (dataset_store_pb2.Dataset(feature_columns=["review"]), pa.schema([("review", pa.string())]), TEXT),
        (
            dataset_store_pb2.Dataset(feature_columns=["age", "city"]),
            pa.schema([("age", pa.float64()), ("city", pa.string())]),
            TABLE,
        ),
    ],
)
def test_labeling_configs_are_accepted_by_label_studio(
    label_studio: LabelStudio, dataset: dataset_store_pb2.Dataset, schema: pa.Schema, kind: str
) -> None:
    layout = layout_of(dataset, schema)
    assert layout.kind == kind
    classes = ["cat", 'say "hi"', "<b>&"]  # quoted in the XML
    project = Project(label_studio.url, label_studio.token)
    created = project.ensure(
        f"configs-{kind}", f"configs {kind}", labeling_config(classes, layout), overlap=3
    )
    details = label_studio.get(f"/api/projects/{created}/")
    assert details["maximum_annotations"] == 3
    assert set(details["parsed_label_config"]["label"]["labels"]) == set(classes)
    # Found again by its marker, not created twice.
    again = Project(label_studio.url, label_studio.token)
    assert (
        again.ensure(f"configs-{kind}", "another title", labeling_config(classes, layout), overlap=2)
        == created
    )
    assert label_studio.get(f"/api/projects/{created}/")["maximum_annotations"] == 2


def test_a_webhook_wakes_its_project_and_nothing_else() -> None:
    wakeups = Wakeups()
    server = serve_webhooks("127.0.0.1", 0, wakeups)
    url = f"http://127.0.0.1:{server.server_address[1]}/label-studio"
    try:
        body = {"action": "ANNOTATION_CREATED", "project": {"id": 7, "title": "x"}, "annotation": {"id": 1}}
        with urllib.request.urlopen(_post(url, json.dumps(body).encode()), timeout=5) as reply:
            assert reply.status == 200
        assert wakeups.event(7).is_set() and not wakeups.event(8).is_set()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(_post(url, b"not json"), timeout=5)
        assert refused.value.code == 400
    finally:
        server.shutdown()
        server.server_close()


def _post(url: str, data: bytes) -> urllib.request.Request:
    return urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
