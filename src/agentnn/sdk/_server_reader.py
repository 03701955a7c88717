"""Read-only answers from the agentnn app of a team server, without importing MLflow.

On a team server MLflow's REST API answers ``agentnn model runs`` with a search page per
1,000 runs and counts an experiment's runs by listing them all, and ``import mlflow`` alone
costs about two seconds. When the server runs the agentnn app (``mlflow server --app-name
agentnn``, see docs/team-server.md), one request with the standard library answers each
question from SQL on the server (:mod:`agentnn.server.reads`), under the same permissions.

Which servers: the app's capabilities answer (``GET /agentnn/api/v1/capabilities``) is asked
once per process and server; a stock server (404 there) is left to MLflow's REST API, and so is
any single question the app declines (HTTP 501: a filter outside the common subset, a schema it
was not tested on). A server that accepts connections and never answers fails the first request
within :data:`~agentnn.mlflow_integration.store.probe.ANSWER_TIMEOUT` seconds with one line.

Credentials as MLflow's client sends them: ``user:password@`` in the URI first, then
``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` or ``MLFLOW_TRACKING_TOKEN`` (environment, then
``.env``), TLS per ``MLFLOW_TRACKING_INSECURE_TLS`` and ``MLFLOW_TRACKING_SERVER_CERT_PATH``.
Ways of signing in only MLflow speaks (client certificates, auth plugins, SigV4, the
``~/.mlflow/credentials`` file) leave the reads to MLflow. Errors are classified by
:mod:`agentnn.mlflow_integration.store.classify` and worded, masked, by the store layer.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from agentnn import config
from agentnn.errors import NotFoundError, PermissionDeniedError
from agentnn.mlflow_integration.store.classify import Outcome, classify
from agentnn.mlflow_integration.store.client import Store
from agentnn.mlflow_integration.store.probe import ANSWER_TIMEOUT, MAX_BODY, split_userinfo
from agentnn.sdk._records import (
    ExperimentInfo,
    MetricPoint,
    ModelVersionInfo,
    RunDetail,
    RunInfo,
)
from agentnn.sdk._sqlite_reader import Unsupported

if TYPE_CHECKING:  # urllib.request and ssl cost ~20 ms: imported when a server is read
    import ssl
    import urllib.error

READS_ROUTE = "reads"  # under the app's API prefix (agentnn.mlflow_integration.journal.transfer)
USER_AGENT = "agentnn-fast-reads"

logger = logging.getLogger(__name__)

# Per process: server base URL (and who asks) -> the read routes its app serves (none: stock).
_capabilities: dict[tuple[str, str | None], frozenset[str]] = {}
_capabilities_lock = threading.Lock()


@dataclass(frozen=True)
class Connection:
    """Where to send a read and what to send with it; the password never leaves this object
    except in the Authorization header."""

    base: str
    authorization: str | None
    context: ssl.SSLContext | None

    @property
    def who(self) -> str | None:
        """A key for the capabilities cache (the same server may answer users differently):
        a digest of the credentials, never the credentials themselves."""
        if not self.authorization:
            return None
        import hashlib

        return hashlib.sha256(self.authorization.encode()).hexdigest()[:16]


def connection_for(store: Store) -> Connection | None:
    """How to reach ``store``'s app with the credentials MLflow's client would send; None when
    only MLflow's own client knows how to sign in."""
    environ = os.environ
    if any(environ.get(name) for name in (config.MLFLOW_TRACKING_CLIENT_CERT_PATH,
                                          config.MLFLOW_TRACKING_AUTH,
                                          config.MLFLOW_TRACKING_AWS_SIGV4)):
        return None
    base, user, password = split_userinfo(store.uri)
    settings = store.settings
    if user is None and settings.username is not None and settings.password is not None:
        user, password = settings.username.value, settings.password.value
    authorization = None
    if user is not None:
        pair = f"{user}:{password or ''}".encode()
        authorization = "Basic " + base64.b64encode(pair).decode()
    elif settings.token is not None:
        authorization = f"Bearer {settings.token.value}"
    elif Path(config.MLFLOW_CREDENTIALS_FILE).expanduser().is_file():
        return None  # MLflow reads its own file of credentials; leave the sign-in to it
    context = None
    if base.startswith("https://"):
        import ssl

        if environ.get(config.MLFLOW_TRACKING_INSECURE_TLS, "").lower() == "true":
            context = ssl._create_unverified_context()
        else:
            context = ssl.create_default_context(
                cafile=environ.get(config.MLFLOW_TRACKING_SERVER_CERT_PATH) or None)
    return Connection(base=base, authorization=authorization, context=context)


