"""A new user's first hour: `agentnn quickstart`, a digits run, then the `agentnn model` tables on
an 80-column terminal, short run ids, data sets told apart, the champion kept on a re-run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

NARROW, WIDE = 80, 250
MIN_CELL = 6
MARKUP_NAME = "[/] run [red] named by hand, and far too long for any table column"


def agentnn(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AGENTNN_"))}
    env["AGENTNN_CACHE_DIR"] = str(folder / "cache")
    done = subprocess.run([sys.executable, "-m", "agentnn", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def first_hour(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A folder after `agentnn quickstart` and `agentnn train advanced --dataset digits`, plus a
    run named with Rich markup; the run ids and the store's URI."""
    import mlflow

    folder = tmp_path_factory.mktemp("first-hour")
    quick = agentnn(folder, "quickstart", "--epochs", "2").stdout
    digits = agentnn(folder, "train", "advanced", "--dataset", "digits", "--epochs", "1").stdout
    uri = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("advanced_training")
    marked = client.create_run(experiment.experiment_id, run_name=MARKUP_NAME)
    client.log_metric(marked.info.run_id, "val_acc", 0.5)
    client.set_terminated(marked.info.run_id)
    return {
        "folder": str(folder), "uri": uri, "quickstart_output": quick,
        "quickstart": re.search(r"run id:\s+([0-9a-f]{32})", quick).group(1),
        "digits": re.search(r"run id:\s+([0-9a-f]{32})", digits).group(1),
        "marked": marked.info.run_id,
    }


# --- reading a table back from the terminal -----------------------------------------------------


def column_widths(text: str) -> list[dict[str, int]]:
    """Per Rich table printed in ``text``: header -> the column's width in characters."""
    lines = text.splitlines()
    found = []
    for index, line in enumerate(lines):
        if not line.lstrip().startswith("┏"):
            continue
        widths = [len(part) - 2 for part in line.strip()[1:-1].split("┳")]
        headers = [""] * len(widths)
        row = index + 1
        while not lines[row].lstrip().startswith("┡"):  # a header may fold onto more lines
            cells = lines[row].strip()[1:-1].split("┃")
            headers = [header + cell.strip() for header, cell in zip(headers, cells)]
            row += 1
        found.append({header.replace(" ", ""): width for header, width in zip(headers, widths)})
    return found


def body_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("│")]


def check_fits(cli, *args: str) -> str:
    """Render a command at 80 and at 250 columns: every line fits, and no column is narrower
    than 6 characters unless its whole content is (read from the wide rendering)."""
    narrow, wide = (cli(*args, columns=columns) for columns in (NARROW, WIDE))
    assert narrow.exit_code == 0 and wide.exit_code == 0, narrow.output + wide.output
    assert max(map(len, narrow.stdout.splitlines())) <= NARROW
    narrow_tables, wide_tables = column_widths(narrow.stdout), column_widths(wide.stdout)
    assert len(narrow_tables) == len(wide_tables) >= 1
    for cut, whole in zip(narrow_tables, wide_tables):
        for header, width in cut.items():
            assert width >= min(MIN_CELL, whole.get(header, width)), (args, header, cut, whole)
    return narrow.stdout


# --- the tables ---------------------------------------------------------------------------------


def test_every_model_table_fits_80_columns_with_no_cell_cut_below_6(cli, first_hour):
    store = ("--tracking-uri", first_hour["uri"])
    runs = check_fits(cli, "model", "runs", *store)
    check_fits(cli, "model", "experiments", *store)
    check_fits(cli, "model", "versions", "agent-router", *store)
    check_fits(cli, "model", "compare", first_hour["quickstart"][:8], first_hour["digits"][:8],
               *store)
    check_fits(cli, "model", "show", first_hour["digits"][:8], *store)
    headers = column_widths(runs)[0]
    assert list(headers)[:3] == ["runid", "name", "dataset"]
    assert "val_acc" in headers  # what the trainer reports as its objective, not best_epoch
    assert "best_epoch" not in headers and "lr" not in headers


def test_runs_show_short_ids_and_long_or_markup_names_on_one_line(cli, first_hour):
    result = cli("model", "runs", "advanced_training", "--tracking-uri", first_hour["uri"],
                 columns=NARROW)
    assert result.exit_code == 0
    rows = body_lines(result.stdout)
    assert len(rows) == 2  # one line per run: nothing wraps
    (marked,) = [row for row in rows if first_hour["marked"][:8] in row]
    assert "[/] run [red]" in marked and "…" in marked  # shown as written, cut with an ellipsis
    assert first_hour["marked"] not in result.stdout  # 8 characters of the id


# --- short run ids ------------------------------------------------------------------------------


