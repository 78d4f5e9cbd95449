"""One Label Studio project through label-studio-sdk: found or created, its webhook, its tasks and
their annotations. Every SDK call goes through `_calling`, which turns Label Studio's answers into
LabelLoop errors that say what to fix (the token, the URL, the project)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labelloop.core.errors import FailedPrecondition, InvalidArgument, LabelLoopError, NotFound, Unavailable

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

DEFAULT_TOKEN_ENV = "LABEL_STUDIO_API_KEY"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PAGE_SIZE = 100
# Task data fields that tie a task to LabelLoop (the rest is what the labeler sees).
EXAMPLE_FIELD, EXPERIMENT_FIELD, ROUND_FIELD = "example_id", "labelloop_experiment", "labelloop_round"
# The batch's request id: round 0 has two batches (the first labeled set, then its selection).
BATCH_FIELD = "labelloop_batch"
# A line of a created project's description: a restarted controller finds its project by it.
MARKER = "labelloop-experiment: {experiment}"
WEBHOOK_ACTIONS = ["ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED"]


@dataclass(frozen=True)
class StudioAnnotation:
    """One annotation of a LabelLoop task, as Label Studio has it."""

    annotation_id: int
    example_id: str
    round: int
    user_id: int
    choices: tuple[str, ...]  # the classes chosen; empty when skipped or not a choice
    cancelled: bool  # the annotator skipped the task


def api_token(env_name: str) -> str:
    """The token from the controller's environment (never stored with the experiment)."""
    name = env_name or DEFAULT_TOKEN_ENV
    if not ENV_NAME.match(name):
        raise InvalidArgument(f"label_studio.api_token_env={name!r} is not an environment variable name")
    token = os.environ.get(name, "").strip()
    if not token:
        raise FailedPrecondition(
            f"the controller has no Label Studio API token: set the environment variable {name} of the "
            "controller (the token of a Label Studio user: Account & Settings > Access Token), or name "
            "another variable in label_studio.api_token_env"
        )
    return token