class ServerReader:
    """The read-only questions of :class:`ModelManager`, asked of the agentnn app."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._connection = connection_for(store)

    # --- transport -----------------------------------------------------------------------

    def _get(self, path: str, params: list[tuple[str, str]], timeout: float,
             kind: str = "", name: str = "") -> dict[str, object]:
        """The JSON of ``GET path?params``; agentnn's errors for refusals and silence."""
        import urllib.error
        import urllib.request

        connection = self._connection
        assert connection is not None
        url = connection.base + path + (f"?{urlencode(params)}" if params else "")
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT,
                                                       "Accept": "application/json"})
        if connection.authorization:
            request.add_header("Authorization", connection.authorization)
        try:
            with urllib.request.urlopen(request, timeout=timeout,
                                        context=connection.context) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            raise self._refusal(error, kind, name) from None
        except OSError as error:  # refused, timed out (TimeoutError), unknown host
            raise self.store.translate(error, kind=kind, name=name) from None
        data = json.loads(body or b"{}")
        if not isinstance(data, dict):
            raise Unsupported(f"{path} answered no JSON object")
        return data

    def _refusal(self, error: urllib.error.HTTPError, kind: str, name: str) -> Exception:
        """An HTTP error answer as the exception callers expect."""
        if error.code == 501:  # the app declines this question: MLflow's REST API answers
            return Unsupported(_message(error) or "the app declined the question")
        outcome = classify(error)
        if outcome is Outcome.NOT_FOUND and kind:
            return NotFoundError(kind, name, _HINTS.get(kind, ""))
        if outcome is Outcome.REFUSED:
            return Unsupported(_message(error) or f"HTTP {error.code}")
        return self.store.translate(error, kind=kind, name=name)

    def served(self) -> frozenset[str]:
        """The read routes the server's app serves; empty for a stock server. Asked once per
        process and server.

        The one request that also tells whether the server answers at all: it gets the probe's
        short budget, so a silent server fails in seconds with one line.
        """
        if self._connection is None:
            return frozenset()
        from agentnn.mlflow_integration.journal.transfer import CAPABILITIES_PATH

        key = (self._connection.base, self._connection.who)
        with _capabilities_lock:
            if key in _capabilities:
                return _capabilities[key]
        try:
            answer = self._get(CAPABILITIES_PATH, [], ANSWER_TIMEOUT, "capabilities",
                               self.store.masked_uri)
            reads = answer.get("reads")
            routes = frozenset(str(r) for r in reads) if isinstance(reads, list) else frozenset()
        except (NotFoundError, Unsupported):  # a stock server: no such route
            routes = frozenset()
        except PermissionDeniedError:  # a server that guards even this: MLflow's REST API
            routes = frozenset()
        logger.debug("fast reads of %s: %s", self.store.masked_uri,
                     ", ".join(sorted(routes)) or "none, MLflow's REST API answers")
        with _capabilities_lock:
            _capabilities[key] = routes
        return routes

    def _known(self) -> bool:
        """True once this process has the server's capabilities answer."""
        if self._connection is None:
            return True
        with _capabilities_lock:
            return (self._connection.base, self._connection.who) in _capabilities

    def _read(self, route: str, params: list[tuple[str, str]], kind: str = "",
              name: str = "") -> dict[str, object]:
        """The answer of one read route, or :class:`Unsupported` when the app lacks it.

        A command's first read does not wait for the capabilities answer: it is sent at the
        same time (on a thread), and used only if the capabilities then name its route. That
        saves a command one round trip; a stock server just answers the read 403 or 404.
        """
        from agentnn.mlflow_integration.journal.transfer import API_PREFIX

        path = f"{API_PREFIX}/{READS_ROUTE}/{route}"
        if self._known():
            if route not in self.served():
                raise Unsupported(f"the server's agentnn app does not serve {route!r}")
            return self._get(path, params, config.FAST_READ_TIMEOUT, kind, name)
        outcome: list[dict[str, object] | Exception] = []

        def read() -> None:
            try:
                outcome.append(self._get(path, params, config.FAST_READ_TIMEOUT, kind, name))
            except Exception as error:  # handed to the caller below, if the route is served
                outcome.append(error)

        early = threading.Thread(target=read, name="agentnn-fast-read", daemon=True)
        early.start()
        if route not in self.served():  # silent or refusing servers raise here, in seconds
            raise Unsupported(f"the server's agentnn app does not serve {route!r}")
        early.join()
        answer = outcome[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    # --- the readers' questions ----------------------------------------------------------

    def list_experiments(self, include_deleted: bool) -> list[ExperimentInfo]:
        answer = self._read("experiments", [("include_deleted", _flag(include_deleted))])
        return [experiment_from_wire(item) for item in _items(answer, "experiments")]

    def find_experiment(self, ref: str) -> tuple[str, str]:
        answer = self._read("experiment", [("ref", ref)], "experiment", ref)
        return str(answer["experiment_id"]), str(answer["name"])

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str | None,
        order_by: list[str] | None,
        limit: int | None,
        include_deleted: bool = False,
    ) -> list[RunInfo]:
        if not experiment_ids:
            return []
        params = [("experiment", eid) for eid in experiment_ids]
        params += [("order_by", clause) for clause in order_by or []]
        if filter_string:
            params.append(("filter", filter_string))
        if limit is not None:
            params.append(("limit", str(limit)))
        params.append(("include_deleted", _flag(include_deleted)))
        answer = self._read("runs", params, "experiment", ", ".join(experiment_ids))
        return [run_from_wire(item) for item in _items(answer, "runs")]

    def best_run(self, experiment: str, metric: str, mode: str) -> RunInfo | None:
        answer = self._read("best", [("experiment", experiment), ("metric", metric),
                                     ("mode", mode)], "experiment", experiment)
        run = answer.get("run")
        return run_from_wire(run) if isinstance(run, dict) else None

    def match_run_ids(self, prefix: str, limit: int) -> list[str]:
        """Ids of runs (any lifecycle stage) starting with ``prefix``, at most ``limit``."""
        answer = self._read("match", [("prefix", prefix), ("limit", str(limit))])
        return [str(run_id) for run_id in _list(answer.get("run_ids"))]

    def get_run(self, run_id: str) -> RunInfo:
        return self.run_detail(run_id).run

    def run_detail(self, run_id: str) -> RunDetail:
        answer = self._read("run", [("run_id", run_id)], "run", run_id)
        run = answer.get("run")
        if not isinstance(run, dict):
            raise Unsupported("the run answer holds no run")
        return RunDetail(
            run=run_from_wire(run),
            experiment_name=_optional(answer.get("experiment_name")),
            artifact_uri=_optional(answer.get("artifact_uri")),
            artifacts=[str(path) for path in _list(answer.get("artifacts"))],
            child_run_ids=[str(item) for item in _list(answer.get("child_run_ids"))],
            logged_model_ids=[str(item) for item in _list(answer.get("logged_model_ids"))],
        )

    def metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> list[MetricPoint]:
        params = [("run_id", run_id), ("key", key)]
        if max_points is not None:
            params.append(("max_points", str(max_points)))
        answer = self._read("history", params, "run", run_id)
        points = [_list(point) for point in _list(answer.get("points"))]
        return [MetricPoint(_int(point[0]) or 0, _float(point[1]), _int(point[2]) or 0)
                for point in points if len(point) == 3]

    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        answer = self._read("versions", [("name", name)], "registered model", name)
        return [version_from_wire(item) for item in _items(answer, "versions")]


