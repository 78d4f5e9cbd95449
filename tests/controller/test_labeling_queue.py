"""The labeling queue over real gRPC (the store and the controller as processes, no trainer): round 0's
first labeled set becomes tasks; concurrent annotators lease, submit, retry, skip and let leases
expire; k-of-n overlap is blind and nobody is given an example twice; late labels are kept once; a
deadline with nothing labeled pauses the experiment; a controller restart loses no lease or label;
bad requests get statuses that say what to fix."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import grpc
import pandas as pd
import pytest
from labelloop.cli.local import LocalCluster
from labelloop.cli.main import main
from labelloop.client import LabelLoopClient
from labelloop.core import layout
from labelloop.core.storage import open_store
from labelloop.sample_data import write_digits_images
from labelloop.v1 import dataset_store_pb2 as ds
from labelloop.v1 import experiments_pb2 as pb
from labelloop.v1 import labeling_pb2 as lb

from tests.conftest import s3_config
from tests.support.cluster import LABEL_COLUMN, client_for, cluster, write_tabular_digits
from tests.support.seaweedfs import S3Server

OPEN, LEASED, DONE, CLOSED = (
    lb.TASK_STATE_OPEN,
    lb.TASK_STATE_LEASED,
    lb.TASK_STATE_DONE,
    lb.TASK_STATE_CLOSED,
)


def pool_ids(client: LabelLoopClient, dataset: str = "digits") -> list[str]:
    request = ds.ListExamplesRequest(parent=f"datasets/{dataset}", split=ds.SPLIT_POOL, page_size=1000)
    return sorted(e.example_id for e in client.store.ListExamples(request).examples)


def start_queue(
    client: LabelLoopClient, experiment_id: str, ids: list[str], dataset: str = "digits", **rules: float
) -> None:
    client.create_experiment(
        experiment_id,
        dataset=dataset,
        initial_example_ids=ids,
        batch_size=5,
        max_rounds=2,
        seed=1,
        labeling_rules=pb.LabelingRules(**rules),  # type: ignore[arg-type]
        start=True,
    )


def eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def wait_for_tasks(client: LabelLoopClient, experiment: str, count: int) -> list[lb.Task]:
    eventually(lambda: len(client.list_tasks(experiment)) == count, f"{count} tasks of {experiment}")
    return client.list_tasks(experiment)


def round_zero(client: LabelLoopClient, experiment: str) -> pb.Round:
    return client.list_rounds(experiment)[0]


def log_counts(client: LabelLoopClient, experiment: str) -> Counter[str]:
    return Counter(a.example_id for a in client.list_annotations("digits", experiment))


def status_of(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def test_concurrent_annotators_label_a_batch_two_each_blind(
    running: tuple[LocalCluster, LabelLoopClient],
) -> None:
    """Four annotators in threads, two labels per example: every example gets exactly two labels from
    two annotators, nobody is given an example twice (skipped ones included), and the round goes on."""
    local, client = running
    ids = pool_ids(client)[:12]
    start_queue(client, "q-overlap", ids, annotators_per_example=2, lease_seconds=120)
    tasks = wait_for_tasks(client, "q-overlap", 12)
    assert sorted(t.example_id for t in tasks) == ids and {t.state for t in tasks} == {OPEN}
    assert tasks[0].classes == [str(c) for c in range(10)] and tasks[0].features["pixel_0"]
    assert not tasks[0].HasField("prediction")  # the first set has no model yet
    # The first labeled set is a batch like any other: round 0 shows it while it is labeled.
    current = round_zero(client, "q-overlap")
    assert sorted(current.selected_example_ids) == ids and current.stage == pb.ROUND_STAGE_SNAPSHOT
    # A tool watching the experiment learns that it waits for labels, and for how many.
    waiting = next(r for _, r in client.watch("q-overlap", timeout=30) if r.labels_awaited)
    assert waiting.labels_awaited == 24 and waiting.stage == pb.ROUND_STAGE_SNAPSHOT

    given: dict[str, list[str]] = defaultdict(list)
    skipped: dict[str, set[str]] = defaultdict(set)
    errors: list[BaseException] = []

    def annotate(name: str) -> None:
        annotator = client_for(local)  # one client (channel) per annotator, as separate people would have
        try:
            while True:
                leased = annotator.lease_tasks("q-overlap", name, max_tasks=3)
                if not leased.tasks:
                    if leased.labels_awaited == 0:
                        return
                    time.sleep(0.05)  # the rest is leased to others
                    continue
                for task in leased.tasks:
                    given[name].append(task.example_id)
                    if name == "dave" and len(given[name]) % 3 == 0:
                        annotator.skip_task(task, annotator=name, reason="unsure")
                        skipped[name].add(task.example_id)
                    else:
                        annotator.submit_label(task, task.example_id[-1], annotator=name)
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            annotator.close()

    threads = [threading.Thread(target=annotate, args=(n,)) for n in ("alice", "bob", "carol", "dave")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for name, examples in given.items():
        assert len(examples) == len(set(examples)), f"{name} was given an example twice"
    annotations = client.list_annotations("digits", "q-overlap")
    assert len(annotations) == 24
    by_example: dict[str, set[str]] = defaultdict(set)
    for a in annotations:
        by_example[a.example_id].add(a.annotator)
    assert {e: len(who) for e, who in by_example.items()} == {e: 2 for e in ids}
    for example_id in skipped["dave"]:
        assert "dave" not in by_example[example_id]
    eventually(lambda: round_zero(client, "q-overlap").stage == pb.ROUND_STAGE_TRAIN, "the round to go on")
    after = round_zero(client, "q-overlap")
    assert after.labeled_count == 12 and after.labels_awaited == 0
    listed = client.list_tasks("q-overlap")
    assert {(t.state, t.labels_received, t.lease_id) for t in listed} == {(DONE, 2, "")}  # blind: no leases
    client.cancel("q-overlap")


def test_holders_never_exceed_the_labels_wanted(running: tuple[LocalCluster, LabelLoopClient]) -> None:
    _, client = running
    ids = pool_ids(client)[20:30]  # at least one per class
    start_queue(client, "q-holders", ids, annotators_per_example=2, lease_seconds=120)
    wait_for_tasks(client, "q-holders", 10)
    alice = client.lease_tasks("q-holders", "alice", max_tasks=10).tasks
    bob = client.lease_tasks("q-holders", "bob", max_tasks=10).tasks
    assert len(alice) == len(bob) == 10 and all(t.lease_id and t.lease_expire_time.seconds for t in alice)
    carol = client.lease_tasks("q-holders", "carol", max_tasks=10)
    assert not carol.tasks and carol.labels_awaited == 20
    assert {t.state for t in client.list_tasks("q-holders")} == {LEASED}
    first_page = client.labeling.ListTasks(lb.ListTasksRequest(parent="experiments/q-holders", page_size=4))
    second_page = client.labeling.ListTasks(
        lb.ListTasksRequest(
            parent="experiments/q-holders", page_size=4, page_token=first_page.next_page_token
        )
    )
    assert len(first_page.tasks) == len(second_page.tasks) == 4  # round 0 only: ListTasksRequest.round=0
    assert not {t.name for t in first_page.tasks} & {t.name for t in second_page.tasks}
    submitted = client.submit_label(alice[0], "1", annotator="alice")
    assert submitted.state == LEASED and submitted.labels_received == 1  # bob still holds it
    client.skip_task(alice[1], annotator="alice", reason="blurry")
    assert not client.lease_tasks("q-holders", "alice", max_tasks=10).tasks  # never the same twice
    assert [t.example_id for t in client.lease_tasks("q-holders", "carol", max_tasks=10).tasks] == [
        alice[1].example_id
    ]
    client.cancel("q-holders")
    assert not client.lease_tasks("q-holders", "dave").tasks  # an ended experiment hands out nothing


def test_expired_leases_reopen_and_retries_are_stored_once(
    running: tuple[LocalCluster, LabelLoopClient],
) -> None:
    _, client = running
    ids = pool_ids(client)[30:40]
    start_queue(client, "q-expiry", ids, lease_seconds=2)
    wait_for_tasks(client, "q-expiry", 10)
    first = client.lease_tasks("q-expiry", "alice", max_tasks=10).tasks
    assert len(first) == 10 and not client.lease_tasks("q-expiry", "bob").tasks
    once = client.submit_label(first[0], "4", annotator="alice", request_id="alice-1")
    again = client.submit_label(first[0], "4", annotator="alice", request_id="alice-1")  # a retry
    assert once == again and once.state == DONE and once.labels_received == 1
    code, message = status_of(lambda: client.submit_label(first[0], "5", annotator="alice", request_id="x"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "already labeled" in message
    assert log_counts(client, "q-expiry")[first[0].example_id] == 1

    time.sleep(2.5)  # alice's other nine leases expire: the tasks reopen, for others only
    assert not client.lease_tasks("q-expiry", "alice", max_tasks=10).tasks
    reopened = client.lease_tasks("q-expiry", "bob", max_tasks=10).tasks
    assert sorted(t.example_id for t in reopened) == sorted(t.example_id for t in first[1:])
    late = client.submit_label(first[1], "7", annotator="alice")  # an expired lease's label is kept
    assert late.labels_received == 1
    for task in reopened:
        client.submit_label(task, "7", annotator="bob")
    counts = log_counts(client, "q-expiry")
    assert counts == Counter({i: 1 for i in ids}) + Counter([first[1].example_id])
    eventually(lambda: round_zero(client, "q-expiry").stage == pb.ROUND_STAGE_TRAIN, "the round to go on")
    client.cancel("q-expiry")


def test_labels_after_the_round_went_on_are_kept_once(running: tuple[LocalCluster, LabelLoopClient]) -> None:
    """Quorum 1/2: the round goes on with half the batch; the holder's later labels are stored (once)
    while the next model would train, and the closed tasks are leased to nobody."""
    _, client = running
    ids = pool_ids(client)[40:50]
    start_queue(client, "q-late", ids, quorum=0.5, lease_seconds=120)
    wait_for_tasks(client, "q-late", 10)
    held = client.lease_tasks("q-late", "alice", max_tasks=10).tasks
    for task in held[:5]:
        client.submit_label(task, "2", annotator="alice")
    eventually(lambda: round_zero(client, "q-late").stage == pb.ROUND_STAGE_TRAIN, "the round to go on")
    assert round_zero(client, "q-late").labeled_count == 5
    states = Counter(t.state for t in client.list_tasks("q-late"))
    assert states == Counter({DONE: 5, CLOSED: 5})
    assert not client.lease_tasks("q-late", "bob", max_tasks=10).tasks
    for task in held[5:]:
        assert (
            client.submit_label(task, "3", annotator="alice", request_id=f"late-{task.example_id}").state
            == DONE
        )
    client.submit_label(held[-1], "3", annotator="alice", request_id=f"late-{held[-1].example_id}")  # a retry
    assert log_counts(client, "q-late") == Counter({i: 1 for i in ids})
    assert client.get("q-late").current_round == 0  # they count from the next snapshot on
    client.cancel("q-late")


def test_a_missed_deadline_pauses_and_resume_waits_again(
    running: tuple[LocalCluster, LabelLoopClient],
) -> None:
    _, client = running
    ids = pool_ids(client)[50:60]
    start_queue(client, "q-deadline", ids, deadline_seconds=2)
    wait_for_tasks(client, "q-deadline", 10)
    eventually(lambda: client.get("q-deadline").state == pb.EXPERIMENT_STATE_PAUSED, "the pause", 30)
    paused = client.get("q-deadline")
    assert "deadline_seconds=2" in paused.status_message and "ResumeExperiment" in paused.status_message
    assert round_zero(client, "q-deadline").labels_awaited == 10
    resumed_at = time.monotonic()
    client.resume("q-deadline")  # nothing labeled yet: a fresh deadline, then paused again
    eventually(lambda: client.get("q-deadline").state == pb.EXPERIMENT_STATE_PAUSED, "the second pause", 30)
    assert time.monotonic() - resumed_at >= 2.0
    # People may label while it is paused; nothing they give is stranded.
    for task in client.lease_tasks("q-deadline", "alice", max_tasks=10).tasks:
        client.submit_label(task, "0", annotator="alice")
    client.resume("q-deadline")
    eventually(lambda: round_zero(client, "q-deadline").stage == pb.ROUND_STAGE_TRAIN, "the round to go on")
    assert round_zero(client, "q-deadline").labeled_count == 10
    assert client.get("q-deadline").state == pb.EXPERIMENT_STATE_RUNNING
    client.cancel("q-deadline")


def test_a_controller_restart_loses_no_lease_or_label(running: tuple[LocalCluster, LabelLoopClient]) -> None:
    local, client = running
    ids = pool_ids(client)[60:70]
    start_queue(client, "q-restart", ids, lease_seconds=300)
    wait_for_tasks(client, "q-restart", 10)
    held = client.lease_tasks("q-restart", "alice", max_tasks=3).tasks
    client.submit_label(held[0], "1", annotator="alice", request_id="a-0")
    client.submit_label(held[2], "1", annotator="alice", request_id="a-2")
    local.kill("controller")
    # As if it had died between storing held[2]'s label and recording it on the task board.
    store = open_store(local.settings.storage)
    board_key = layout.labeling_tasks_key("q-restart", 0, "initial")
    board = store.get_json(board_key)
    (lease,) = next(t for t in board["tasks"] if t["example_id"] == held[2].example_id)["leases"]
    lease.update(state="leased", request_id="")
    store.put_json(board_key, board)
    local.start_service("controller")
    assert client.submit_label(held[0], "1", annotator="alice", request_id="a-0").labels_received == 1
    assert client.submit_label(held[2], "1", annotator="alice", request_id="a-2").labels_received == 1
    client.submit_label(held[1], "1", annotator="alice", request_id="a-1")  # its lease survived
    rest = client.lease_tasks("q-restart", "alice", max_tasks=10).tasks
    assert sorted(t.example_id for t in rest) == sorted(set(ids) - {t.example_id for t in held})
    for task in rest:
        client.submit_label(task, "1", annotator="alice")
    eventually(lambda: round_zero(client, "q-restart").stage == pb.ROUND_STAGE_TRAIN, "the round to go on")
    assert log_counts(client, "q-restart") == Counter({i: 1 for i in ids})
    client.cancel("q-restart")


def test_bad_requests_say_what_to_fix(running: tuple[LocalCluster, LabelLoopClient]) -> None:
    _, client = running
    ids = pool_ids(client)[70:80]
    start_queue(client, "q-bad", ids)
    wait_for_tasks(client, "q-bad", 10)
    task = client.lease_tasks("q-bad", "alice").tasks[0]
    name = task.name
    client.create_experiment("q-oracle", dataset="digits", per_class=1, batch_size=5, max_rounds=1)
    codes = {
        "unknown experiment": status_of(lambda: client.lease_tasks("ghost", "alice")),
        "not a queue": status_of(lambda: client.lease_tasks("q-oracle", "alice")),
        "no annotator": status_of(lambda: client.lease_tasks("q-bad", "")),
        "too many": status_of(lambda: client.lease_tasks("q-bad", "alice", max_tasks=1000)),
        "bad label": status_of(lambda: client.submit_label(task, "cat", annotator="alice")),
        "other annotator": status_of(lambda: client.submit_label(task, "1", annotator="bob")),
        "no lease": status_of(lambda: client.submit_label(name, "1", annotator="alice")),
        "wrong lease": status_of(lambda: client.submit_label(name, "1", annotator="alice", lease_id="nope")),
        "unknown task": status_of(
            lambda: client.submit_label(
                name.replace(task.example_id, "zzz"), "1", annotator="alice", lease_id="x"
            )
        ),
        "bad name": status_of(lambda: client.skip_task("tasks/1", annotator="alice", lease_id="x")),
        "bad state": status_of(
            lambda: client.labeling.ListTasks(lb.ListTasksRequest(parent="experiments/q-bad", state=9))
        ),
    }
    expected = {
        "unknown experiment": (grpc.StatusCode.NOT_FOUND, "list them with ListExperiments"),
        "not a queue": (
            grpc.StatusCode.FAILED_PRECONDITION,
            "only experiments created with config.labeling_queue",
        ),
        "no annotator": (grpc.StatusCode.INVALID_ARGUMENT, "annotator is empty"),
        "too many": (grpc.StatusCode.INVALID_ARGUMENT, "ask for 1 to 100 tasks"),
        "bad label": (grpc.StatusCode.INVALID_ARGUMENT, "is not one of the dataset's classes"),
        "other annotator": (
            grpc.StatusCode.FAILED_PRECONDITION,
            "submit under the annotator id you leased with",
        ),
        "no lease": (grpc.StatusCode.INVALID_ARGUMENT, "pass the lease_id LeaseTasks returned"),
        "wrong lease": (grpc.StatusCode.FAILED_PRECONDITION, "is not a lease of this task"),
        "unknown task": (grpc.StatusCode.NOT_FOUND, "use the task names LeaseTasks or ListTasks return"),
        "bad name": (grpc.StatusCode.INVALID_ARGUMENT, "does not match"),
        "bad state": (grpc.StatusCode.INVALID_ARGUMENT, "is not a TaskState"),
    }
    for case, (code, fragment) in expected.items():
        assert codes[case][0] == code and fragment in codes[case][1], (case, codes[case])
    client.skip_task(task, annotator="alice")
    code, message = status_of(lambda: client.submit_label(task, "1", annotator="alice"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "skipped" in message
    client.cancel("q-bad")


def test_external_labelers_see_the_first_set(running: tuple[LocalCluster, LabelLoopClient]) -> None:
    """A per-class first set with external labelers: round 0 names its examples and the labels it
    waits for, so people know what to label; their labels move it on."""
    _, client = running
    client.create_experiment(
        "ext-first",
        dataset="digits",
        per_class=1,
        batch_size=5,
        max_rounds=1,
        external_labelers=True,
        start=True,
    )
    eventually(lambda: round_zero(client, "ext-first").labels_awaited == 10, "labels_awaited")
    chosen = list(round_zero(client, "ext-first").selected_example_ids)
    assert len(chosen) == 10
    client.store.AppendAnnotations(
        ds.AppendAnnotationsRequest(
            parent="datasets/digits",
            annotation_set="ext-first",
            annotations=[ds.Annotation(example_id=i, annotator="lab", label="1") for i in chosen],
            request_id="lab-1",
        )
    )
    eventually(lambda: round_zero(client, "ext-first").stage == pb.ROUND_STAGE_TRAIN, "the round to go on")
    assert round_zero(client, "ext-first").labeled_count == 10
    client.cancel("ext-first")


def test_image_tasks_link_to_a_presigned_s3_url(s3_server: S3Server, tmp_path: Path) -> None:
    """On a real S3 server (SeaweedFS) a task's image_url opens without credentials and gives the
    same bytes as the task's image_bytes."""
    manifest = write_digits_images(tmp_path / "images", limit=30)
    with cluster(tmp_path, s3_config(s3_server), services=("store", "controller")) as local:
        client = client_for(local)
        client.create_dataset(
            "pics", str(manifest), image_column="image_path", label_column="label", test_fraction=0.2
        )
        start_queue(client, "q-images", pool_ids(client, "pics")[:10], dataset="pics")
        wait_for_tasks(client, "q-images", 10)
        (task,) = client.lease_tasks("q-images", "alice", include_image_bytes=True).tasks
        assert task.image_url.startswith("http") and "X-Amz-Signature" in task.image_url
        assert task.image_url_expire_time.seconds > time.time() + 600
        with urllib.request.urlopen(task.image_url, timeout=10) as reply:
            assert reply.read() == task.image_bytes and task.image_bytes.startswith(b"\x89PNG")
        assert "label" not in task.features  # the ground truth is never shown to annotators
        client.cancel("q-images")
        client.close()


