"""Fixtures for the tracker: a tracker on a fresh SQLite store and a plain MLflow client on it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def tracker(store_uri: str, workdir: Path):
    from agentnn.mlflow_integration import ExperimentTracker

    return ExperimentTracker("tests", tracking_uri=store_uri)


@pytest.fixture
def client(store_uri: str):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=store_uri)