# --- the wire shapes (agentnn.server.read_queries writes them) -----------------------------


def experiment_from_wire(item: dict[str, object]) -> ExperimentInfo:
    return ExperimentInfo(
        experiment_id=str(item["experiment_id"]),
        name=str(item["name"]),
        lifecycle_stage=str(item["lifecycle_stage"]),
        run_count=_int(item["run_count"]) or 0,
        last_run_ms=_int(item.get("last_run_ms")),
        artifact_location=_optional(item.get("artifact_location")),
    )


def run_from_wire(item: dict[str, object]) -> RunInfo:
    return RunInfo(
        run_id=str(item["run_id"]),
        run_name=_optional(item.get("run_name")),
        experiment_id=str(item["experiment_id"]),
        status=str(item["status"]),
        start_time_ms=_int(item.get("start_time_ms")),
        end_time_ms=_int(item.get("end_time_ms")),
        metrics={str(k): _float(v) for k, v in _dict(item.get("metrics")).items()},
        params={str(k): str(v) for k, v in _dict(item.get("params")).items()},
        tags={str(k): str(v) for k, v in _dict(item.get("tags")).items()},
        lifecycle_stage=str(item.get("lifecycle_stage") or "active"),
    )


def version_from_wire(item: dict[str, object]) -> ModelVersionInfo:
    return ModelVersionInfo(
        name=str(item["name"]),
        version=_int(item["version"]) or 0,
        aliases=[str(alias) for alias in _list(item.get("aliases"))],
        run_id=_optional(item.get("run_id")),
        source=_optional(item.get("source")),
        status=_optional(item.get("status")),
        created_ms=_int(item.get("created_ms")),
        model_id=_optional(item.get("model_id")),
        run_metrics={str(k): _float(v) for k, v in _dict(item.get("run_metrics")).items()},
        stage=_optional(item.get("stage")),
    )


# --- helpers -----------------------------------------------------------------------------

_HINTS = {"experiment": "list them with: agentnn model experiments",
          "registered model": "list versions of a known name or register one first"}


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _items(answer: dict[str, object], key: str) -> list[dict[str, object]]:
    return [item for item in _list(answer.get(key)) if isinstance(item, dict)]


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def _dict(value: object) -> dict[object, object]:
    return dict(value) if isinstance(value, dict) else {}


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) else None


def _float(value: object) -> float:
    """A metric value; JSON's ``NaN`` literal reads back as a float already."""
    return float(value) if isinstance(value, (int, float, str)) else math.nan


def _message(error: urllib.error.HTTPError) -> str:
    try:
        data = json.loads(error.read(MAX_BODY) or b"{}")
    except (OSError, ValueError):
        return ""
    return str(data.get("message", "")) if isinstance(data, dict) else ""
