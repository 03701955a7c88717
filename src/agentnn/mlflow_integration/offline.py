"""The fallback at run start: a tracking server that does not answer never stops training.

Agent-NN documents that tracking falls back to a local ``mlruns/`` folder when the connection
is missing. With ``AGENTNN_OFFLINE=fallback`` (the default) a run whose store does not answer
starts in the embedded store (``./mlruns/mlflow.db``), tagged ``agentnn.push=pending`` and
``agentnn.intended_tracking_uri`` (masked); a marker file beside the journals tells the writer
where to push it once the server answers (see :mod:`agentnn.mlflow_integration.push`).
``AGENTNN_OFFLINE=fail`` keeps the one-line error instead.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from agentnn import config
from agentnn.mlflow_integration.push import (
    INTENDED_URI_TAG,
    PUSH_PENDING,
    PUSH_TAG,
    PendingPush,
)

FALLBACK, FAIL = "fallback", "fail"


def falls_back(settings: config.Settings) -> bool:
    """True unless ``AGENTNN_OFFLINE=fail`` asks for the error instead."""
    offline = getattr(settings, "offline", None)
    return offline is None or offline.value != FAIL


def embedded_settings(settings: config.Settings) -> config.Settings:
    """The same settings pointed at the embedded store of their working directory."""
    store_dir = settings.cwd / config.DEFAULT_STORE_DIR
    return dataclasses.replace(
        settings,
        tracking_uri=config.Setting(f"sqlite:///{store_dir / config.DEFAULT_DB_NAME}", "default"),
        artifact_location=config.Setting(str(store_dir / config.DEFAULT_ARTIFACTS_DIR), "default"),
    )


def warn_fallback(intended: config.Setting, local_uri: str, reason: str) -> None:
    """The one warning line: both stores, masked, and what happens next."""
    print(
        f"agentnn: warning: tracking store {config.mask_uri(intended.value)!r} (from "
        f"{intended.source}): {reason}; the run is tracked in {local_uri} and pushed there "
        "once it answers (AGENTNN_OFFLINE=fail stops instead)",
        file=sys.stderr,
    )


def pending_tags(intended_uri: str) -> dict[str, str]:
    """Tags of a run kept locally: where it belongs (masked) and that it is not there yet."""
    return {INTENDED_URI_TAG: config.mask_uri(intended_uri), PUSH_TAG: PUSH_PENDING}


def record_pending(journal_dir: Path, run_id: str, local_uri: str, intended_uri: str) -> None:
    """Tell the writer to push the run (the marker holds the real URIs, owner-readable only)."""
    PendingPush.write(journal_dir, run_id, local_uri, intended_uri)
