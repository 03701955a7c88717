"""mkdocs hook: the command reference page, generated from the Typer app at every build.

Why: a hand-written list of commands and options drifts from the code; this page is the
``--help`` of every command, read from ``agentnn.cli.main.app`` while the site is built, so it
cannot. Registered in ``mkdocs.yml`` under ``hooks``; it writes no file into ``docs/``.
"""

from __future__ import annotations

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

PAGE = "cli.md"
INTRO = """# Command reference

Every command and option of `agentnn`, generated from the command's own `--help` when this
site is built. [Using the command](cli-usage.md) shows them at work.

"""


def cli_reference() -> str:
    """The Markdown of every command's help, as Typer's own ``typer ... utils docs`` writes it."""
    import typer
    from typer.cli import get_docs_for_click
    from typer.main import get_command

    from agentnn.cli.main import app

    command = get_command(app)
    context = typer.Context(command, info_name="agentnn")
    return INTRO + get_docs_for_click(
        obj=command, ctx=context, indent=1, name="agentnn", title="`agentnn`"
    )


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, PAGE, content=cli_reference()))
    return files