class Project:
    """A Label Studio server reached with one token; `project_id` once the project is known."""

    def __init__(self, url: str, token: str, project_id: int = 0, timeout: float = 30.0):
        from label_studio_sdk import LabelStudio  # the labelstudio extra: only this labeler needs it

        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a log line per request
        self.url = url.rstrip("/")
        self.project_id = project_id
        self.client: LabelStudio = LabelStudio(base_url=self.url, api_key=token, timeout=timeout)

    @contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            yield
        except ApiError as error:
            raise _api_error(self.url, what, error) from None
        except httpx.TransportError as error:
            raise Unavailable(
                f"Label Studio at {self.url} is unreachable ({what}: {type(error).__name__}: {error}): "
                "check label_studio.url as the controller reaches it, and that Label Studio runs"
            ) from None

    def probe(self) -> None:
        """Checks the URL, the token and (when set) the project, with one or two requests."""
        with self._calling("checking the token"):
            self.client.users.whoami()
        if self.project_id:
            with self._calling(f"reading project {self.project_id}"):
                self.client.projects.get(id=self.project_id)

    def ensure(self, experiment: str, title: str, label_config: str, overlap: int) -> int:
        """The experiment's project: the one named by project_id, else the one this experiment created
        before (found by the marker in its description: a restart creates no second one), else a new
        one. Its overlap is set to the annotators wanted per example."""
        marker = MARKER.format(experiment=experiment)
        if not self.project_id:
            with self._calling("listing projects"):
                for project in self.client.projects.list(page_size=PAGE_SIZE):
                    if marker in (project.description or "").splitlines():
                        self.project_id = project.id or 0
                        break
        if not self.project_id:
            with self._calling("creating the project"):
                created = self.client.projects.create(
                    title=title,
                    description=f"Labels for LabelLoop experiment {experiment}.\n{marker}",
                    label_config=label_config,
                    maximum_annotations=overlap,
                    show_collab_predictions=True,
                )
            self.project_id = created.id or 0
        else:
            with self._calling(f"setting the overlap of project {self.project_id}"):
                self.client.projects.update(id=self.project_id, maximum_annotations=overlap)
        return self.project_id

    def use_model_version(self, version: str) -> None:
        """Label Studio pre-fills tasks with the predictions of the project's model version."""
        with self._calling("setting the project's model version"):
            self.client.projects.update(id=self.project_id, model_version=version)

    def ensure_webhook(self, url: str) -> None:
        with self._calling("listing webhooks"):
            hooks = self.client.webhooks.list(project=str(self.project_id))
        if any(h.url == url for h in hooks):
            return
        with self._calling("creating the webhook"):
            self.client.webhooks.create(
                url=url,
                project=self.project_id,
                send_payload=True,
                send_for_all_actions=False,
                actions=WEBHOOK_ACTIONS,
            )

    def task_keys(self, experiment: str) -> set[tuple[str, str]]:
        """(example id, batch) of the experiment's tasks already in the project."""
        keys = set()
        for task in self._tasks(only_annotated=False):
            data = task.data or {}
            if data.get(EXPERIMENT_FIELD) == experiment:
                keys.add((str(data.get(EXAMPLE_FIELD)), str(data.get(BATCH_FIELD))))
        return keys

    def import_tasks(self, tasks: Sequence[dict[str, Any]]) -> None:
        with self._calling(f"importing {len(tasks)} tasks"):
            self.client.projects.import_tasks(id=self.project_id, request=list(tasks))  # type: ignore[arg-type]

    def annotations(self, experiment: str) -> list[StudioAnnotation]:
        """Every annotation of the experiment's tasks (submitted or skipped; drafts are not ones)."""
        found = []
        for task in self._tasks(only_annotated=True):
            data = task.data or {}
            if data.get(EXPERIMENT_FIELD) != experiment:
                continue
            for annotation in task.annotations or []:
                item = annotation if isinstance(annotation, dict) else annotation.dict()
                found.append(
                    StudioAnnotation(
                        annotation_id=int(item["id"]),
                        example_id=str(data.get(EXAMPLE_FIELD)),
                        round=int(data.get(ROUND_FIELD, -1)),
                        user_id=int(item.get("completed_by") or 0),
                        choices=_choices(item.get("result") or []),
                        cancelled=bool(item.get("was_cancelled")),
                    )
                )
        return found

    def user_emails(self) -> dict[int, str]:
        with self._calling("listing users"):
            return {u.id: u.email or u.username or str(u.id) for u in self.client.users.list() if u.id}

    def _tasks(self, only_annotated: bool) -> Iterator[Any]:
        with self._calling(f"listing the tasks of project {self.project_id}"):
            yield from self.client.tasks.list(
                project=self.project_id, fields="all", page_size=PAGE_SIZE, only_annotated=only_annotated
            )


def _choices(result: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """The classes of the first choices result (ours is named content.CHOICES_NAME; a project of the
    user's own may name it otherwise)."""
    for region in result:
        if region.get("type") == "choices":
            return tuple(str(c) for c in (region.get("value") or {}).get("choices") or ())
    return ()


def _api_error(url: str, what: str, error: Any) -> LabelLoopError:
    status, body = error.status_code, error.body
    detail = body.get("detail") if isinstance(body, dict) else body
    if status in (401, 403):
        return FailedPrecondition(
            f"Label Studio at {url} refused the API token ({what}: {status} {detail}): set a valid token "
            "in the controller's environment variable named by label_studio.api_token_env (default "
            f"{DEFAULT_TOKEN_ENV})"
        )
    if status == 404:
        return NotFound(
            f"Label Studio at {url} has no such resource ({what}): check label_studio.project_id "
            "(0 creates a project)"
        )
    if status is None or status >= 500:
        return Unavailable(f"Label Studio at {url} failed ({what}: {status} {detail}): retrying")
    return FailedPrecondition(f"Label Studio at {url} refused {what}: {status} {body}")
