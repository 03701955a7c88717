"""Names and values holding Rich markup print as themselves in every `agentnn model` table."""

from __future__ import annotations

import pytest

EXPERIMENT = "exp [/x] [bold]"
RUN_NAME = "[/] run [red]"
PARAM_VALUE = "[/x]"
TAG_VALUE = "[/] tag [red]"
MODEL_NAME = "router [bold]"


@pytest.fixture
def markup_store(store_uri: str) -> dict[str, str]:
    """A store whose experiment, run names, param values, tag and model name hold markup."""
    import mlflow

    client = mlflow.MlflowClient(store_uri)
    experiment_id = client.create_experiment(EXPERIMENT)
    run_ids = []
    for index in range(2):
        run = client.create_run(experiment_id, run_name=f"{RUN_NAME}{index}")
        client.log_param(run.info.run_id, "opt", f"{PARAM_VALUE}{index}")
        client.set_tag(run.info.run_id, "note", TAG_VALUE)
        for step in range(3):
            client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1 + index), step=step)
        client.set_terminated(run.info.run_id)
        run_ids.append(run.info.run_id)
    client.create_registered_model(MODEL_NAME)
    client.create_model_version(MODEL_NAME, source="/nowhere", run_id=run_ids[0])
    return {"uri": store_uri, "runs": run_ids}


def test_every_table_prints_markup_literally(cli, markup_store, workdir):
    uri, (first, second) = markup_store["uri"], markup_store["runs"]
    commands = [
        ["experiments"],
        ["runs"],
        ["runs", EXPERIMENT],
        ["show", first],
        ["best", EXPERIMENT, "--metric", "loss"],
        ["compare", first, second],
        ["versions", MODEL_NAME],
        ["watch", first, "--once"],
        ["watch", EXPERIMENT, "--once"],
    ]
    for command in commands:
        result = cli("model", *command, "--tracking-uri", uri, columns=400)
        assert result.exit_code == 0, (command, result.output)
        assert "MarkupError" not in result.output
        text = result.stdout
        if command[0] in ("experiments", "runs"):
            assert EXPERIMENT in text or RUN_NAME in text, command
        if command[0] in ("show", "compare", "best", "runs", "watch"):
            assert RUN_NAME in text, (command, text)
    shown = cli("model", "show", first, "--tracking-uri", uri, columns=400).stdout
    for literal in (EXPERIMENT, PARAM_VALUE, TAG_VALUE):
        assert literal in shown
    assert MODEL_NAME in cli("model", "versions", MODEL_NAME, "--tracking-uri", uri,
                             columns=400).stdout


def test_plot_labels_with_markup_are_drawn(cli, markup_store, workdir):
    first, second = markup_store["runs"]
    result = cli("model", "plot", first, second, "--metric", "loss", "--out",
                 str(workdir / "p.png"), "--tracking-uri", markup_store["uri"])
    assert result.exit_code == 0, result.output
    assert (workdir / "p.png").stat().st_size > 0
