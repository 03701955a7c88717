"""Build a store the way other tools would: plain ``mlflow`` calls, no agentnn.

Run as ``python populate_store.py <tracking uri> <artifact dir>``; prints a JSON map of the run
ids it made. It holds what the SDK must cope with: a unicode experiment name, nested runs,
a deleted run, a failed run, NaN metrics, a run with no metrics, and one run with a model.
Tests run it in a subprocess so MLflow's global state stays out of the test process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROUTING = "routing"
UNICODE = "Übung ✓ 路由"
MODEL_PIP_REQUIREMENTS = ["mlflow"]  # explicit, so MLflow does not infer them (about 10 s)


def build(uri: str, artifact_dir: Path, prefix: str = "") -> dict[str, str]:
    """Fill the store; ``prefix`` keeps experiment names apart on a shared server."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    remote = uri.startswith("http")  # a server keeps artifacts itself

    def location(name: str) -> str | None:
        return None if remote else str(artifact_dir / name)

    routing_id = client.create_experiment(prefix + ROUTING, artifact_location=location("routing"))
    unicode_id = client.create_experiment(prefix + UNICODE, artifact_location=location("unicode"))
    ids: dict[str, str] = {"routing_experiment": routing_id, "unicode_experiment": unicode_id}

    mlflow.set_experiment(experiment_id=routing_id)
    for index, (lr, losses) in enumerate([
        ("0.001", [0.9, 0.5, 0.30]),
        ("0.01", [0.8, 0.4, 0.20]),
        ("0.1", [1.2, 1.1, 1.00]),
    ]):
        with mlflow.start_run(run_name=f"lr-{lr}") as run:
            mlflow.log_params({"lr": lr, "optimizer": "adamw", "seed": str(index)})
            for step, loss in enumerate(losses):
                mlflow.log_metrics({"val_loss": loss, "acc": 1 - loss / 2}, step=step)
            mlflow.set_tag("stage", "dev")
        ids[f"lr_{lr}"] = run.info.run_id

    with mlflow.start_run(run_name="nan-run") as run:
        mlflow.log_param("lr", "0.5")
        mlflow.log_metric("val_loss", float("nan"), step=0)
    ids["nan"] = run.info.run_id

    with mlflow.start_run(run_name="failed-run") as run:
        mlflow.log_param("lr", "0.0001")
        mlflow.log_metric("val_loss", 0.01, step=0)  # best value, but the run failed
    client.set_terminated(run.info.run_id, status="FAILED")
    ids["failed"] = run.info.run_id

    with mlflow.start_run(run_name="deleted-run") as run:
        mlflow.log_metric("val_loss", 0.001)
    client.delete_run(run.info.run_id)
    ids["deleted"] = run.info.run_id

    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("search", "grid")
        for child_index in range(2):
            with mlflow.start_run(run_name=f"child-{child_index}", nested=True) as child:
                mlflow.log_metric("val_loss", 0.6 + child_index / 10)
            ids[f"child_{child_index}"] = child.info.run_id
        mlflow.log_text("notes", "notes/readme.txt")
    ids["parent"] = parent.info.run_id

    mlflow.set_experiment(experiment_id=unicode_id)
    with mlflow.start_run(run_name="ünïcödé run ✓") as run:
        mlflow.log_param("größe", "groß")
        mlflow.log_metric("val_loss", 0.42)
        mlflow.pyfunc.log_model(
            name="model", python_model=Doubler(), pip_requirements=MODEL_PIP_REQUIREMENTS
        )
    ids["with_model"] = run.info.run_id

    with mlflow.start_run(run_name="no-metrics") as run:
        mlflow.set_tag("note", "nothing logged")
    ids["no_metrics"] = run.info.run_id
    return ids


def _doubler_class():
    import mlflow.pyfunc

    class Doubler(mlflow.pyfunc.PythonModel):
        """A model any tool could have logged: doubles its input."""

        def predict(self, context, model_input, params=None):
            return model_input * 2

    return Doubler


if __name__ == "__main__":
    Doubler = _doubler_class()
    print(json.dumps(build(sys.argv[1], Path(sys.argv[2]), *sys.argv[3:4])))


def build_once(base: Path) -> dict[str, str]:
    """Build the store under ``base`` in a subprocess, or reuse it; adds ``uri`` and ``db``."""
    folder = base / "populated-store"
    ids_file = folder / "ids.json"
    if not ids_file.exists():
        folder.mkdir(parents=True, exist_ok=True)
        db = folder / "store.db"
        ids = build_in_subprocess(f"sqlite:///{db}", folder)
        ids.update(uri=f"sqlite:///{db}", db=str(db))
        ids_file.write_text(json.dumps(ids))
    return json.loads(ids_file.read_text())


def build_in_subprocess(uri: str, folder: Path, prefix: str = "") -> dict[str, str]:
    """Run :func:`build` in a fresh interpreter; returns the run ids it printed."""
    import subprocess

    result = subprocess.run(
        [sys.executable, __file__, uri, str(folder / "artifacts"), prefix],
        capture_output=True, text=True, timeout=300, cwd=folder,
    )
    if result.returncode != 0:
        raise RuntimeError(f"populating the store failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
