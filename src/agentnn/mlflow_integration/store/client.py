"""The store layer: the one place that turns resolved settings into a tracking store.

Everything in agentnn that talks to MLflow goes through a :class:`Store`::

    store = Store.from_settings(config.resolve(tracking_uri))   # resolved once, passed down
    store.validate()                        # malformed URI, legacy file store, in-memory SQLite
    store.check()                           # one health probe; raises the translated error
    with store.errors(kind="run", name=run_id):
        run = store.client().get_run(run_id)   # MLflow errors come out as agentnn errors

Why one place:

- **Credentials reach MLflow here, once.** MLflow reads ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``/
  ``TOKEN`` from ``os.environ`` only. :meth:`Store.client` copies those found in ``.env`` into the
  environment (never overriding a value already there) just before it makes the first client;
  ``user:password@`` inside an ``http(s)://`` URI is left to MLflow, which sends it as basic auth.
- **Dead servers fail in seconds.** MLflow's HTTP client retries a dead server for about four
  minutes by default. :meth:`Store.client` applies :data:`agentnn.config.HTTP_CLIENT_DEFAULTS`
  (3 attempts, 30 s per request) with ``os.environ.setdefault``, so the user's own values win.
  For a direct PostgreSQL/MySQL URI the probe runs first, with a short connect timeout, because
  MLflow retries building its engine for about 100 s.
- **One probe, one translator.** :meth:`Store.probe` asks an HTTP store's ``/health``,
  ``/version`` and ``server-info`` endpoints and one API call with and without the credentials
  through :mod:`agentnn.mlflow_integration.store.probe` (the credentials MLflow's own client
  sends: ``user:password@`` in the URI, username/password or a bearer token, TLS settings), or
  opens a SQL store's database. :meth:`Store.translate` words one agentnn error per outcome of
  :func:`agentnn.mlflow_integration.store.classify.classify` (MLflow's error codes, connection
  errors, SQLAlchemy's ``OperationalError``, a missing database driver), every message masked
  (the errors mask URIs themselves; the store also masks the raw password and token it knows).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from agentnn import config
from agentnn.errors import (
    AgentNNError,
    AuthenticationError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    StoreNotFoundError,
    StoreUnreachableError,
    TrackingURIError,
)
from agentnn.masking import mask_text, mask_uri
from agentnn.mlflow_integration.store import classify
from agentnn.mlflow_integration.store.classify import Outcome
from agentnn.mlflow_integration.store.probe import ANSWER_TIMEOUT, ServerProbe

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["Store", "StoreHealth", "DEFAULT_PROBE_TIMEOUT"]

# Seconds a store gets per request before it counts as unreachable. A refused port or unknown
# host fails at once; this bounds a black-holed host. Generous because the basic-auth app
# hashes the password on every request (PBKDF2), which takes seconds on a loaded machine.
DEFAULT_PROBE_TIMEOUT = 30.0
MAX_DETAIL = 300  # characters of a store's own message kept in an error line

_configured: set[tuple[str, ...]] = set()  # (uri, credentials sources) already handed to MLflow
_configure_lock = threading.Lock()


@dataclass(frozen=True)
class StoreHealth:
    """What one probe of a store found; ``agentnn config --check`` shows it."""

    uri: str
    """The store, masked."""
    kind: str
    """URI scheme family: sqlite, postgresql, mysql, mssql, http, https, databricks."""
    reachable: bool
    server_version: str | None = None
    """MLflow version of a server, or the database server's version of a SQL store."""
    backend: str | None = None
    """The server's store type (``SqlStore``) or the SQL dialect."""
    auth_enabled: bool | None = None
    """True when the server refuses requests without credentials; None when not known."""
    credentials_ok: bool | None = None
    """True when the current credentials pass, False when refused, None when none are needed."""
    artifacts_proxied: bool | None = None
    """True when the server serves artifacts itself (``--serve-artifacts``)."""
    detail: str = ""
    """Why it is unreachable or refused, in one masked line."""
    problem: AgentNNError | None = field(default=None, compare=False, repr=False)
    """The error :meth:`Store.check` raises for this result, if any."""

    def to_dict(self) -> dict[str, object]:
        """Plain data for JSON output (the error object itself left out)."""
        return {item.name: getattr(self, item.name) for item in fields(self)
                if item.name != "problem"}


