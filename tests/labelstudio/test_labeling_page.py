"""What a person sees: headless Chromium opens a task's labeling page in Label Studio, logged in as the
annotator, on a small image experiment. The page shows the digit (a link the browser can open) and
LabelLoop's prediction: the header with the predicted class, and the prediction of the round's model
version pre-filled. The screenshot is kept (docs/images/label-studio-task.png is one of them)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from labelloop import presets
from labelloop.client import trainer_config
from labelloop.core.config import StorageConfig
from labelloop.sample_data import write_digits_images
from labelloop.v1 import common_pb2
from labelloop.v1 import experiments_pb2 as pb
from PIL import Image

from tests.labelstudio.browser import Browser, chromium
from tests.labelstudio.server import LabelStudio
from tests.support.cluster import client_for, cluster

pytestmark = [pytest.mark.labelstudio, pytest.mark.integration]

EXPERIMENT = "team-digits"
INITIAL, BATCH = 10, 4
# Where a run copies its screenshot when asked (LABELLOOP_UPDATE_DOCS_SCREENSHOT=1).
DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "label-studio-task.png"


def wait_for(what: str, found: Any, timeout: float = 300.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := found():
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def test_a_task_page_shows_the_image_and_labelloops_prediction(
    label_studio: LabelStudio, tmp_path: Path
) -> None:
    executable = chromium()
    if not executable:
        pytest.skip("chromium is not installed: `apt-get install -y chromium` (Debian) to look at the page")
    local = cluster(tmp_path, StorageConfig(backend="local", root=tmp_path / "store"))
    local.extra_env["LABEL_STUDIO_API_KEY"] = label_studio.token
    with local:
        client = client_for(local)
        manifest = write_digits_images(tmp_path / "data", size=96, limit=120)
        frame = pd.read_csv(manifest)
        frame.insert(0, "id", [f"img{i:03d}" for i in range(len(frame))])
        frame.to_csv(manifest, index=False)
        truth = {str(i): str(v) for i, v in zip(frame["id"], frame["label"], strict=True)}
        client.create_dataset(
            "digit-images",
            str(manifest),
            image_column="image_path",
            label_column="label",
            id_column="id",
            test_fraction=0.3,
            seed=1,
        )
        config = pb.ExperimentConfig(
            dataset="datasets/digit-images",
            initial_labels=pb.InitialLabels(count=INITIAL, selection=pb.INITIAL_SELECTION_RANDOM),
            strategy=common_pb2.STRATEGY_LEAST_CONFIDENCE,
            batch_size=BATCH,
            stopping_rule=pb.StoppingRule(max_rounds=1),
            trainer=trainer_config(**presets.preset_for("image").trainer_kwargs(), num_gpus=0),
            seed=2,
        )
        config.label_studio.CopyFrom(pb.LabelStudioProject(url=label_studio.url, reconcile_seconds=1))
        client.experiments.CreateExperiment(
            pb.CreateExperimentRequest(experiment_id=EXPERIMENT, config=config, start=True)
        )
        carol = label_studio.sign_up("carol@example.com")

        def batch(name: str, size: int) -> list[dict[str, Any]]:
            def found() -> list[dict[str, Any]]:
                experiment = client.get(EXPERIMENT)
                assert experiment.state != pb.EXPERIMENT_STATE_FAILED, experiment.status_message
                project = next(
                    (p for p in label_studio.projects() if p["title"] == f"LabelLoop {EXPERIMENT}"), None
                )
                if project is None:
                    return []
                tasks = [t for t in label_studio.tasks(project["id"]) if t["data"]["labelloop_batch"] == name]
                return tasks if len(tasks) == size else []

            return wait_for(f"batch {name}", found)

        for task in batch(f"{EXPERIMENT}-initial", INITIAL):
            carol.annotate(label_studio.url, task["id"], truth[task["data"]["example_id"]], to_name="image")
        tasks = batch(f"{EXPERIMENT}-r0-label", BATCH)
        task = tasks[0]
        predicted = task["data"]["labelloop_predicted"]
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == f"{EXPERIMENT}-r0"
        shown_score = f"{100 * prediction['score']:.2f}%"  # the prediction's tab: version and score
        assert task["data"]["image"].startswith("data:image/png;base64,")  # a local store: the bytes

        shot = tmp_path / "label-studio-task.png"
        browser = Browser(executable)
        try:
            browser.set_cookies(label_studio.url, dict(carol.session.cookies))
            browser.open(f"{label_studio.url}/projects/{task['project']}/data?task={task['id']}")
            try:
                text = browser.wait_for_text(f"predicts {predicted}", shown_score)
            finally:
                browser.screenshot(shot)  # kept in the test's folder, also when the page is wrong
            # The image's link opened in the browser (a data: URI here), once it has decoded.
            image_width = browser.wait_until(
                "Math.max(0, ...[...document.images].filter(i => i.src.startsWith('data:'))"
                ".map(i => i.naturalWidth))"
            )
            checked = browser.evaluate(
                "[...document.querySelectorAll('input[type=radio]:checked')]"
                ".map(i => (i.closest('label') || i.parentElement).innerText.trim()).filter(t => t).join('|')"
            )
            time.sleep(1)  # let the page settle before the picture
            browser.screenshot(shot)
        finally:
            browser.close()
        assert "LabelLoop model of round 0" in text
        assert image_width == 96, "the task's image did not load in the browser"
        # The prediction is pre-filled: its class is the one choice checked (shown as "6[7]": hotkey 7).
        assert checked.split("[")[0] == predicted, checked
        with Image.open(shot) as picture:
            assert picture.width == 1280 and picture.height > 600
            assert len(picture.getcolors(1 << 20) or []) > 50  # a rendered page, not a blank one
        if os.environ.get("LABELLOOP_UPDATE_DOCS_SCREENSHOT") == "1":
            shutil.copyfile(shot, DOCS_IMAGE)

        for task in tasks:
            carol.annotate(label_studio.url, task["id"], truth[task["data"]["example_id"]], to_name="image")
        experiment = client.wait(EXPERIMENT, timeout=300)
        assert experiment.state == pb.EXPERIMENT_STATE_SUCCEEDED, experiment.status_message
        client.close()
