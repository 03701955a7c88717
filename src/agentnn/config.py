"""Settings, and the one place that reads the environment.

Every setting resolves in the same order, first match wins, and remembers where it came from
so that ``agentnn config`` and error messages can say which knob to turn:

1. an explicit argument (``source="argument"``);
2. the process environment (``source="env"``);
3. a ``.env`` file in the working directory, python-dotenv syntax (``source=".env"``);
4. the built-in default (``source="default"``).

The default store is embedded: SQLite at ``<cwd>/mlruns/mlflow.db`` with artifacts in
``<cwd>/mlruns/artifacts``. It needs no server, and MLflow 3 refuses the old file store.

Credentials (``MLFLOW_TRACKING_USERNAME``/``PASSWORD``/``TOKEN``) resolve like any setting and
are only *read* here; :mod:`agentnn.mlflow_integration.store.client` hands them to MLflow,
once, when
it makes a client. Settings never show a secret: ``repr`` and ``as_rows`` mask them.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from agentnn.errors import ConfigError, LegacyFileStoreError, TrackingURIError
from agentnn.masking import MASK, mask_uri

__all__ = ["Setting", "Settings", "check_tracking_uri", "mask_uri", "resolve"]

# --- environment variable names ------------------------------------------------------------
MLFLOW_TRACKING_URI = "MLFLOW_TRACKING_URI"
MLFLOW_TRACKING_USERNAME = "MLFLOW_TRACKING_USERNAME"
MLFLOW_TRACKING_PASSWORD = "MLFLOW_TRACKING_PASSWORD"
MLFLOW_TRACKING_TOKEN = "MLFLOW_TRACKING_TOKEN"
AGENTNN_JOURNAL_DIR = "AGENTNN_JOURNAL_DIR"
AGENTNN_DRAIN_TIMEOUT = "AGENTNN_DRAIN_TIMEOUT"
AGENTNN_FLUSH_INTERVAL = "AGENTNN_FLUSH_INTERVAL"
AGENTNN_CACHE_DIR = "AGENTNN_CACHE_DIR"
AGENTNN_OFFLINE = "AGENTNN_OFFLINE"
AGENTNN_WRITER_GIVE_UP = "AGENTNN_WRITER_GIVE_UP"
# MLflow's own TLS settings for HTTPS stores; the store layer's probe honours them as MLflow does.
MLFLOW_TRACKING_INSECURE_TLS = "MLFLOW_TRACKING_INSECURE_TLS"
MLFLOW_TRACKING_SERVER_CERT_PATH = "MLFLOW_TRACKING_SERVER_CERT_PATH"
# Ways of signing in that only MLflow's own client speaks (a client certificate, an auth plugin,
# AWS SigV4): with one of them set, reads of a server go through MLflow's REST client, never the
# agentnn app's fast reads (sdk/_server_reader.py).
MLFLOW_TRACKING_CLIENT_CERT_PATH = "MLFLOW_TRACKING_CLIENT_CERT_PATH"
MLFLOW_TRACKING_AUTH = "MLFLOW_TRACKING_AUTH"
MLFLOW_TRACKING_AWS_SIGV4 = "MLFLOW_TRACKING_AWS_SIGV4"
MLFLOW_CREDENTIALS_FILE = "~/.mlflow/credentials"  # MLflow's own file of a user's credentials
# Seconds one fast read of the agentnn app may take once the server has answered its first
# byte (the capabilities request gets the probe's short budget, ANSWER_TIMEOUT).
FAST_READ_TIMEOUT = 60.0
# MLflow's HTTP client retry knobs (read by mlflow.utils.rest_utils on every request).
MLFLOW_HTTP_REQUEST_MAX_RETRIES = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR = "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"
MLFLOW_HTTP_REQUEST_BACKOFF_JITTER = "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"
MLFLOW_HTTP_REQUEST_TIMEOUT = "MLFLOW_HTTP_REQUEST_TIMEOUT"
# MLflow's workspace switches: with either set, SQL stores are read through MLflow only.
MLFLOW_ENABLE_WORKSPACES = "MLFLOW_ENABLE_WORKSPACES"
MLFLOW_WORKSPACE = "MLFLOW_WORKSPACE"

# The agentnn app for `mlflow server --app-name agentnn` (agentnn.server): MLflow's basic-auth
# app is composed in when its configuration file is named (the variable MLflow itself reads),
# unless AGENTNN_SERVER_AUTH says otherwise ("basic-auth" or "none").
MLFLOW_AUTH_CONFIG_PATH = "MLFLOW_AUTH_CONFIG_PATH"
AGENTNN_SERVER_AUTH = "AGENTNN_SERVER_AUTH"
SERVER_AUTH_MODES = ("basic-auth", "none")

# Credentials MLflow reads from os.environ only; a .env file may carry them too.
CREDENTIAL_VARIABLES = (MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD, MLFLOW_TRACKING_TOKEN)

# --- defaults ------------------------------------------------------------------------------
DEFAULT_STORE_DIR = "mlruns"  # under the working directory
DEFAULT_DB_NAME = "mlflow.db"
DEFAULT_ARTIFACTS_DIR = "artifacts"
DEFAULT_JOURNAL_DIR = "journal"  # under the store dir; local disk even for a remote server
DEFAULT_DRAIN_TIMEOUT = 60.0  # seconds a run's exit waits for the writer to empty its journal
# A writer left behind by an exited training process keeps trying a store that does not answer
# (unsent journals, pending pushes) this long; then the records stay in the journal and the runs
# pending, for `agentnn model sync` / `agentnn model push --pending`. Bounded so that nothing runs
# for hours behind a user's back.
DEFAULT_WRITER_GIVE_UP = 600.0
DEFAULT_FLUSH_INTERVAL = 1.0  # seconds between journal appends of buffered records
DEFAULT_CACHE_DIR = "~/.cache/agentnn/models"  # downloaded model versions, by version
OFFLINE_MODES = ("fallback", "fail")  # an unanswering server at run start: embedded store, or error
DEFAULT_OFFLINE = "fallback"

# MLflow's defaults retry a dead server for about four minutes (7 retries, back-off factor 2,
# 120 s timeout). agentnn's clients fail in seconds instead: the writer has its own retry loop
# with back-off, and a command should say "unreachable" at once. Applied by the store layer
# with os.environ.setdefault when it makes a client, so a user's own values always win.
MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
# MLflow draws a progress bar per artifact download; agentnn's commands draw their own.
MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
# MLflow's own log level (its INFO lines: table creation, input-example checks). The command
# sets WARNING unless `agentnn -v`, for itself and every process it starts (writer, UI server).
MLFLOW_LOGGING_LEVEL = "MLFLOW_LOGGING_LEVEL"
# Set by `agentnn -v/--verbose`: the processes a command starts (search workers, the UI server)
# show what their libraries say (Optuna's trial lines, MLflow's INFO lines, access logs) too.
AGENTNN_VERBOSE = "AGENTNN_VERBOSE"

HTTP_CLIENT_DEFAULTS = {
    MLFLOW_HTTP_REQUEST_MAX_RETRIES: "2",  # 3 attempts in all
    MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: "1",  # sleeps 0 s, then 2 s, between attempts
    MLFLOW_HTTP_REQUEST_BACKOFF_JITTER: "0.5",
    MLFLOW_HTTP_REQUEST_TIMEOUT: "30",  # seconds per request; a log_batch of 1,000 takes < 1 s
    # MLflow writes "🏃 View run … at: <url>" to stdout whenever a run ends on a server: in a
    # push that is every copy, which would break `--output json` (stdout is the command's).
    MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT: "true",
}

# The writer retries with its own back-off; MLflow's HTTP retries would block one of its calls
# for minutes while a server is down. Also applied with setdefault, in the writer process.
WRITER_HTTP_DEFAULTS = {
    MLFLOW_HTTP_REQUEST_MAX_RETRIES: "0",
    MLFLOW_HTTP_REQUEST_TIMEOUT: "30",
}

SUPPORTED_SCHEMES = (
    "sqlite", "http", "https", "postgresql", "mysql", "mssql", "file", "databricks",
)


@dataclass(frozen=True)
class Setting:
    """A resolved value and where it came from: argument, env, .env or default."""

    value: str
    source: str


@dataclass(frozen=True)
class Settings:
    """Every agentnn setting, resolved once; see the module docstring for the order."""

    tracking_uri: Setting
    """Where runs, params and metrics are stored."""
    artifact_location: Setting | None
    """Where new experiments put artifacts; only set for the embedded default store."""
    journal_dir: Setting
    """Local folder of the per-run journals the writer process forwards to the store."""
    drain_timeout: Setting
    """Seconds a run's exit waits for its journal to reach the store."""
    flush_interval: Setting
    """Seconds between appends of buffered records to the journal."""
    cache_dir: Setting
    """Local cache of downloaded model versions."""
    cwd: Path = field(default_factory=Path.cwd)
    offline: Setting = Setting(DEFAULT_OFFLINE, "default")
    """What a run does when its server does not answer: ``fallback`` or ``fail``."""
    writer_give_up: Setting = Setting(str(DEFAULT_WRITER_GIVE_UP), "default")
    """Seconds a writer left behind by an exited process keeps trying an unanswering store."""
    username: Setting | None = None
    """``MLFLOW_TRACKING_USERNAME`` for HTTP basic auth (env or ``.env``)."""
    password: Setting | None = field(default=None, repr=False)
    """``MLFLOW_TRACKING_PASSWORD``; never shown."""
    token: Setting | None = field(default=None, repr=False)
    """``MLFLOW_TRACKING_TOKEN`` (bearer); never shown."""

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret these settings carry, for masking texts that might quote them."""
        from urllib.parse import unquote, urlsplit

        found = [s.value for s in (self.password, self.token) if s is not None]
        try:
            password = urlsplit(self.tracking_uri.value).password
        except ValueError:
            password = None
        if password:
            found += [password, unquote(password)]
        return tuple(found)

    @property
    def is_embedded(self) -> bool:
        """True when the store is the built-in SQLite default under ``./mlruns``."""
        return self.tracking_uri.source == "default"

    def as_rows(self) -> list[tuple[str, str, str]]:
        """(name, value, source) rows with secrets masked, for display."""
        rows = [
            ("tracking_uri", mask_uri(self.tracking_uri.value), self.tracking_uri.source),
        ]
        if self.artifact_location is not None:
            rows.append(
                ("artifact_location", self.artifact_location.value, self.artifact_location.source)
            )
        for name in ("journal_dir", "drain_timeout", "flush_interval", "cache_dir", "offline",
                     "writer_give_up"):
            setting: Setting = getattr(self, name)
            rows.append((name, setting.value, setting.source))
        if self.username is not None:
            rows.append(("username", self.username.value, self.username.source))
        for name in ("password", "token"):
            secret: Setting | None = getattr(self, name)
            if secret is not None:
                rows.append((name, MASK, secret.source))
        return rows

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r} ({source})" for name, value, source in self.as_rows())
        return f"Settings({inner})"


def read_dotenv(cwd: Path) -> dict[str, str]:
    """The ``.env`` file of the working directory as a dict; empty when there is none."""
    path = cwd / ".env"
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def _pick(
    name: str, argument: object, dotenv: dict[str, str], default: str
) -> Setting:
    if argument is not None:
        return Setting(str(argument), "argument")
    if os.environ.get(name):
        return Setting(os.environ[name], "env")
    if dotenv.get(name):
        return Setting(dotenv[name], ".env")
    return Setting(default, "default")


def resolve(
    tracking_uri: str | None = None,
    *,
    journal_dir: str | os.PathLike[str] | None = None,
    drain_timeout: float | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve every setting in the documented order, without touching the store."""
    cwd = Path(cwd or Path.cwd()).resolve()
    dotenv = read_dotenv(cwd)
    store_dir = cwd / DEFAULT_STORE_DIR
    default_uri, default_artifacts = _embedded_store(cwd)
    uri = _pick(MLFLOW_TRACKING_URI, tracking_uri, dotenv, default_uri)
    artifacts = Setting(default_artifacts, "default") if uri.source == "default" else None
    settings = Settings(
        tracking_uri=uri,
        artifact_location=artifacts,
        journal_dir=_pick(
            AGENTNN_JOURNAL_DIR, journal_dir, dotenv, str(store_dir / DEFAULT_JOURNAL_DIR)
        ),
        drain_timeout=_pick(
            AGENTNN_DRAIN_TIMEOUT, drain_timeout, dotenv, str(DEFAULT_DRAIN_TIMEOUT)
        ),
        flush_interval=_pick(AGENTNN_FLUSH_INTERVAL, None, dotenv, str(DEFAULT_FLUSH_INTERVAL)),
        cache_dir=_pick(
            AGENTNN_CACHE_DIR, None, dotenv, str(Path(DEFAULT_CACHE_DIR).expanduser())
        ),
        cwd=cwd,
        offline=_pick(AGENTNN_OFFLINE, None, dotenv, DEFAULT_OFFLINE),
        writer_give_up=_pick(AGENTNN_WRITER_GIVE_UP, None, dotenv, str(DEFAULT_WRITER_GIVE_UP)),
        username=_pick_optional(MLFLOW_TRACKING_USERNAME, dotenv),
        password=_pick_optional(MLFLOW_TRACKING_PASSWORD, dotenv),
        token=_pick_optional(MLFLOW_TRACKING_TOKEN, dotenv),
    )
    for name in ("drain_timeout", "flush_interval", "writer_give_up"):
        setting: Setting = getattr(settings, name)
        try:
            if float(setting.value) <= 0:
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"{name} must be a positive number of seconds, got {setting.value!r} "
                f"(from {setting.source})"
            ) from None
    if settings.offline.value not in OFFLINE_MODES:
        raise ConfigError(
            f"offline must be one of {', '.join(OFFLINE_MODES)}, got "
            f"{settings.offline.value!r} (from {settings.offline.source})"
        )
    return settings


