"""`agentnn train …` and `agentnn quickstart`, driven in-process against a real SQLite store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from trainer_helpers import run_count
from typer.testing import CliRunner

from agentnn.cli.main import app


@pytest.fixture
def cli(store_uri: str, model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs `agentnn …` with the test's store as MLFLOW_TRACKING_URI."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_train_advanced_prints_the_run_id_and_final_metrics(cli, client):
    result = cli("train", "advanced", "--dataset", "synthetic", "--epochs", "2",
                 "--mode", "classifier", "--register-as", "agent-router", "--seed", "3")

    assert result.exit_code == 0, result.output
    (run,) = client.search_runs([client.get_experiment_by_name("advanced_training").experiment_id])
    assert f"run id:      {run.info.run_id}" in result.output
    assert "test_acc" in result.output and "2/2" in result.output
    assert run.data.params["epochs"] == "2" and run.data.params["seed"] == "3"
    assert client.get_model_version("agent-router", "1").run_id == run.info.run_id


def test_config_file_sets_keys_and_options_override_it(cli, client, workdir):
    (workdir / "cfg.yaml").write_text("hidden_dim: 16\nattention_heads: 2\nepochs: 5\n")

    result = cli("train", "advanced", "--dataset", "digits", "--config", "cfg.yaml",
                 "--epochs", "1")

    assert result.exit_code == 0, result.output
    # digits classifiers have an experiment of their own, apart from the routers
    digits = client.get_experiment_by_name("advanced_training_digits")
    (run,) = client.search_runs([digits.experiment_id])
    params = run.data.params
    assert (params["hidden_dim"], params["epochs"], params["mode"]) == ("16", "1", "classifier")
    assert params["data.source"] == "sklearn.digits"
    assert run.data.tags["agentnn.dataset"] == "digits"


def test_train_multi_task_on_a_log_file(cli, client, workdir):
    from agentnn.data import synthesize_interactions, write_interactions

    write_interactions(synthesize_interactions(200, 4, seed=0), workdir / "logs.jsonl")

    result = cli("train", "multi-task", "--data", "logs.jsonl", "--epochs", "1")

    assert result.exit_code == 0, result.output
    experiment = client.get_experiment_by_name("multi_task_learning")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["data.source"] == "logs.jsonl"
    assert "val_agent_acc" in result.output


@pytest.mark.parametrize("args, message, code", [
    # what the command line alone gets wrong is a usage error: exit code 2
    (("train", "advanced", "--dataset", "synthetic", "--data", "x.jsonl"), "exactly one of", 2),
    (("train", "advanced", "--dataset", "imagenet"), "--dataset must be one of", 2),
    (("train", "advanced", "--dataset", "synthetic", "--device", "gpu"), "device must be", 2),
    (("train", "advanced", "--dataset", "synthetic", "--config", "none.yaml"),
     "--config none.yaml: no such file", 2),
    (("train", "advanced", "--dataset", "synthetic", "--resume-from", "gone"),
     "--resume-from gone: no such checkpoint", 2),
    (("train", "advanced", "--dataset", "synthetic", "--register-as", "a/b"),
     "registered model name", 2),
    (("train", "multi-task", "--dataset", "digits"), "interaction log", 2),
    (("train", "advanced", "--data", "missing.jsonl"), "no such file", 2),
    # what a file holds is an input error: exit code 1
    (("train", "advanced", "--dataset", "synthetic", "--config", "bad.yaml"), "learning_rte", 1),
    (("train", "advanced", "--dataset", "synthetic", "--config", "broken.yaml"),
     "not valid YAML", 1),
    (("train", "advanced", "--dataset", "synthetic", "--config", "gpu.yaml"), "device must be",
     1),
])
def test_bad_input_is_one_line_with_its_exit_code_and_creates_no_run(args, message, code, cli,
                                                                      client, workdir):
    (workdir / "bad.yaml").write_text("learning_rte: 0.1\n")
    (workdir / "broken.yaml").write_text("epochs: [1,\n")
    (workdir / "gpu.yaml").write_text("device: gpu\n")

    result = cli(*args)

    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert ("--help" in lines[0]) == (code == 2)  # a usage error points at the help
    assert run_count(client) == 0
    assert "epoch" not in result.stdout  # no progress bar before the error


def test_quickstart_registers_agent_router_and_moves_champion(cli, client):
    first = cli("quickstart", "--epochs", "1")
    second = cli("quickstart", "--epochs", "1", "--seed", "1")

    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    champion = client.get_model_version_by_alias("agent-router", "champion")
    assert str(champion.version) == "2"
    assert f"run id:        {champion.run_id}" in second.output
    assert "mlflow ui --backend-store-uri sqlite:///" in second.output


def test_online_refuses_epochs_with_the_reason(cli, client):
    result = cli("train", "online", "--dataset", "synthetic", "--epochs", "3")

    assert result.exit_code == 2
    assert "streams the log once" in result.stderr
    assert run_count(client) == 0


def test_every_train_command_offers_device_and_says_what_epochs_does(cli):
    from agentnn.cli.train import TRAINERS

    def shown(command: str) -> str:  # the help text with Rich's wrapping and box undone
        return re.sub(r"[\s│]+", " ", cli("train", command, "--help").output)

    for trainer in TRAINERS:
        assert "--device" in shown(trainer.command) and "--epochs" in shown(trainer.command)
    assert "streams the log once" in shown("online")


def test_device_is_logged_as_the_device_that_ran(cli, client):
    result = cli("train", "multi-task", "--dataset", "synthetic", "--epochs", "1",
                 "--device", "cpu")

    assert result.exit_code == 0, result.output
    (run,) = client.search_runs([client.get_experiment_by_name("multi_task_learning")
                                 .experiment_id])
    assert run.data.params["device"] == "cpu"
    assert run.data.params["device.requested"] == "cpu"


def test_architecture_search_from_the_command_line(cli, client, workdir):
    result = cli("train", "architecture", "--dataset", "synthetic", "--trials", "2",
                 "--epochs", "1", "--study", "cli-study", "--register-as", "searched")

    assert result.exit_code == 0, result.output
    assert "study:       cli-study" in result.output
    assert (workdir / "optuna.db").exists()  # beside the SQLite store
    assert client.get_model_version("searched", "1").run_id in result.output


def test_a_deprecated_key_and_amp_on_the_cpu_are_said_once_each(cli, client, workdir):
    (workdir / "cfg.yaml").write_text("lr: 0.01\n")

    result = cli("train", "advanced", "--dataset", "synthetic", "--epochs", "1",
                 "--mode", "classifier", "--device", "cpu", "--amp", "--config", "cfg.yaml")

    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("agentnn: warning:")]
    assert warned == [
        "agentnn: warning: config key 'lr' is deprecated and removed in 0.3.0; "
        "use 'learning_rate'",
        "agentnn: warning: amp (float16 mixed precision) needs CUDA; training on cpu in float32",
    ]
