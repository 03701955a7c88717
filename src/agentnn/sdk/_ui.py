"""The command line that serves MLflow's UI on the resolved store."""

from __future__ import annotations

import sys

from agentnn.config import Settings, mask_uri
from agentnn.errors import ConfigError

UI_WORKERS = 1  # one worker: the UI is for one person on a laptop


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