def embedded_settings(settings: Settings) -> Settings:
    """The same settings pointed at the embedded store of their working directory.

    The fallback of a run whose server does not answer, and where pending runs wait.
    """
    uri, artifacts = _embedded_store(settings.cwd)
    return dataclasses.replace(settings, tracking_uri=Setting(uri, "default"),
                               artifact_location=Setting(artifacts, "default"))


def _embedded_store(cwd: Path) -> tuple[str, str]:
    """(tracking URI, artifact folder) of the embedded store of ``cwd``: built here only."""
    store_dir = cwd / DEFAULT_STORE_DIR
    return f"sqlite:///{store_dir / DEFAULT_DB_NAME}", str(store_dir / DEFAULT_ARTIFACTS_DIR)


def libraries_verbose() -> bool:
    """True under ``agentnn -v``: a process the command started shows its libraries' INFO
    lines (Optuna's trials, MLflow's notes); otherwise it keeps them quiet."""
    return os.environ.get(AGENTNN_VERBOSE, "") not in ("", "0", "false")


def embedded_uri(settings: Settings) -> str:
    """The embedded store of these settings' working directory."""
    return embedded_settings(settings).tracking_uri.value


_environment_lock = threading.Lock()
_environment_holders: dict[str, int] = {}  # variables mlflow_environment set, and their holders


