"""Every command of the `agentnn` app follows one grammar; this walks the whole app.

* ``-o`` is ``--output``, the output format (table, json, csv), never a file.
* Every ``agentnn model`` command takes ``--tracking-uri``.
* Help at 80 columns shows no type placeholders (``<bool>``, ``<str>``, ``TEXT``, ``INTEGER``)
  and no sentence broken mid-line by a docstring's own line breaks.
* ``--debug``, ``-v`` and ``--tracking-uri`` work before or after the command.
"""

from __future__ import annotations

import re

import pytest
import typer

from agentnn.cli.main import app

FORMATS = {"table", "json", "csv"}
PLACEHOLDER = re.compile(
    r"<(bool|str|int|float|path|file|directory|int range|float range|list\[[^\]]*\]"
    r"|[a-z]+\|[a-z|]+)>|\b(TEXT|INTEGER|FLOAT|BOOLEAN|PATH)\b")
SENTENCE_END = (".", ":", ";", ")", "!", "?")


def commands() -> list[tuple[list[str], typer.core.TyperCommand]]:
    """Every leaf command, as (its path, its Click command), as the app builds them."""
    root = typer.main.get_command(app)
    found = []

    def walk(command, path):
        if isinstance(command, typer.core.TyperGroup):
            for name, child in command.commands.items():
                walk(child, [*path, name])
        else:
            found.append((path, command))

    walk(root, [])
    return found


LEAVES = commands()


def test_the_walk_finds_every_noun():
    paths = {" ".join(path) for path, _ in LEAVES}
    assert {"quickstart", "config", "model runs", "model sync", "model watch", "train advanced",
            "train distributed", "data synth", "data check"} <= paths


@pytest.mark.parametrize("path, command", LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_dash_o_is_the_output_format_everywhere(path, command):
    for param in command.params:
        if "-o" in param.opts or "--output" in param.opts:
            assert set(param.opts) == {"-o", "--output"}, (path, param.opts)
            shown = set((param.metavar or "").split("|"))
            assert shown and shown <= FORMATS, (path, param.metavar)
        assert "--out" not in param.opts or "-o" not in param.opts


@pytest.mark.parametrize("path, command",
                         [(p, c) for p, c in LEAVES if p[0] == "model"],
                         ids=[" ".join(p) for p, _ in LEAVES if p[0] == "model"])
def test_every_model_command_takes_tracking_uri(path, command):
    assert any("--tracking-uri" in param.opts for param in command.params), path


@pytest.mark.parametrize("path", [[]] + [p[:1] for p, _ in LEAVES] + [p for p, _ in LEAVES],
                         ids=lambda p: " ".join(p) or "agentnn")
def test_help_at_80_columns_reads_as_prose(path, cli):
    result = cli(*path, "--help", columns=80)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert not PLACEHOLDER.search(result.stdout), PLACEHOLDER.search(result.stdout)
    # The description above the panels: a line that stops well short of the width, without
    # ending a sentence, while the paragraph goes on, was broken by the docstring.
    description = []
    for line in lines[2:]:
        if line.lstrip().startswith("╭"):
            break
        description.append(line.strip())
    for line, following in zip(description, description[1:]):
        if line and following and not line.endswith(SENTENCE_END):
            assert len(line) > 60, f"{' '.join(path)}: broken mid-sentence after {line!r}"


@pytest.mark.parametrize("args", [
    ["--debug", "config", "-o", "json"],
    ["config", "-o", "json", "--debug"],
    ["config", "-o", "json", "-v"],
    ["config", "--tracking-uri", "sqlite:///elsewhere.db", "-o", "json"],
    ["--tracking-uri", "sqlite:///elsewhere.db", "config", "-o", "json"],
])
def test_global_options_work_before_or_after_the_command(args, cli, workdir):
    import json

    result = cli(*args)
    assert result.exit_code == 0, result.output
    settings = json.loads(result.stdout)
    if "--tracking-uri" in args:
        assert settings["tracking_uri"]["value"] == "sqlite:///elsewhere.db"


def test_a_model_command_keeps_its_own_tracking_uri_after_it(cli, populated):
    result = cli("model", "experiments", "-o", "json", "--tracking-uri", populated["uri"])
    assert result.exit_code == 0, result.output
    assert "routing" in result.stdout


def test_watch_refuses_csv_as_a_usage_error_its_help_does_not_offer(cli):
    result = cli("model", "watch", "some-run", "-o", "csv")
    assert result.exit_code == 2
    assert "csv" not in cli("model", "watch", "--help").stdout


@pytest.mark.parametrize("args", [
    ["model", "runs", "--filter", "metrics.a >>> 1"],
    ["model", "runs", "--order-by", "nonsense!!"],
    ["model", "load", "router/1", "--predict", "missing.json"],
    ["model", "import", "missing_dir"],
    ["model", "migrate", "missing_dir"],
    ["data", "check", "missing.jsonl"],
    ["model", "watch", "some-run", "--interval", "0"],
    ["train", "advanced", "--dataset", "synthetic", "--data", "x.jsonl"],
])
def test_what_was_typed_wrong_exits_2_as_one_line(args, cli, populated):
    result = cli(*args, "--tracking-uri", populated["uri"])
    assert result.exit_code == 2, result.output
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error:"), result.stderr


def test_a_run_that_is_not_there_exits_1(cli, populated):
    result = cli("model", "show", "0123456789abcdef0123456789abcdef", "--tracking-uri",
                 populated["uri"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error:")