def test_every_command_that_takes_a_run_id_takes_its_short_form(cli, first_hour, workdir):
    store = ("--tracking-uri", first_hour["uri"])
    short = first_hour["digits"][:8]
    shown = cli("model", "show", short, "--output", "json", *store)
    assert shown.exit_code == 0 and json.loads(shown.stdout)["run_id"] == first_hour["digits"]
    compared = cli("model", "compare", short, first_hour["quickstart"][:6], "--output", "json",
                   *store)
    assert compared.exit_code == 0, compared.output
    assert json.loads(compared.stdout)["run_ids"] == [first_hour["digits"],
                                                      first_hour["quickstart"]]
    plotted = cli("model", "plot", short, "--metric", "val_acc", "--out",
                  str(workdir / "curve.png"), *store)
    assert plotted.exit_code == 0, plotted.output
    assert (workdir / "curve.png").stat().st_size > 0
    watched = cli("model", "watch", short, "--once", "--output", "json", *store)
    assert watched.exit_code == 0, watched.output
    assert json.loads(watched.stdout)["runs"][0]["run_id"] == first_hour["digits"]
    registered = cli("model", "register", short, "digits-classifier", "--output", "json", *store)
    assert registered.exit_code == 0, registered.output
    assert json.loads(registered.stdout)[0]["run_id"] == first_hour["digits"]
    target = f"sqlite:///{workdir / 'copy.db'}"
    pushed = cli("model", "push", short, "--to", target, "--create", "--output", "json", *store)
    assert pushed.exit_code == 0, pushed.output
    assert json.loads(pushed.stdout)[0]["source_run_id"] == first_hour["digits"]


def test_an_ambiguous_or_unknown_short_id_is_one_line(cli, store_uri):
    import mlflow

    client = mlflow.MlflowClient(store_uri)
    experiment = client.create_experiment("many")
    ids = [client.create_run(experiment).info.run_id for _ in range(17)]  # 16 hex digits
    first = next(char for char in "0123456789abcdef" if sum(i[0] == char for i in ids) > 1)
    ambiguous = cli("model", "show", first, "--tracking-uri", store_uri)
    assert ambiguous.exit_code == 1
    (line,) = ambiguous.stderr.strip().splitlines()
    assert line.startswith(f"error: run id '{first}' is ambiguous")
    assert all(run_id in line for run_id in ids if run_id.startswith(first))
    unknown_prefix = next(p for p in (f"{n:04x}" for n in range(65536))
                          if not any(i.startswith(p) for i in ids))
    unknown = cli("model", "compare", ids[0][:8], unknown_prefix, "--tracking-uri", store_uri)
    assert unknown.exit_code == 1
    assert unknown.stderr.strip() == f"error: run {unknown_prefix!r} not found"


# --- data sets told apart -----------------------------------------------------------------------


def test_digits_runs_have_their_own_experiment_and_a_dataset_to_filter_by(cli, first_hour):
    store = ("--tracking-uri", first_hour["uri"])
    names = [e["name"] for e in json.loads(
        cli("model", "experiments", "--output", "json", *store).stdout)]
    assert "advanced_training_digits" in names
    best = cli("model", "best", "advanced_training", "--metric", "test_acc", "--max",
               "--output", "json", *store)
    assert json.loads(best.stdout)[0]["run_id"] == first_hour["quickstart"]  # a router
    digits = json.loads(cli("model", "runs", "--dataset", "digits", "--output", "json",
                            *store).stdout)
    assert [run["run_id"] for run in digits] == [first_hour["digits"]]
    assert digits[0]["dataset"] == "digits" and digits[0]["tags"]["agentnn.dataset"] == "digits"
    synthetic = json.loads(cli("model", "best", "advanced_training", "--metric", "val_acc",
                               "--max", "--dataset", "synthetic", "--output", "json",
                               *store).stdout)
    assert synthetic[0]["run_id"] == first_hour["quickstart"]


# --- loading ------------------------------------------------------------------------------------


def test_load_prints_the_signature_as_json_objects(cli, first_hour):
    result = cli("model", "load", "agent-router@champion", "--tracking-uri", first_hour["uri"])
    assert result.exit_code == 0, result.output
    signature = json.loads(result.stdout)["signature"]
    (inputs,) = signature["inputs"]  # MLmodel keeps it as JSON text; here it is data
    assert inputs["type"] == "tensor" and inputs["tensor-spec"]["dtype"] == "float32"
    assert not any(isinstance(value, str) for value in signature.values())


# --- the champion -------------------------------------------------------------------------------


def champion(uri: str) -> str:
    import mlflow

    found = mlflow.MlflowClient(uri).get_model_version_by_alias("agent-router", "champion")
    return str(found.version)


def test_quickstart_again_keeps_the_champion_unless_the_new_model_is_better(first_hour):
    import mlflow

    folder, uri = Path(first_hour["folder"]), first_hour["uri"]
    assert "alias @champion -> 1" in first_hour["quickstart_output"]
    again = agentnn(folder, "quickstart", "--epochs", "2").stdout  # same seed: as good, no more
    assert "@champion stays on version 1" in again
    assert champion(uri) == "1"
    # a weaker champion (the same weights, said to score 0.1) gives way to the next run
    client = mlflow.MlflowClient(uri)
    weak = client.create_run(client.get_experiment_by_name("advanced_training").experiment_id)
    client.log_metric(weak.info.run_id, "test_acc", 0.1)
    client.set_terminated(weak.info.run_id)
    source = client.get_model_version("agent-router", "1").source
    demoted = client.create_model_version("agent-router", source, run_id=weak.info.run_id)
    client.set_registered_model_alias("agent-router", "champion", demoted.version)
    third = agentnn(folder, "quickstart", "--epochs", "2").stdout
    (version,) = re.findall(r"agent-router version (\d+), alias @champion -> \1", third)
    assert champion(uri) == version != str(demoted.version)
