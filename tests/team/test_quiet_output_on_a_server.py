"""On a team server, commands print agentnn's output only: no "View run … at" line from MLflow
after a run (on the terminal or in writer.log), no download bars or INFO lines in a push;
`-v` brings MLflow's lines back."""

from __future__ import annotations

import re

from team_helpers import Team, run_id_of

LIBRARY_LINES = re.compile(r"View run |View experiment at|Downloading artifacts|\bINFO\b.*mlflow"
                           r"|Successfully registered model|Created version '")

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def library_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if LIBRARY_LINES.search(line)]


def test_training_and_push_on_a_server_print_no_mlflow_line_unless_verbose(team: Team,
                                                                          plain_server: str):
    on_server = {"MLFLOW_TRACKING_URI": plain_server}
    trained = team.run("train", "advanced", "--dataset", "synthetic", "--epochs", "1",
                       "--mode", "classifier", env=on_server)
    assert trained.returncode == 0, trained.stderr
    assert library_lines(trained.stdout + trained.stderr) == []

    local = team.run("quickstart", "--epochs", "1")  # the embedded store, then pushed
    assert local.returncode == 0, local.stderr
    pushed = team.run("model", "push", run_id_of(local), "--to", plain_server)
    assert pushed.returncode == 0, pushed.stderr
    assert library_lines(pushed.stdout + pushed.stderr) == []
    assert library_lines(team.writer_logs()) == []
    untimed = [line for line in team.writer_logs().splitlines()
               if line.strip() and not TIMESTAMP.match(line)]
    assert untimed == []  # every writer.log line says when it was written

    loud = team.run("train", "advanced", "--dataset", "synthetic", "--epochs", "1",
                    "--mode", "classifier", "-v", env=on_server)
    assert loud.returncode == 0, loud.stderr
    assert library_lines(loud.stdout + loud.stderr), loud.stdout + loud.stderr