def test_the_cli_creates_an_unlabeled_dataset_and_labels_its_tasks(
    running: tuple[LocalCluster, LabelLoopClient], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`labelloop datasets create --classes` without a label column, then `labelloop tasks ...`."""
    local, client = running
    frame = pd.read_csv(write_tabular_digits(tmp_path, rows=60)).drop(columns=[LABEL_COLUMN])
    frame.to_csv(tmp_path / "unlabeled.csv", index=False)
    classes = ",".join(str(c) for c in range(10))
    addresses = ["--controller", local.address("controller"), "--store", local.address("store")]

    def cli(*args: str) -> str:
        capsys.readouterr()
        assert main([*addresses, *args]) == 0
        return capsys.readouterr().out

    manifest = str(tmp_path / "unlabeled.csv")
    cli("datasets", "create", "unlabeled", "--manifest", manifest, "--id-column", "id", "--classes", classes)
    dataset = client.get_dataset("unlabeled")
    assert list(dataset.classes) == classes.split(",") and not dataset.label_column
    start_queue(client, "q-cli", pool_ids(client, "unlabeled")[:10], dataset="unlabeled")
    wait_for_tasks(client, "q-cli", 10)

    leased = cli("tasks", "lease", "q-cli", "--annotator", "cli", "--max-tasks", "2", "-o", "json")
    (task, other) = json.loads(leased)
    assert task["lease_id"] and task["classes"] == classes.split(",")
    submit = ["submit", task["name"], "--annotator", "cli", "--lease-id", task["lease_id"], "--label", "3"]
    done = cli("tasks", *submit)
    assert cli("tasks", *submit) == done  # the same command again is a retry: stored once
    header, row = (line.split() for line in done.splitlines())
    assert header == ["NAME", "STATE", "LABELS", "PREDICTED", "CONFIDENCE", "SCORE", "LEASE"]
    assert row == [task["name"], "done", "1/1", "-", "-", "-", "-"]  # no model yet; the lease is not shown
    skip = ["--annotator", "cli", "--lease-id", other["lease_id"], "--reason", "blurry"]
    assert cli("tasks", "skip", other["name"], *skip).splitlines()[1].split()[1] == "open"
    assert cli("tasks", "list", "q-cli", "--state", "done") == done
    assert [a.label for a in client.list_annotations("unlabeled", "q-cli")] == ["3"]
    assert main([*addresses, "tasks", "list", "q-cli", "--state", "finished"]) == 2  # says which exist
    assert "not one of open, leased, done, closed" in capsys.readouterr().err
    client.cancel("q-cli")
