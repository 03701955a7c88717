"""The writer's client of the agentnn app's bulk ingest (``mlflow server --app-name agentnn``).

Why: through MLflow's REST API a server takes 1,000 points per request (and, with basic auth,
checks a password each time); the agentnn app takes a whole group of journal chunks per request
and writes it in one transaction. A stock server has no such app: its answer to the
capabilities route (404) sends the writer to MLflow's ``log_batch``, as before.

Per store URI (``http(s)://`` only), the capabilities are asked once and kept for the writer's
life; the path taken is said in one line of the writer's log. A store that did not answer the
question is asked again at the next send. Errors are MLflow's own (``MlflowException`` from
MLflow's REST helpers, with the server's error code), so the writer's one classification
(:mod:`agentnn.mlflow_integration.store.classify`) decides: keep for later (no answer, 5xx,
401, 403) or set aside (the server refused these records).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentnn.mlflow_integration.journal import transfer
from agentnn.mlflow_integration.journal.records import Record
from agentnn.mlflow_integration.store.probe import ServerProbe

if TYPE_CHECKING:
    from mlflow.utils.rest_utils import MlflowHostCreds

__all__ = ["AppPath", "path_for", "send", "takes"]

# Requests sent at once: while the server writes one request's rows, the next is encoded, sent
# and decoded. Measured on 2 busy cores (10 x 20,000 points into the app with basic auth):
# 9,326 and 7,910 points/s with one request at a time, 10,490 and 9,895 with two, 10,213
# with three.
IN_FLIGHT = 2
MIN_PART = 5_000  # records: smaller sends go in one request
CAPABILITIES_TIMEOUT = 10.0  # seconds for the one question; the basic-auth check included
SEND_TIMEOUT = 120.0  # seconds for one request: tens of thousands of rows in one transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppPath:
    """What a server offers the writer: the ingest route (and its limit) or not, and why."""

    ingest: bool
    reason: str
    max_records: int = 0


_paths: dict[str, AppPath] = {}
_lock = threading.Lock()


def takes(tracking_uri: str, *, report: Callable[[str], None] | None = None) -> bool:
    """True when ``tracking_uri`` is a server whose agentnn app takes journal chunks.

    Raises:
        MlflowException: the server did not answer the question, or refused the credentials
            (keep the records for later; the question is asked again at the next send).
    """
    if not tracking_uri.lower().startswith(("http://", "https://")):
        return False
    return path_for(tracking_uri, report=report).ingest


def path_for(tracking_uri: str, *, report: Callable[[str], None] | None = None) -> AppPath:
    """The server's path, asked once per URI and kept (said once in the writer's log)."""
    with _lock:
        path = _paths.get(tracking_uri)
        if path is None:
            path = _ask(tracking_uri)
            _paths[tracking_uri] = path
            probe = ServerProbe.of(tracking_uri)
            way = "agentnn ingest" if path.ingest else "log_batch"
            (report or logger.info)(f"{probe.base}: {way} path ({path.reason})")
        return path


def _ask(tracking_uri: str) -> AppPath:
    """GET the capabilities: 200 names what the app offers, 404 (or basic auth's 403 for a
    route it does not know) means a stock server."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.rest_utils import verify_rest_response

    probe = ServerProbe.of(tracking_uri, CAPABILITIES_TIMEOUT)
    status, body = probe.get(transfer.CAPABILITIES_PATH)
    if status == 404:
        return AppPath(False, "no agentnn app on the server: MLflow's REST API")
    if status == 403:  # MLflow's basic-auth app refuses every route it does not know
        return AppPath(False, "the server guards the route (no agentnn app behind MLflow's "
                              "basic auth): MLflow's REST API")
    if status != 200:
        verify_rest_response(_Answer(status, body), transfer.CAPABILITIES_PATH)
    try:
        answer = json.loads(body)
        offered = bool(answer["ingest"]) and int(answer["api"]) == transfer.API_VERSION
        limit = int(answer.get("limits", {}).get("max_records", 0))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise MlflowException(f"the capabilities answer is not understood: {error}") from None
    if not offered:
        return AppPath(False, f"the agentnn app {answer.get('agentnn')} offers no ingest "
                              f"(api {answer.get('api')}): MLflow's REST API")
    return AppPath(True, f"agentnn app {answer.get('agentnn')}, api {answer['api']}", limit)


@dataclass
class _Answer:
    """The two fields of a response that MLflow's ``verify_rest_response`` reads."""

    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


def send(tracking_uri: str, run_id: str, records: Sequence[Record]) -> None:
    """Store ``records`` (no end record) of ``run_id`` through the app: in up to
    :data:`IN_FLIGHT` requests at once, each within the server's record limit and each one
    transaction. Returns when every request is stored.

    A part stored while another failed is stored again with the rest on the next try, which
    stores nothing twice (see the ingest route).

    Raises:
        MlflowException: the server's refusal (its error code and message), or no answer.
    """
    path = path_for(tracking_uri)
    parts = _parts(len(records), path.max_records)
    credentials = ServerProbe.of(tracking_uri).credentials
    if len(parts) == 1:
        _post(credentials, run_id, records)
        return
    futures = [_pool().submit(_post, credentials, run_id, records[first:stop])
               for first, stop in parts]
    wait(futures)  # every request ended before the cursor moves, or the first error raises
    for future in futures:
        future.result()


def _parts(count: int, max_records: int) -> list[tuple[int, int]]:
    """Cut ``count`` records into requests: as many as are in flight at once (none smaller than
    :data:`MIN_PART` records), and within the server's limit."""
    in_flight = max(1, min(IN_FLIGHT, count // MIN_PART))
    size = -(-count // in_flight) if count else 1
    if max_records:
        size = min(size, max_records)
    return [(first, min(first + size, count)) for first in range(0, count, size)] or [(0, 0)]


_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="agentnn-ingest")
        return _executor


def _post(credentials: MlflowHostCreds, run_id: str, records: Sequence[Record]) -> None:
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    response = http_request(
        credentials, transfer.chunks_path(run_id), "POST", data=transfer.encode(run_id, records),
        extra_headers={"Content-Encoding": "deflate", "Content-Type": transfer.CONTENT_TYPE},
        max_retries=0, backoff_factor=0, timeout=SEND_TIMEOUT, raise_on_status=False,
    )
    verify_rest_response(response, transfer.chunks_path(run_id))
