"""The MLflow UI on the resolved store: the server command line, and a parent that owns it.

``mlflow server`` starts workers of its own. Replacing this process with it (``exec``) left
those running when a service manager stopped the command with SIGTERM; so the server runs
as a child in a process group of its own, and SIGTERM, SIGINT or SIGHUP to this process stop
the whole group before it exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from agentnn.config import Settings, mask_uri
from agentnn.errors import ConfigError

UI_WORKERS = 1  # one worker: the UI is for one person on a laptop
STOP_TIMEOUT = 10.0  # seconds the server gets to stop after SIGTERM before SIGKILL
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
POLL_INTERVAL = 0.2  # seconds between checks for a stop signal while the server runs


def server_command(settings: Settings, *, host: str, port: int) -> list[str]:
    """``python -m mlflow server`` on the store, with the embedded store's artifact folder."""
    uri = settings.tracking_uri.value
    if uri.startswith(("http://", "https://")):
        raise ConfigError(
            f"the store {mask_uri(uri)} is already a server: open it in a browser instead"
        )
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", uri,
        "--host", host, "--port", str(port), "--workers", str(UI_WORKERS),
    ]
    if settings.artifact_location is not None:
        command += ["--artifacts-destination", settings.artifact_location.value]
    return command


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers; by the child's own pid."""
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=wait)
            try:  # workers that outlived the server's main process
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
        except subprocess.TimeoutExpired:
            continue


def serve(command: list[str], log: Path | None = None) -> int:
    """Run the server as a child until it exits or this process is told to stop; its exit code.

    ``log``: a file that takes the server's output (its start-up notes, warnings and a line
    per request), appended to; None lets it print on this process's terminal.
    """
    received: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def note(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    for sig in STOP_SIGNALS:  # before the child exists, so no signal can orphan it
        signal.signal(sig, note)
    try:
        if log is None:
            process = subprocess.Popen(command, start_new_session=True)
        else:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("ab") as output:  # the child keeps its own copy of the descriptor
                process = subprocess.Popen(command, start_new_session=True,
                                           stdin=subprocess.DEVNULL, stdout=output,
                                           stderr=subprocess.STDOUT)
    except BaseException:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        raise
    try:
        while not received:
            try:
                return process.wait(timeout=POLL_INTERVAL)
            except subprocess.TimeoutExpired:
                continue
        return 128 + received[0]
    finally:
        stop_group(process)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