class Store:
    """One tracking store, from settings resolved once (their sources kept for messages)."""

    def __init__(self, settings: config.Settings) -> None:
        self.settings = settings
        self.uri = settings.tracking_uri.value
        self.masked_uri = mask_uri(self.uri)
        self.source = settings.tracking_uri.source
        self.scheme = urlsplit(self.uri).scheme.lower() if "://" in self.uri else ""
        self.kind = self.scheme.split("+")[0]
        self._client: MlflowClient | None = None
        self._checked = False
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: config.Settings) -> Store:
        """The store of already resolved settings; nothing is read again."""
        return cls(settings)

    @classmethod
    def resolve(
        cls,
        tracking_uri: str | None = None,
        *,
        journal_dir: str | os.PathLike[str] | None = None,
        drain_timeout: float | None = None,
        cwd: Path | None = None,
    ) -> Store:
        """Resolve the settings (see :func:`agentnn.config.resolve`) and make their store."""
        return cls(config.resolve(tracking_uri, journal_dir=journal_dir,
                                  drain_timeout=drain_timeout, cwd=cwd))

    def __repr__(self) -> str:
        return f"Store({self.masked_uri!r}, source={self.source!r})"

    # --- what kind of store --------------------------------------------------------------

    @property
    def is_http(self) -> bool:
        return self.kind in ("http", "https")

    @property
    def is_sql(self) -> bool:
        return self.kind in ("sqlite", "postgresql", "mysql", "mssql")

    @property
    def is_sqlite(self) -> bool:
        return self.kind == "sqlite"

    @property
    def is_embedded(self) -> bool:
        """The built-in SQLite default under ``./mlruns`` (created on first write)."""
        return self.settings.is_embedded

    @property
    def sqlite_path(self) -> Path | None:
        """The database file of a ``sqlite:///`` store, else None."""
        if not self.uri.startswith("sqlite:///"):
            return None
        path = self.uri[len("sqlite:///"):].split("?")[0]
        return Path(unquote(path)) if path and path != ":memory:" else None

    # --- validation ------------------------------------------------------------------------

    def validate(self) -> None:
        """Refuse a malformed URI, an old file store or an in-memory SQLite store, in one line."""
        config.check_tracking_uri(self.settings.tracking_uri)

    def require_existing(self) -> None:
        """For reads: refuse a ``sqlite:///`` path with no store rather than create an empty one.

        A read on a path that does not exist is nearly always a typo; MLflow would quietly
        create an empty store there and the read would print an empty table.
        """
        path = self.sqlite_path
        if path is None or path.is_file():
            return
        suggestion = _nearby_store(path, self.settings.cwd)
        raise StoreNotFoundError(
            self.uri, self.source, str(path),
            f"sqlite:///{suggestion}" if suggestion is not None else None,
        )

    # --- MLflow client ---------------------------------------------------------------------

    def _credentials(self) -> tuple[config.Setting | None, ...]:
        """Username, password and token, in the order of ``config.CREDENTIAL_VARIABLES``."""
        return (self.settings.username, self.settings.password, self.settings.token)

    def configure_mlflow(self) -> None:
        """Hand credentials and bounded HTTP retries to MLflow (its environment), once.

        Values already in ``os.environ`` always win; only ``.env`` credentials and
        :data:`agentnn.config.HTTP_CLIENT_DEFAULTS` are added.
        """
        key = (self.uri, *(s.source for s in self._credentials() if s is not None))
        with _configure_lock:
            if key in _configured:
                return
            for name, setting in zip(config.CREDENTIAL_VARIABLES, self._credentials()):
                if setting is not None and setting.source == ".env":
                    os.environ.setdefault(name, setting.value)
            if self.is_http:
                for name, value in config.HTTP_CLIENT_DEFAULTS.items():
                    os.environ.setdefault(name, value)
            if self.masked_uri != self.uri:
                # MLflow prints "View run … at: <tracking URI>" on start_run, password included.
                os.environ[config.MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT] = "true"
            _configured.add(key)

    def client(self) -> MlflowClient:
        """An ``MlflowClient`` on this store (tracking and registry), made once.

        A server or a remote database is probed first, so a dead one fails in seconds.
        """
        with self._lock:
            if self._client is None:
                self.configure_mlflow()
                if self.is_http or (self.is_sql and not self.is_sqlite):
                    self.check()
                if self.settings.artifact_location is not None:  # the embedded default
                    Path(self.settings.artifact_location.value).mkdir(parents=True, exist_ok=True)
                if self.is_sqlite:  # created (the embedded one also upgraded) once, under a lock
                    from agentnn.mlflow_integration.store.embedded import ensure_sqlite_store

                    with self.errors():
                        ensure_sqlite_store(self.uri, upgrade=self.is_embedded)
                from mlflow import MlflowClient

                with self.errors():
                    self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
            return self._client

    # --- health ----------------------------------------------------------------------------

    def probe(self, timeout: float = DEFAULT_PROBE_TIMEOUT, *, full: bool = True) -> StoreHealth:
        """Ask the store whether it answers and how it is set up; never raises for a dead one.

        ``full=False`` asks a server only what :meth:`check` needs (does it answer, do the
        credentials pass): two requests instead of six.
        """
        if self.is_http:
            return self._probe_http(timeout, full)
        if self.is_sqlite:
            return self._probe_sqlite()
        if self.is_sql:
            return self._probe_sql(timeout)
        return StoreHealth(self.masked_uri, self.kind or "file", reachable=False,
                           detail="agentnn cannot probe this kind of store")

    def check(self, timeout: float = DEFAULT_PROBE_TIMEOUT) -> StoreHealth:
        """Probe, and raise the translated error when the store does not answer or refuses us."""
        health = self.probe(timeout, full=False)
        if health.problem is not None:
            raise health.problem
        self._checked = True
        return health

    def _probe_http(self, timeout: float, full: bool) -> StoreHealth:
        settings = self.settings
        server = ServerProbe.of(
            self.uri, timeout,
            username=settings.username.value if settings.username is not None else None,
            password=settings.password.value if settings.password is not None else None,
            token=settings.token.value if settings.token is not None else None,
        )
        get = server.get
        credentials = server.sends_credentials

        kind = self.kind
        try:
            # Whether it answers at all gets one short connect-and-first-byte budget: a server
            # that accepts connections and never answers is given up on in seconds, while the
            # requests below (a basic-auth server hashes the password on each) get ``timeout``.
            get("/health", authenticated=False, timeout=min(timeout, ANSWER_TIMEOUT))
        except Exception as error:  # every failure is reported, translated
            failure = self.translate(error)
            return StoreHealth(self.masked_uri, kind, reachable=False,
                               detail=failure.reason if isinstance(failure, TrackingURIError)
                               else str(failure), problem=failure)
        version: str | None = None
        backend: str | None = None
        auth_enabled: bool | None = None
        artifacts: bool | None = None
        search = "/api/2.0/mlflow/experiments/search?max_results=1"
        try:
            status, search_body = get(search)
            if full:
                answer, body = get("/version")  # the basic-auth app guards even /version
                version = body.decode(errors="replace").strip()[:40] if answer == 200 else None
                answer, body = get("/api/3.0/mlflow/server-info", authenticated=False)
                store_type = _json(body).get("store_type") if answer == 200 else None
                backend = None if store_type is None else str(store_type)
                open_status = get(search, authenticated=False)[0] if credentials else status
                auth_enabled = open_status in (401, 403)
                answer, _ = get("/api/2.0/mlflow-artifacts/artifacts?path=")
                artifacts = True if answer == 200 else None if answer in (401, 403) else False
            credentials_ok = None if not credentials and status == 200 else status in (200, 403)
        except Exception as error:  # every failure is reported, translated
            failure = self.translate(error)
            return StoreHealth(self.masked_uri, kind, reachable=False,
                               detail=getattr(failure, "reason", str(failure)), problem=failure)
        problem: AgentNNError | None = None
        detail = ""
        if status == 401:
            detail = ("the server refused the credentials" if credentials
                      else "no credentials given")
            problem = AuthenticationError(self.uri, self.source, f"HTTP 401, {detail}")
        elif status == 403 and b"Invalid Host header" in search_body:
            detail = (f"the server refused the Host header {urlsplit(server.base).netloc!r}; "
                      "add it to the server's --allowed-hosts (host:port, or host:*)")
            problem = TrackingURIError(self.uri, self.source, detail)
        elif status == 403:
            detail = "the credentials may not read experiments"
            problem = PermissionDeniedError(self.uri, self.source, f"HTTP 403, {detail}")
        elif status >= 500:
            detail = f"the server answered HTTP {status}"
            problem = TrackingURIError(self.uri, self.source, detail)
        return StoreHealth(
            self.masked_uri, kind, reachable=True, server_version=version, backend=backend,
            auth_enabled=auth_enabled, credentials_ok=credentials_ok, artifacts_proxied=artifacts,
            detail=mask_text(detail, self.settings.secrets), problem=problem,
        )

    def _probe_sqlite(self) -> StoreHealth:
        path = self.sqlite_path
        if path is not None and not path.is_file() and self.is_embedded:
            return StoreHealth(self.masked_uri, "sqlite", reachable=False, backend="sqlite",
                               detail=f"the embedded store {path} is created by the first run")
        if path is None or not path.is_file():
            problem = (StoreNotFoundError(self.uri, self.source, str(path), None)
                       if path is not None else TrackingURIError(self.uri, self.source, "no path"))
            return StoreHealth(self.masked_uri, "sqlite", reachable=False, backend="sqlite",
                               detail=f"no MLflow store at {path} (a write creates it)",
                               problem=problem)
        try:
            uri = f"file:{quote(str(path.resolve()))}?mode=ro"
            with sqlite3.connect(uri, uri=True, timeout=5) as connection:
                revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error as error:
            problem = TrackingURIError(self.uri, self.source,
                                       f"not a usable MLflow store: {error}")
            return StoreHealth(self.masked_uri, "sqlite", reachable=False, backend="sqlite",
                               detail=str(error), problem=problem)
        return StoreHealth(
            self.masked_uri, "sqlite", reachable=True, backend="sqlite",
            server_version=f"SQLite {sqlite3.sqlite_version}, "
                           f"schema {revision[0] if revision else '?'}",
            artifacts_proxied=False,
        )

    def _probe_sql(self, timeout: float) -> StoreHealth:
        try:
            import sqlalchemy

            connect_args = ({"connect_timeout": max(1, int(timeout))}
                            if self.kind in ("postgresql", "mysql") else {})
            engine = sqlalchemy.create_engine(self.uri, connect_args=connect_args)
            try:
                with engine.connect() as connection:
                    info = engine.dialect.server_version_info
                    # An empty database is a usable store: MLflow creates its schema there.
                    has_schema = sqlalchemy.inspect(connection).has_table("alembic_version")
                    revision = connection.execute(
                        sqlalchemy.text("SELECT version_num FROM alembic_version")
                    ).scalar() if has_schema else "none yet (MLflow creates it)"
            finally:
                engine.dispose()
        except Exception as error:  # every failure is reported, translated
            problem = self.translate(error)
            credentials_ok = False if isinstance(problem, AuthenticationError) else None
            return StoreHealth(self.masked_uri, self.kind, reachable=False, backend=self.kind,
                               credentials_ok=credentials_ok,
                               detail=getattr(problem, "reason", str(problem)), problem=problem)
        version = ".".join(str(part) for part in info) if info else None
        return StoreHealth(
            self.masked_uri, self.kind, reachable=True, backend=self.kind,
            server_version=f"{version}, schema {revision}", credentials_ok=True,
            artifacts_proxied=False,
        )

    # --- errors ----------------------------------------------------------------------------

    @contextmanager
    def errors(self, *, kind: str = "", name: str = "") -> Iterator[None]:
        """Re-raise MLflow, HTTP, SQL and driver errors as agentnn errors; others pass through.

        ``kind``/``name`` say what was asked for ("run", run id), for not-found messages.
        """
        try:
            yield
        except AgentNNError:
            raise
        except Exception as error:
            translated = self._translate(error, kind, name)
            if translated is None:
                raise
            raise translated from None

    def translate(self, error: BaseException, *, kind: str = "", name: str = "") -> AgentNNError:
        """The agentnn error for ``error``: one masked line naming the store and its source."""
        translated = self._translate(error, kind, name)
        if translated is not None:
            return translated
        return TrackingURIError(self.uri, self.source, self._line(error))

    def _line(self, error: BaseException | str) -> str:
        text = str(getattr(error, "message", error)) if not isinstance(error, str) else error
        line = next((part for part in text.splitlines() if part.strip()), "")
        line = line or type(error).__name__
        return mask_text(line.strip(), self.settings.secrets)[:MAX_DETAIL]

    def _translate(self, error: BaseException, kind: str, name: str) -> AgentNNError | None:
        """One agentnn error per :class:`~agentnn.mlflow_integration.store.classify.Outcome`,
        worded for this store; None for an error that is not the store's."""
        if isinstance(error, AgentNNError):
            return error
        missing = classify.missing_driver(error)
        if missing is not None:
            return TrackingURIError(
                self.uri, self.source, f"the database driver {missing!r} is not installed; "
                f"install it with: pip install {classify.DRIVER_PACKAGES.get(missing, missing)}",
            )
        mlflow_exceptions = sys.modules.get("mlflow.exceptions")
        if mlflow_exceptions is not None and isinstance(error, mlflow_exceptions.MlflowException):
            return self._translate_mlflow(error, kind, name)
        sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
        if sqlalchemy_exc is not None and isinstance(error, sqlalchemy_exc.SQLAlchemyError):
            return self._translate_sql(error)
        outcome = classify.classify(error)
        if outcome in classify.NEEDS_A_PERSON:  # an HTTP 401/403 that is no MLflow error
            detail = ("HTTP 401" if outcome is Outcome.AUTHENTICATION
                      else f"HTTP 403: {self._line(error)}")
            return self._translate_status(outcome, detail)
        if outcome is Outcome.UNREACHABLE:
            reason = self._connection_reason(error)
            return StoreUnreachableError(
                self.uri, self.source, f"the store does not answer ({reason})"
            )
        return None

    def _translate_mlflow(self, error: BaseException, kind: str, name: str) -> AgentNNError:
        """The outer error's own code first; a wrapped error (a database's refusal, a missing
        driver) is worded by itself; then the rest of the outer error's codes."""
        line = self._line(error)
        outcome = classify.classify(error, follow_causes=False)
        cause = classify.root_cause(error)
        if outcome is Outcome.AUTHENTICATION:
            return AuthenticationError(self.uri, self.source, "HTTP 401")
        if "Invalid Host header" in line:
            return TrackingURIError(self.uri, self.source, "the server refused the Host header; "
                                    "add host:port to its --allowed-hosts")
        if outcome is Outcome.PERMISSION:
            return PermissionDeniedError(self.uri, self.source, _strip_code(line))
        if outcome is Outcome.UNREACHABLE:
            return StoreUnreachableError(
                self.uri, self.source,
                f"the store does not answer ({self._connection_reason(cause or line)})",
            )
        if cause is not None and cause is not error:
            translated = self._translate(cause, kind, name)
            if translated is not None:
                return translated
        if outcome is Outcome.NOT_FOUND:
            return NotFoundError(kind or "resource", name or _strip_code(line))
        if outcome in (Outcome.REFUSED, Outcome.ALREADY_EXISTS):
            if kind and name:
                return InvalidArgumentError(f"{kind} {name!r}: {_strip_code(line)}")
            return InvalidArgumentError(_strip_code(line))
        if outcome is Outcome.RETRY_LATER:
            return StoreUnreachableError(self.uri, self.source,
                                         f"the store is not serving now ({_strip_code(line)})")
        if outcome is Outcome.UNSUPPORTED:
            return TrackingURIError(self.uri, self.source,
                                    f"not an MLflow server at this address ({_strip_code(line)})")
        if outcome is Outcome.SERVER_ERROR or "error code 5" in line:
            return TrackingURIError(self.uri, self.source,
                                    f"the store failed with an internal error: {_strip_code(line)}")
        return TrackingURIError(self.uri, self.source, f"the store refused the request: {line}")

    def _translate_sql(self, error: BaseException) -> AgentNNError:
        orig = getattr(error, "orig", None) or error
        line = self._line(orig)
        outcome = classify.classify(error)
        if outcome in classify.NEEDS_A_PERSON:
            return self._translate_status(outcome, line)
        if self.is_sqlite:
            return TrackingURIError(self.uri, self.source, f"the database cannot be used: {line}")
        if outcome is Outcome.UNREACHABLE:
            return StoreUnreachableError(self.uri, self.source,
                                         f"the database does not answer ({line})")
        return TrackingURIError(self.uri, self.source, f"the database refused: {line}")

    def _translate_status(self, outcome: Outcome, detail: str) -> AgentNNError:
        """A refusal that is no MLflow error: an HTTP 401/403, a database's password check."""
        if outcome is Outcome.AUTHENTICATION:
            return AuthenticationError(self.uri, self.source, detail)
        return PermissionDeniedError(self.uri, self.source, detail)

    def _connection_reason(self, error: BaseException | str) -> str:
        """The short reason of a connection failure: refused, timed out, unknown host."""
        text = str(getattr(error, "reason", error))
        lower = text.lower()
        for needle, reason in (
            ("refused", "connection refused"),
            ("name or service not known", "unknown host"),
            ("nodename nor servname", "unknown host"),
            ("temporary failure in name resolution", "unknown host"),
            ("getaddrinfo failed", "unknown host"),
            ("timed out", "timed out"),
            ("timeout", "timed out"),
            ("certificate verify failed", "TLS certificate not trusted; see "
             "MLFLOW_TRACKING_SERVER_CERT_PATH"),
            ("wrong version number", "TLS handshake failed (is it http, not https?)"),
            ("no route to host", "no route to host"),
            ("network is unreachable", "network is unreachable"),
            ("remote end closed", "the server closed the connection"),
            ("connection reset", "the server reset the connection"),
        ):
            if needle in lower:
                return reason
        return self._line(text)


# --- helpers -----------------------------------------------------------------------------


def _json(body: bytes) -> dict[str, object]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _strip_code(line: str) -> str:
    """``RESOURCE_DOES_NOT_EXIST: Run 'x' not found`` -> ``Run 'x' not found``."""
    head, sep, rest = line.partition(": ")
    return rest if sep and head.isupper() and "_" in head else line


def _nearby_store(path: Path, cwd: Path) -> Path | None:
    """An existing store the user may have meant instead of ``path``: same folder first."""
    folder = path.parent
    candidates = [folder / config.DEFAULT_DB_NAME, folder / config.DEFAULT_STORE_DIR
                  / config.DEFAULT_DB_NAME]
    if folder.is_dir():
        import difflib

        siblings = {child.name: child for child in folder.glob("*.db") if child.is_file()}
        for close in difflib.get_close_matches(path.name, list(siblings), n=2, cutoff=0.5):
            candidates.insert(0, siblings[close])
    candidates += [cwd / config.DEFAULT_STORE_DIR / config.DEFAULT_DB_NAME,
                   cwd / config.DEFAULT_DB_NAME]
    for candidate in candidates:
        if candidate != path and candidate.is_file():
            return candidate.resolve()
    return None
