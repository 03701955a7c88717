"""Running commands on a trainer host, as a colleague on that machine would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import polling
import team_servers as ts
from multihost_net import Host

PYTHON = sys.executable
AGENTNN = str(Path(sys.executable).with_name("agentnn"))
COMMAND_TIMEOUT = 600  # seconds: a guard against a hang, not a benchmark


def base_env(workdir: Path) -> dict[str, str]:
    """A trainer's environment: nothing inherited that names a store; its own journal folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AGENTNN_"))}
    env.update(AGENTNN_JOURNAL_DIR=str(workdir / "journal"), OMP_NUM_THREADS="1",
               AGENTNN_OFFLINE="fail")  # a trainer that cannot reach the server must say so
    return env


def start_on(host: Host, args: list[str], workdir: Path, env: dict[str, str]
             ) -> subprocess.Popen:
    """``args`` as a process of ``host`` (``ip netns exec``) in ``workdir``; not waited for."""
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(host.command(*args), cwd=workdir, env={**base_env(workdir), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(process: subprocess.Popen, timeout: float = COMMAND_TIMEOUT) -> tuple[str, str]:
    """Its output once it exits; stopped by its own group id if it hangs past ``timeout``."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        ts.stop_process_group(process)
        out, err = process.communicate()
        raise AssertionError(f"still running after {timeout:.0f} s:\n{err[-3000:]}") from None


def wait_for(condition: Callable[[], bool], timeout: float = COMMAND_TIMEOUT,
             what: str = "") -> None:
    """:func:`polling.wait_for` with this folder's patience."""
    polling.wait_for(condition, timeout, what)
