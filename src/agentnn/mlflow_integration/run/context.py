"""Automatic run tags and run names: what a user needs to reproduce or find a run later."""

from __future__ import annotations

import platform
import secrets
import socket
import subprocess
import sys
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata

from agentnn.mlflow_integration.run.redaction import (
    REDACTED,
    SECRET_SHORT_FLAGS,
    is_secret_key,
    redact_text,
)

TAG_PREFIX = "agentnn."
GIT_TIMEOUT = 5.0  # seconds; a slow or hung git must not hold up a run


def generate_run_name(experiment_name: str) -> str:
    """Readable and sortable: ``<experiment>-<UTC yyyymmdd-hhmmss>-<4 hex>``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{experiment_name}-{stamp}-{secrets.token_hex(2)}"


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


class GitQuery:
    """The git commit and dirty flag of the working folder, asked of git in the background.

    Why: two git processes take about 10 ms, and a run's start spends about as long creating
    the run in the store; started first and read after, they cost a run's start nothing.
    """

    COMMANDS = (["rev-parse", "HEAD"], ["status", "--porcelain", "--untracked-files=no"])

    def __init__(self) -> None:
        try:
            self._processes: list[subprocess.Popen[str]] = [
                subprocess.Popen(["git", *args], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
                for args in self.COMMANDS
            ]
        except OSError:  # no git here
            self._processes = []

    def tags(self) -> dict[str, str]:
        """``agentnn.git.commit`` and ``agentnn.git.dirty``; none outside a repository."""
        if not self._processes:
            return {}
        commit, status = (_output(process) for process in self._processes)
        if not commit:
            return {}
        tags = {f"{TAG_PREFIX}git.commit": commit}
        if status is not None:
            tags[f"{TAG_PREFIX}git.dirty"] = "true" if status else "false"
        return tags


def _output(process: subprocess.Popen[str]) -> str | None:
    """A git process's output, None when it failed or took longer than :data:`GIT_TIMEOUT`."""
    try:
        stdout, _ = process.communicate(timeout=GIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return None
    return stdout.strip() if process.returncode == 0 else None


def command_line(argv: list[str]) -> str:
    """The command line with secret-looking values and values of secret-named flags masked."""
    masked: list[str] = []
    for index, arg in enumerate(argv):
        previous = argv[index - 1] if index else ""
        secret_flag = previous in SECRET_SHORT_FLAGS or is_secret_key(previous)
        if previous.startswith("-") and "=" not in previous and secret_flag:
            masked.append(REDACTED)
        elif arg.startswith("-") and "=" in arg and is_secret_key(arg.split("=", 1)[0]):
            masked.append(arg.split("=", 1)[0] + "=" + REDACTED)
        else:
            masked.append(redact_text(arg))
    return " ".join(masked)


@lru_cache(maxsize=1)
def _static_tags() -> tuple[tuple[str, str], ...]:
    from agentnn import __version__  # the one source (an editable install's metadata can lag)

    tags = {
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "version": __version__,
        "mlflow_version": _version("mlflow"),
        "torch_version": _version("torch"),
    }
    return tuple((f"{TAG_PREFIX}{key}", value) for key, value in tags.items() if value)


def automatic_tags() -> dict[str, str]:
    """Tags every run gets at creation: command line, host and versions (the git tags come
    from :class:`GitQuery`, asked while the run is created)."""
    tags = dict(_static_tags())
    tags[f"{TAG_PREFIX}command"] = command_line(sys.argv)[:5000]
    return tags
