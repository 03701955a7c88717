"""The tables and summaries of `model import`, `push`, `push --model`, `best`, `register`,
`alias`, `versions`, `config` and `data check` on an 80-column terminal: every line fits, no
cell is cut below 6 characters, one line per row, run ids by their 8 first characters (JSON
keeps them whole). `model runs`/`show`/`compare`/`experiments` are in test_first_hour.py,
`push --pending` in tests/offline/test_pending_80_columns.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_first_hour import NARROW, body_lines, check_fits

TB_RUN = "a-tensorboard-run-folder-with-a-name-far-longer-than-any-column"
WANDB_PROJECT = "a-wandb-project-with-a-rather-long-name"
MODEL = "router-with-a-model-name-longer-than-16"
SHORT = 8

WANDB_WRITER = """
import sys, wandb
run = wandb.init(mode="offline", project=sys.argv[2], config={"lr": 0.01}, dir=sys.argv[1],
                 settings=wandb.Settings(console="off", x_disable_stats=True,
                                         x_disable_meta=True, x_save_requirements=False))
for step in range(5):
    wandb.log({"loss": 1 / (step + 1), "validation/accuracy_of_the_router": step / 5},
              step=step)
wandb.finish()
wandb.teardown()
"""


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    """A TensorBoard log folder, a W&B offline run and a trackio project, written by torch,
    wandb and trackio, with names longer than any column."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "importing"))
    from import_helpers import write_tensorboard, write_trackio

    folder = tmp_path_factory.mktemp("sources")
    write_tensorboard(folder / "tb" / TB_RUN, {
        "validation/accuracy_of_the_router": [(i, i / 10, 1.7e9 + i) for i in range(10)],
        "loss": [(i, 1 / (i + 1), 1.7e9 + i) for i in range(10)]}, hparams={"lr": 0.1})
    home = tempfile.mkdtemp(prefix="wandb-home-", dir=folder)
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_CONSOLE": "off",
           **{name: home for name in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR",
                                      "WANDB_DATA_DIR")}}
    subprocess.run([sys.executable, "-c", WANDB_WRITER, str(folder), WANDB_PROJECT],
                   env={**os.environ, **env}, check=True, capture_output=True, timeout=300)
    (wandb_run,) = (folder / "wandb").glob("offline-run-*")
    write_trackio(folder / "trackio", [{
        "project": "a-trackio-project-named-at-length", "name": "run-a", "config": {"lr": 0.1},
        "logs": [[{"loss": 1.0, "val_acc": 0.5}, 0], [{"loss": 0.5, "val_acc": 0.75}, 1]]}])
    yield [folder / "tb", wandb_run, folder / "trackio"]


def rows_on_one_line(text: str, count: int) -> None:
    """The table holds ``count`` rows, each on one line."""
    assert len(body_lines(text)) == count, text


def test_import_fits_80_columns_with_short_run_ids(cli, sources, store_uri):
    args = ("model", "import", *map(str, sources), "--tracking-uri", store_uri)
    narrow = check_fits(cli, *args)  # imports; the wide rendering finds nothing new
    rows_on_one_line(narrow, 3)
    records = json.loads(cli(*args, "--output", "json").stdout)
    run_ids = [record["run_id"] for record in records]
    assert all(len(run_id) == 32 for run_id in run_ids)  # JSON keeps the whole id
    for run_id in run_ids:
        assert run_id[:SHORT] in narrow and run_id not in narrow
    assert "…" in narrow  # the long source names end in an ellipsis


def test_push_and_push_model_fit_80_columns_with_short_run_ids(cli, populated_copy, workdir):
    store = ("--tracking-uri", populated_copy["uri"])
    with_model, other = populated_copy["with_model"], populated_copy["lr_0.01"]
    assert cli("model", "register", with_model[:SHORT], MODEL, "--alias", "champion",
               *store).exit_code == 0
    target = f"sqlite:///{workdir / 'a-copy-of-the-store-with-a-long-file-name.db'}"
    args = ("model", "push", with_model[:SHORT], other[:SHORT], "--to", target, "--create",
            *store)
    narrow = check_fits(cli, *args)
    rows_on_one_line(narrow, 2)
    pushed = json.loads(cli(*args, "--output", "json").stdout)
    copies = {record["source_run_id"]: record["target_run_id"] for record in pushed}
    assert set(copies) == {with_model, other}
    for run_id in (with_model, other, copies[with_model], copies[other]):
        assert run_id[:SHORT] in narrow and run_id not in narrow
    # the registration, too long for a column, is a line of its own under the table
    assert f"{copies[with_model][:SHORT]}: registered {MODEL}/1 @champion" in narrow

    model_args = ("model", "push", "--model", MODEL, "--to",
                  f"sqlite:///{workdir / 'another-copy-for-the-registered-model.db'}",
                  "--create", *store)
    by_model = check_fits(cli, *model_args)
    rows_on_one_line(by_model, 1)
    (version,) = json.loads(cli(*model_args, "--output", "json").stdout)["versions"]
    assert version["source_run_id"] == with_model and len(version["target_run_id"]) == 32
    assert with_model[:SHORT] in by_model and with_model not in by_model
    assert version["target_run_id"][:SHORT] in by_model


def test_best_register_alias_and_versions_fit_80_columns(cli, populated_copy):
    store = ("--tracking-uri", populated_copy["uri"])
    best = check_fits(cli, "model", "best", "routing", "--metric", "val_loss", *store)
    rows_on_one_line(best, 1)
    assert populated_copy["lr_0.01"][:SHORT] in best and populated_copy["lr_0.01"] not in best
    registered = check_fits(cli, "model", "register", populated_copy["with_model"], MODEL,
                            "--alias", "a-rather-long-alias-name", *store)
    rows_on_one_line(registered, 1)
    assert populated_copy["with_model"] not in registered
    moved = cli("model", "alias", MODEL, "champion", "2", *store, columns=NARROW)
    assert moved.exit_code == 0, moved.output
    assert moved.stdout.splitlines() == [f"{MODEL}@champion -> version 2"]
    versions = check_fits(cli, "model", "versions", MODEL, *store)
    rows_on_one_line(versions, 2)


def test_config_and_its_check_fit_80_columns(cli, populated_copy, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", populated_copy["uri"])
    settings = check_fits(cli, "config")
    assert "tracking_uri" in settings
    checked = check_fits(cli, "config", "--check")
    assert "reachable" in checked


def test_data_check_fits_80_columns(cli, workdir):
    path = Path("interactions") / "a-log-of-every-agent-over-a-rather-long-week.jsonl"
    assert cli("data", "synth", str(path), "--records", "200", "--agents", "8").exit_code == 0
    checked = check_fits(cli, "data", "check", str(path))
    rows_on_one_line(checked, 1 + 8)  # the counts, then one row per agent
