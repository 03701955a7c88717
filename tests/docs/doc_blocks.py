"""Find the fenced code blocks of the Markdown pages and run them as a reader would.

Why: a page whose example does not run teaches the wrong thing, and nobody notices until a user
pastes it. So every block in ``docs/`` and ``README.md`` is either run or says why not:

* ``python`` blocks run in order within a page, sharing one namespace, in a fresh temporary
  working directory per page (the embedded store ``./mlruns`` there, no ``MLFLOW_*`` or
  ``AGENTNN_*`` variable inherited);
* ``bash`` blocks run with ``bash -euo pipefail`` in that same directory, ``agentnn`` on PATH;
* shown output and data (``text``, ``console``, ``json``, ...) is not run;
* ``<!-- docs: skip (reason) -->`` on the line before a block leaves it out, with its reason;
* ``<!-- docs: team-server -->`` runs it against the test session's basic-auth server instead
  (``tests/team/test_docs_team_server.py``), with its URL and a user's credentials set.

A block with no language, or one this module does not know, fails: every block is one or the
other on purpose.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
NOT_PAGES = ("hooks",)  # folders under docs/ that hold code for the build, not pages

RUN = ("python", "bash")
SHOWN = ("text", "console", "json", "jsonl", "toml", "yaml", "ini", "mermaid", "csv", "sql")
SKIP = "skip"
TEAM_SERVER = "team-server"
BASH_TIMEOUT = 600.0  # seconds for one bash block; the blocks are meant to take a few

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")
MARKER = re.compile(r"^\s*<!--\s*docs:\s*(?P<kind>[\w-]+)\s*(?:\((?P<reason>[^)]*)\))?\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its code and its marker (if any)."""

    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    marker: str | None = None
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in RUN and self.marker != SKIP


def pages() -> list[Path]:
    """README.md and every Markdown page under docs/, in a stable order."""
    found = [REPO / "README.md"]
    for path in sorted(DOCS.rglob("*.md")):
        if not any(part in NOT_PAGES for part in path.relative_to(DOCS).parts[:-1]):
            found.append(path)
    return found


def blocks(page: Path) -> list[Block]:
    """The page's fenced blocks in order; raises ValueError on a block this module cannot judge."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    previous = ""  # the last non-blank line outside a block
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            if lines[index].strip():
                previous = lines[index]
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        language = opening["info"].split()[0].lower() if opening["info"] else ""
        body: list[str] = []
        end = index + 1
        while end < len(lines):
            closing = FENCE.match(lines[end])
            if (closing and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(fence)
                    and not closing["info"]):
                break
            body.append(lines[end][indent:] if lines[end][:indent].strip() == "" else lines[end])
            end += 1
        else:
            raise ValueError(f"{page.relative_to(REPO)}:{index + 1}: the block is never closed")
        marker = MARKER.match(previous)
        block = Block(page, index + 1, language, "\n".join(body) + "\n",
                      marker["kind"] if marker else None,
                      (marker["reason"] or "").strip() if marker else "")
        _check(block)
        found.append(block)
        previous = ""
        index = end + 1
    return found


def _check(block: Block) -> None:
    if block.marker not in (None, SKIP, TEAM_SERVER):
        raise ValueError(f"{block.where}: unknown marker 'docs: {block.marker}' "
                         f"(use 'docs: skip (reason)' or 'docs: {TEAM_SERVER}')")
    if block.marker == SKIP and not block.reason:
        raise ValueError(f"{block.where}: 'docs: skip' needs its reason: "
                         "<!-- docs: skip (why it cannot run in a test) -->")
    if block.language not in RUN + SHOWN:
        known = ", ".join(RUN + SHOWN)
        raise ValueError(f"{block.where}: a block needs a language, one of {known} "
                         f"(got {block.language or 'none'!r})")
    if block.marker == TEAM_SERVER and block.language not in RUN:
        raise ValueError(f"{block.where}: 'docs: {TEAM_SERVER}' marks a python or bash block")


# --- running ------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the session ran, for the closing summary line."""

    run: int = 0
    skipped: int = 0
    shown: int = 0
    pages: set[str] = field(default_factory=set)


TALLY = Tally()


class BlockFailed(AssertionError):
    """A block raised or exited non-zero; the message names the page and line."""


def clean_environment(extra: Mapping[str, str] = {}) -> dict[str, str]:
    """The process environment without tracking settings, ``agentnn`` first on PATH."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("MLFLOW_", "AGENTNN_"))}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["MPLBACKEND"] = "Agg"
    env.update(extra)
    return env


@contextmanager
def _process_state(workdir: Path, env: Mapping[str, str]) -> Iterator[None]:
    """Run in-process code with the page's cwd and environment; restore both afterwards."""
    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(workdir)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


@dataclass
class PageRun:
    """The blocks of one page, run in one working directory with one Python namespace."""

    workdir: Path
    env: dict[str, str]
    namespace: dict[str, object] = field(default_factory=lambda: {"__name__": "__main__"})

    def run(self, block: Block) -> None:
        if block.language == "python":
            self._python(block)
        else:
            self._bash(block)
        TALLY.run += 1
        TALLY.pages.add(str(block.page.relative_to(REPO)))

    def _python(self, block: Block) -> None:
        code = compile(block.code, block.where, "exec")
        with _process_state(self.workdir, self.env):
            try:
                exec(code, self.namespace)
            except BaseException as error:  # noqa: B036 - a block's Ctrl-C example too
                lines = traceback.format_exception(type(error), error, error.__traceback__)
                _end_open_runs()
                raise BlockFailed(f"{block.where} (python) raised:\n" + "".join(lines)) from None

    def _bash(self, block: Block) -> None:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.code], cwd=self.workdir, env=self.env,
            capture_output=True, text=True, timeout=BASH_TIMEOUT, stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise BlockFailed(
                f"{block.where} (bash) exited {result.returncode}:\n{block.code}\n"
                f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
            )


def _end_open_runs() -> None:
    """A block that failed inside a run leaves it MLflow's active run: end it, so that the next
    page's runs are not taken for its children."""
    mlflow = sys.modules.get("mlflow")
    while mlflow is not None and mlflow.active_run() is not None:
        mlflow.end_run("FAILED")


def count(found: list[Block]) -> None:
    """Add the blocks that are not run to the tally."""
    for block in found:
        if block.language in SHOWN:
            TALLY.shown += 1
        elif block.marker == SKIP:
            TALLY.skipped += 1
