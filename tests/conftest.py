"""Shared fixtures: real MLflow stores only (SQLite in a temporary folder, a real server)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER_START_TIMEOUT = 120.0  # seconds; `mlflow server` takes about 20 s to start here


@pytest.fixture(scope="session")
def session_journal_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One journal folder for the session, so one writer process serves every test's runs.

    At the end, the pushes still pending are dropped: they are runs of tests whose servers the
    session has stopped, and a writer started at exit to push them would outlive the session.
    """
    journal_dir = tmp_path_factory.mktemp("journal")
    yield journal_dir
    for marker in journal_dir.glob("*.push"):
        marker.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def template_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite store with MLflow's schema, made once; copying it is much faster."""
    import mlflow

    path = tmp_path_factory.mktemp("template") / "store.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def workdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_journal_dir: Path
) -> Path:
    """A fresh working directory with no tracking settings in the environment.

    Only the journal folder is shared across the session (the writer serves many stores).
    """
    for name in list(os.environ):
        if name.startswith(("MLFLOW_", "AGENTNN_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AGENTNN_JOURNAL_DIR", str(session_journal_dir))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def store_uri(workdir: Path, template_store: Path) -> str:
    """A fresh SQLite store in the temporary working directory."""
    path = workdir / "store.db"
    shutil.copyfile(template_store, path)
    return f"sqlite:///{path}"


@pytest.fixture
def cli(workdir: Path):
    """Run ``agentnn`` in-process; returns the click Result (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from agentnn.cli.main import app

    runner = CliRunner()

    def run(*args: str, columns: int = 200):
        return runner.invoke(app, list(args), env={"COLUMNS": str(columns)})

    return run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited early with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"mlflow server did not answer {url} within {timeout} s")


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a process we started, and its children, by its own process id."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def start_mlflow_server(root: Path, port: int, *, admin_password: str | None = None
                        ) -> subprocess.Popen:
    """Start `mlflow server` on 127.0.0.1:port with its store under ``root``; waits until up.

    With ``admin_password`` it runs MLflow's basic-auth app (users in ``root/auth.db``), whose
    one user is ``admin`` with that password; ``/health`` still answers without credentials.
    """
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]
    env = None
    if admin_password is not None:
        ini = root / "basic_auth.ini"
        ini.write_text(f"[mlflow]\ndefault_permission = READ\n"
                       f"database_uri = sqlite:///{root / 'auth.db'}\nadmin_username = admin\n"
                       "authorization_function = "
                       "mlflow.server.auth:authenticate_request_basic_auth\n"
                       "auth_cache_ttl_seconds = 60\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AGENTNN_"))}
        env.update(MLFLOW_AUTH_CONFIG_PATH=str(ini), MLFLOW_AUTH_ADMIN_PASSWORD=admin_password,
                   MLFLOW_FLASK_SERVER_SECRET_KEY="tests-secret-key")
        command += ["--app-name", "basic-auth"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=env, start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process, SERVER_START_TIMEOUT)
    except BaseException:
        stop_process_group(process)
        raise
    return process


@pytest.fixture
def server_control():
    """(start, stop) for tests that need a server of their own, e.g. to take it down."""
    started: list[subprocess.Popen] = []

    def start(root: Path, port: int, admin_password: str | None = None) -> subprocess.Popen:
        process = start_mlflow_server(root, port, admin_password=admin_password)
        started.append(process)
        return process

    yield start, stop_process_group, free_port
    for process in started:
        stop_process_group(process)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real `mlflow server` on a free loopback port for the whole session; yields its URL."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = open(root / "server.log", "wb")  # noqa: SIM115 - handed to the server, closed after
    process = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
            "--artifacts-destination", str(root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", process, SERVER_START_TIMEOUT)
        yield url
    finally:
        stop_process_group(process)
        log.close()


@pytest.fixture
def log_router_and_pickled(workdir: Path, monkeypatch: pytest.MonkeyPatch):
    """``log(uri, experiment_id, mlp_config)``: a safe-format MLP registered as router@champion
    and a pickled ``mlflow.pytorch`` model registered as pickled/1, both logged by plain MLflow.

    Returns the store URI, an SDK ``manager`` on it, the MLP ``module`` and its ``safe_run``.
    """
    import mlflow
    import torch

    from agentnn.managers.builders import MLP_BUILDER, build_mlp
    from agentnn.mlflow_integration.models.format import log_torch_model
    from agentnn.sdk.nn_models import ModelManager

    monkeypatch.setenv("AGENTNN_CACHE_DIR", str(workdir / "model-cache"))

    def log(uri: str, experiment_id: str, mlp_config: dict) -> dict:
        torch.manual_seed(0)
        module = build_mlp(mlp_config)
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(uri)
        try:
            with mlflow.start_run(experiment_id=experiment_id) as safe:
                log_torch_model(module, builder=MLP_BUILDER, config=mlp_config)
            with mlflow.start_run(experiment_id=experiment_id) as pickled:
                mlflow.pytorch.log_model(
                    torch.nn.Linear(mlp_config["n_features"], 1), name="model",
                    pip_requirements=["torch"], serialization_format="pickle",
                )
        finally:
            mlflow.set_tracking_uri(previous)  # as in a fresh process: loading must not need it
            os.environ.pop("MLFLOW_TRACKING_URI", None)  # which set_tracking_uri exported
        manager = ModelManager(uri)
        manager.register_model(safe.info.run_id, "router", alias="champion")
        manager.register_model(pickled.info.run_id, "pickled")
        return {"uri": uri, "manager": manager, "module": module, "safe_run": safe.info.run_id}

    return log


# Each session server starts once per test process. Under pytest-xdist (`make test` runs
# `-n auto --dist loadgroup`) every test that needs one runs in the worker of its group, so a
# server starts once per session, not once per worker.
SERVER_GROUPS = {
    "postgres": "postgres", "plain_server": "postgres", "auth_server": "postgres",
    "trained": "postgres", "agentnn_server": "postgres",
    "site": "multihost", "agentnn_app": "multihost",
    "mlflow_server": "mlflow-server",
}


TEAM_FOLDERS = ("team", "server")  # every test in them needs PostgreSQL and a server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the team tests `team` (`make test-team`) and group the tests of each server."""
    here = Path(__file__).parent
    team_folders = [here / name for name in TEAM_FOLDERS]
    for item in items:
        if any(folder in item.path.parents for folder in team_folders):
            item.add_marker(pytest.mark.team)
        fixtures = getattr(item, "fixturenames", ())
        group = next((SERVER_GROUPS[name] for name in fixtures if name in SERVER_GROUPS), None)
        if group is None and item.get_closest_marker("team"):
            group = "postgres"
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


# How many documentation code blocks ran (tests/docs), in the closing lines. The blocks run in this
# process, or under pytest-xdist in a worker that hands its tally over when it finishes
# (tests/docs/conftest.py); xdist's controller loads only this conftest, so it prints from here.
DOCS_TALLY_KEY = "docs_tally"
_docs_counts_from_workers = {"run": 0, "skipped": 0, "shown": 0}
_docs_pages_from_workers: set[str] = set()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    tally = getattr(node, "workeroutput", {}).get(DOCS_TALLY_KEY)
    if tally:
        for key in _docs_counts_from_workers:
            _docs_counts_from_workers[key] += tally[key]
        _docs_pages_from_workers.update(tally["pages"])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    counts = dict(_docs_counts_from_workers)
    pages = set(_docs_pages_from_workers)
    local = sys.modules.get("doc_blocks")  # the blocks ran in this process
    if local is not None:
        for key in counts:
            counts[key] += getattr(local.TALLY, key)
        pages |= local.TALLY.pages
    if counts["run"] or counts["skipped"]:
        terminalreporter.write_line(
            f"docs: {counts['run']} code blocks run from {len(pages)} pages; "
            f"{counts['skipped']} skipped with a reason, {counts['shown']} shown output not run")