@contextmanager
def mlflow_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set MLflow's environment variables for the calls inside, then put them back.

    MLflow reads some switches only from ``os.environ`` (the artifact progress bar, for one).
    A variable the user already set is left alone, so their value wins; one set here is
    removed again on leaving, so nothing outlasts the call it was meant for.

    The settings a client needs for its whole life (credentials from ``.env``, bounded HTTP
    retries, no URL printed with a password in it) are set once, for good, by
    :meth:`agentnn.mlflow_integration.store.client.Store.configure_mlflow`.

    Threads share the environment (the command's push and the writer's push thread may copy
    runs at once): a variable set here is counted by every holder and removed only when the
    last one leaves, so no thread takes the switch away from another mid-call.
    """
    held: list[str] = []
    with _environment_lock:
        for name, value in values.items():
            if name in _environment_holders:
                _environment_holders[name] += 1
                os.environ.setdefault(name, value)  # if something cleared it meanwhile
            elif name not in os.environ:
                os.environ[name] = value
                _environment_holders[name] = 1
            else:
                continue  # the user's own value
            held.append(name)
    try:
        yield
    finally:
        with _environment_lock:
            for name in held:
                _environment_holders[name] -= 1
                if not _environment_holders[name]:
                    del _environment_holders[name]
                    os.environ.pop(name, None)


def _pick_optional(name: str, dotenv: dict[str, str]) -> Setting | None:
    """A setting with no default (credentials): from the environment or ``.env``, else None."""
    setting = _pick(name, None, dotenv, "")
    return None if setting.source == "default" else setting


def point_mlflow_at(uri: str) -> None:
    """Make ``uri`` MLflow's process-wide tracking URI, so users' own ``mlflow.*`` calls land there.

    ``mlflow.set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into ``os.environ``; that is
    undone here, or every later :func:`resolve` in this process would take the URI for one the
    user set and report it as coming from ``env``.
    """
    import mlflow

    if mlflow.get_tracking_uri() == uri:
        return
    before = os.environ.get(MLFLOW_TRACKING_URI)
    mlflow.set_tracking_uri(uri)
    if before is None:
        os.environ.pop(MLFLOW_TRACKING_URI, None)
    else:
        os.environ[MLFLOW_TRACKING_URI] = before


def mlflow_workspaces_requested() -> str | None:
    """Which of MLflow's workspace settings is set in the environment, if any.

    MLflow 3.17 scopes a SQL store by workspace only when ``MLFLOW_ENABLE_WORKSPACES`` is true
    (``MLFLOW_WORKSPACE`` picks one); agentnn's direct SQLite reader then leaves the answers
    to MLflow, which knows how workspaces resolve.
    """
    if os.environ.get(MLFLOW_ENABLE_WORKSPACES, "").strip().lower() in ("true", "1", "yes"):
        return MLFLOW_ENABLE_WORKSPACES
    if os.environ.get(MLFLOW_WORKSPACE, "").strip():
        return MLFLOW_WORKSPACE
    return None


def server_auth() -> str:
    """Whether the agentnn server app runs under MLflow's basic auth: ``basic-auth`` or ``none``.

    ``AGENTNN_SERVER_AUTH`` decides when set; otherwise a named ``MLFLOW_AUTH_CONFIG_PATH``
    means basic auth, as a server started with ``--app-name basic-auth`` on that file would have.
    Read from the server's environment only (no ``.env``: a server is started by a unit file).
    """
    mode = os.environ.get(AGENTNN_SERVER_AUTH, "").strip().lower()
    if mode:
        if mode not in SERVER_AUTH_MODES:
            raise ConfigError(f"{AGENTNN_SERVER_AUTH}={mode!r} is not one of "
                              f"{', '.join(SERVER_AUTH_MODES)}")
        return mode
    return "basic-auth" if os.environ.get(MLFLOW_AUTH_CONFIG_PATH, "").strip() else "none"


def check_tracking_uri(setting: Setting) -> None:
    """Reject a malformed URI or a legacy file store with one clear line, before MLflow does."""
    uri = setting.value
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if len(scheme) == 1 and uri[1:3] in (":\\", ":/"):  # a Windows drive letter, not a scheme
        scheme = ""
    if scheme and scheme.split("+")[0] not in SUPPORTED_SCHEMES:
        raise TrackingURIError(
            uri, setting.source, f"unknown scheme {scheme!r}; use sqlite:///path/mlflow.db, "
            "http(s)://host:port or postgresql://…"
        )
    if scheme in ("http", "https") and not parsed.hostname:
        raise TrackingURIError(uri, setting.source, "no host in the URI")
    if scheme in ("", "file"):
        path = Path(parsed.path if scheme == "file" else uri).expanduser()
        raise_if_legacy_store(path)
        raise TrackingURIError(
            uri, setting.source, "plain folders are MLflow's retired file store; "
            f"use sqlite:///{path.resolve() / DEFAULT_DB_NAME} instead"
        )
    if scheme == "sqlite" and (uri.rstrip("/") == "sqlite:" or ":memory:" in uri
                               or "mode=memory" in uri):
        raise TrackingURIError(
            uri, setting.source, "an in-memory SQLite store would lose every run: the writer "
            "is another process; use sqlite:///path/mlflow.db"
        )
    if scheme == "sqlite":
        db_path = Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None
        if db_path is not None and str(db_path) not in ("", ":memory:"):
            raise_if_legacy_store(db_path.parent)


def is_legacy_file_store(path: Path) -> bool:
    """True when ``path`` looks like MLflow's old file store (``<exp id>/meta.yaml``)."""
    if not path.is_dir():
        return False
    if (path / "0" / "meta.yaml").is_file():
        return True
    return any(child.is_dir() and (child / "meta.yaml").is_file() for child in path.iterdir())


def raise_if_legacy_store(path: Path) -> None:
    """Raise :class:`LegacyFileStoreError` with the migration command when ``path`` is one."""
    if is_legacy_file_store(path):
        resolved = path.resolve()
        target = f"sqlite:///{resolved / DEFAULT_DB_NAME}"
        raise LegacyFileStoreError(
            str(resolved), f"mlflow migrate-filestore --source {resolved} --target {target}"
        )
