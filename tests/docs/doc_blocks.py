"""Find the fenced code blocks of the Markdown pages and run them as a reader would.

Why: a page whose example does not run teaches the wrong thing, and nobody notices until a user
pastes it. So every block in ``docs/`` and ``README.md`` is either run or says why not:

* ``python`` blocks run in order within a page, sharing one namespace (one process per page,
  ``page_python.py``), in a fresh temporary working directory per page (the embedded store
  ``./mlruns`` there, no ``MLFLOW_*`` or ``AGENTNN_*`` variable inherited);
* ``bash`` blocks run with ``bash -euo pipefail`` in that same directory, ``agentnn`` on PATH;
* shown output and data (``text``, ``console``, ``json``, ...) is not run;
* ``<!-- docs: skip (reason) -->`` on the line before a block leaves it out, with its reason;
* ``<!-- docs: team-server -->`` runs it against the test session's basic-auth server instead
  (``tests/team/test_docs_team_server.py``), with its URL and a user's credentials set.

A block with no language, or one this module does not know, fails: every block is one or the
other on purpose.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import page_python

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
NOT_PAGES = ("hooks",)  # folders under docs/ that hold code for the build, not pages

RUN = ("python", "bash")
SHOWN = ("text", "console", "json", "jsonl", "toml", "yaml", "ini", "mermaid", "csv", "sql")
SKIP = "skip"
TEAM_SERVER = "team-server"
BLOCK_TIMEOUT = 600.0  # seconds for one block; the blocks are meant to take a few
CLOSE_TIMEOUT = 120.0  # seconds a page's python process may take to end its runs and exit

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


@dataclass
class PageRun:
    """The blocks of one page, run in one working directory; python blocks in one process.

    Use it as a context manager: leaving it ends the page's python process as a script ends
    (its runs end, its writer drains), and stops it by its own process group if it hangs.
    """

    workdir: Path
    env: dict[str, str]
    _python_process: subprocess.Popen[str] | None = None
    _python_output: IO[str] | None = None

    def __enter__(self) -> PageRun:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(self, block: Block) -> None:
        if block.language == "python":
            self._python(block)
        else:
            self._bash(block)
        TALLY.run += 1
        TALLY.pages.add(str(block.page.relative_to(REPO)))

    def _python(self, block: Block) -> None:
        process = self._start_python()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps({"code": block.code, "where": block.where}) + "\n")
        process.stdin.flush()
        deadline = time.monotonic() + BLOCK_TIMEOUT
        while True:
            ready, _, _ = select.select([process.stdout], [], [], 5.0)
            if ready:
                line = process.stdout.readline()
                if line.startswith(page_python.REPLY):
                    answer = json.loads(line[len(page_python.REPLY):])
                    break
                if line:
                    continue  # a child process of the block wrote to the inherited stdout
            if process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise BlockFailed(f"{block.where} (python): the page's process ended or hung "
                                  f"(exit {process.returncode}):\n{self._python_log()}")
        if not answer["ok"]:
            raise BlockFailed(f"{block.where} (python) raised:\n{answer['error']}\n"
                              f"--- output ---\n{self._python_log()}")

    def _start_python(self) -> subprocess.Popen[str]:
        if self._python_process is None:
            # closed in close(), which every page's run ends with
            self._python_output = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
            self._python_process = subprocess.Popen(
                [sys.executable, str(Path(page_python.__file__))], cwd=self.workdir,
                env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self._python_output, text=True, start_new_session=True,
            )
        return self._python_process

    def _python_log(self) -> str:
        if self._python_output is None:
            return ""
        self._python_output.seek(0)
        return self._python_output.read()[-4000:]

    def close(self) -> None:
        """End the page's python process as a script ends: stdin closed, runs drained."""
        process, self._python_process = self._python_process, None
        if process is not None:
            assert process.stdin is not None
            with contextlib.suppress(OSError):
                process.stdin.close()
            try:
                process.wait(timeout=CLOSE_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
            if process.stdout is not None:
                process.stdout.close()
        if self._python_output is not None:
            self._python_output.close()
            self._python_output = None

    def _bash(self, block: Block) -> None:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.code], cwd=self.workdir, env=self.env,
            capture_output=True, text=True, timeout=BLOCK_TIMEOUT, stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise BlockFailed(
                f"{block.where} (bash) exited {result.returncode}:\n{block.code}\n"
                f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
            )


def count(found: list[Block]) -> None:
    """Add the blocks that are not run to the tally."""
    for block in found:
        if block.language in SHOWN:
            TALLY.shown += 1
        elif block.marker == SKIP:
            TALLY.skipped += 1
