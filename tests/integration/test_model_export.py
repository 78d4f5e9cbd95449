"""What a team takes away: the latest model of an image experiment, run by the five services on a real
S3 server (SeaweedFS), predicts new images in a fresh process with the accuracy the experiment reported.

The fresh process knows only the controller's address and the object store: `labelloop predict
--model experiments/E` asks the controller for the latest round's model folder, downloads it and
predicts with an empty cache; `labelloop models pull experiments/E/rounds/N` keeps a copy that
predicts with no service and no store at all.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from labelloop.client import trainer_config
from labelloop.core import layout
from labelloop.core.storage import ObjectStore, open_store
from labelloop.sample_data import write_digits_images
from labelloop.trainer import embeddings
from labelloop.v1 import experiments_pb2 as pb

from tests.conftest import s3_config
from tests.support.cluster import client_for, cluster
from tests.support.seaweedfs import S3Server
from tests.trainer.test_predictor import fresh_process, s3_env

pytestmark = pytest.mark.integration


def new_images(store: ObjectStore, folder: Path) -> pd.DataFrame:
    """The dataset's test split as local image files (as a team's new data would come) and their truth."""
    examples = pd.read_parquet(io.BytesIO(store.get_bytes(layout.examples_key("digits"))))
    test = examples[examples["split"] == "test"].reset_index(drop=True)
    (folder / "images").mkdir(parents=True)
    paths = []
    for key in test["image_path"]:
        path = folder / "images" / Path(key).name
        store.get_file(key, path)
        paths.append(f"images/{path.name}")
    return pd.DataFrame({"example_id": test["example_id"], "picture": paths, "truth": test["label"]})


def test_latest_model_predicts_new_images_with_the_experiments_accuracy(
    s3_server: S3Server, tmp_path: Path
) -> None:
    storage = s3_config(s3_server)
    manifest = write_digits_images(tmp_path / "data", size=16, limit=300)
    trainer = trainer_config(
        checkpoints={embeddings.IMAGE_CHECKPOINT_KEY: "labelloop:imagenet/mobilenetv2_100"},
        mode="linear-probe",
        num_gpus=0,
    )
    with cluster(tmp_path, storage) as local:
        client = client_for(local)
        client.create_dataset(
            "digits",
            str(manifest),
            image_column="image_path",
            label_column="label",
            test_fraction=0.3,
            seed=7,
        )
        client.create_experiment(
            "take-away",
            dataset="digits",
            per_class=3,
            batch_size=20,
            max_rounds=1,
            annotator_count=1,
            trainer=trainer,
            seed=3,
            start=True,
        )
        experiment = client.wait("take-away", timeout=600)
        assert experiment.state == pb.EXPERIMENT_STATE_SUCCEEDED, experiment.status_message
        last = client.list_rounds("take-away")[-1]
        classes = np.asarray(client.get_dataset("digits").classes)  # the probability columns' order
        store = open_store(storage)
        rows = new_images(store, tmp_path / "new")
        rows.drop(columns=["truth"]).to_csv(tmp_path / "new" / "new.csv", index=False)
        addresses = ["--controller", local.address("controller"), "--store", local.address("store")]
        predict = ["predict", "--input", str(tmp_path / "new" / "new.csv"), "--image-column", "picture"]
        predict += ["--id-column", "example_id"]
        fresh_process(
            [*addresses, *predict, "--model", "experiments/take-away", "--output", str(tmp_path / "p.csv")],
            tmp_path,
            s3_env(storage),
        )
        pulled = tmp_path / "pulled"
        fresh_process(
            [
                *addresses,
                "models",
                "pull",
                f"experiments/take-away/rounds/{last.number}",
                "--output",
                str(pulled),
            ],
            tmp_path,
            s3_env(storage),
        )
        client.close()

    # The pulled copy, with every service stopped and no store configured.
    fresh_process([*predict, "--model", str(pulled), "--output", str(tmp_path / "q.csv")], tmp_path)

    # The round's own test predictions, as the trainer wrote them for the experiment.
    folder = layout.round_prefix("take-away", last.number)
    ids = store.get_json(layout.example_ids_key(folder, "test"))
    expected = classes[store.get_array(layout.probabilities_key(folder, "test")).argmax(axis=1)]
    truth = rows.set_index("example_id").loc[ids, "truth"].astype(str).to_numpy()
    for output in ("p.csv", "q.csv"):
        predicted = pd.read_csv(tmp_path / output, dtype={"example_id": str}).set_index("example_id")
        labels = predicted.loc[ids, "predicted_label"].astype(str).to_numpy()
        assert labels.tolist() == expected.tolist()
        accuracy = float((labels == truth).mean())
        assert accuracy == pytest.approx(last.test_accuracy) and accuracy > 0.3  # chance is 0.1
        assert accuracy == pytest.approx(experiment.latest_test_accuracy)
    print(f"\nlatest model: test accuracy {last.test_accuracy:.3f} in the experiment and in a fresh process")
