"""What a failed store call means, decided in one place: the :class:`Outcome` of an error.

MLflow, its REST client (requests/urllib3), urllib, SQLAlchemy and the database drivers each
say "not found", "wrong password" or "no answer" in their own way; :func:`classify` reads them
all, and everything in agentnn that asks what an error means asks here: the store's translator
into agentnn errors, the writer, the pusher, the SDK readers and the model loader.

    UNREACHABLE     no answer: refused, timed out, unknown host, TLS failure, database down
    RETRY_LATER     an answer meaning "not now": 503, 429 (TEMPORARILY_UNAVAILABLE, rate limit)
    SERVER_ERROR    the store failed on its side: INTERNAL_ERROR and other 5xx
    AUTHENTICATION  the credentials were refused (HTTP 401, a database password)
    PERMISSION      the credentials lack a permission (HTTP 403)
    NOT_FOUND       the run, experiment, model or version asked for is not there
    ALREADY_EXISTS  what was to be created is there already
    UNSUPPORTED     the store does not have this endpoint (a server older than MLflow 3)
    REFUSED         the store said no to these values (bad input, malformed id, other 4xx)
    UNKNOWN         not an error a store raised; callers let it pass or treat it as transient

What a background sender does with each (the one retry rule):

- :data:`TRANSIENT` (and ``UNKNOWN``, e.g. a locked SQLite file): keep everything and try
  again with a short back-off; the store will likely answer soon.
- :data:`NEEDS_A_PERSON` (authentication and permission): never retried in a tight loop, and
  never dropped. Someone has to fix the credentials or grant the permission, which takes
  minutes, not seconds. The writer keeps the records in the journal and waits its longest
  back-off between tries (``agentnn model sync`` sends them at once); the pusher keeps the run
  pending and tries again only after :data:`NEEDS_A_PERSON_BACKOFF`, saying so in its log
  (``agentnn model push --pending`` tries at once).
- Anything else is an answer about this request: retrying cannot change it. The writer sets
  the refused records aside; the pusher gives the run up until a push is asked for.
"""

from __future__ import annotations

import enum
import sys
import urllib.error
from types import ModuleType

__all__ = [
    "NEEDS_A_PERSON",
    "NEEDS_A_PERSON_BACKOFF",
    "TRANSIENT",
    "Outcome",
    "classify",
    "error_code",
    "http_status",
    "is_already_exists",
    "is_connection_error",
    "is_not_found",
    "is_outdated_schema",
    "is_unsupported",
    "keep_for_later",
    "lacks_logged_models",
    "missing_driver",
    "root_cause",
]


class Outcome(enum.Enum):
    """What a failed store call means; see the module docstring for each one."""

    UNREACHABLE = "unreachable"
    RETRY_LATER = "retry later"
    SERVER_ERROR = "server error"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    NOT_FOUND = "not found"
    ALREADY_EXISTS = "already exists"
    UNSUPPORTED = "unsupported"
    REFUSED = "refused"
    UNKNOWN = "unknown"


TRANSIENT = frozenset({Outcome.UNREACHABLE, Outcome.RETRY_LATER, Outcome.SERVER_ERROR})
"""The store may well answer on the next try."""
NEEDS_A_PERSON = frozenset({Outcome.AUTHENTICATION, Outcome.PERMISSION})
"""Only a person changing credentials or permissions makes the next try pass."""
NEEDS_A_PERSON_BACKOFF = 300.0
"""Seconds a background pusher waits before it tries refused credentials again."""

# MLflow's error codes (mlflow.protos.databricks_pb2.ErrorCode names), by what they mean.
_CODE_OUTCOMES = {
    "UNAUTHENTICATED": Outcome.AUTHENTICATION,
    "CUSTOMER_UNAUTHORIZED": Outcome.AUTHENTICATION,
    "PERMISSION_DENIED": Outcome.PERMISSION,
    "RESOURCE_DOES_NOT_EXIST": Outcome.NOT_FOUND,
    "NOT_FOUND": Outcome.NOT_FOUND,
    "RESOURCE_ALREADY_EXISTS": Outcome.ALREADY_EXISTS,
    "ALREADY_EXISTS": Outcome.ALREADY_EXISTS,
    "ENDPOINT_NOT_FOUND": Outcome.UNSUPPORTED,
    "TEMPORARILY_UNAVAILABLE": Outcome.RETRY_LATER,
    "REQUEST_LIMIT_EXCEEDED": Outcome.RETRY_LATER,
    "RESOURCE_EXHAUSTED": Outcome.RETRY_LATER,
    "DEADLINE_EXCEEDED": Outcome.RETRY_LATER,
    "INVALID_PARAMETER_VALUE": Outcome.REFUSED,
    "BAD_REQUEST": Outcome.REFUSED,
    "MALFORMED_REQUEST": Outcome.REFUSED,
    "INVALID_STATE": Outcome.REFUSED,
    "INTERNAL_ERROR": Outcome.SERVER_ERROR,
}

# Database drivers SQLAlchemy needs per URI scheme: (module it imports, package to install).
DRIVER_PACKAGES = {
    "psycopg2": "psycopg2-binary",
    "psycopg": "psycopg[binary]",
    "pg8000": "pg8000",
    "pymysql": "PyMySQL",
    "MySQLdb": "mysqlclient (or PyMySQL with a mysql+pymysql:// URI)",
    "mysql": "mysql-connector-python",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
}

# Exception class names of requests and urllib3 that mean no answer came back.
_NO_ANSWER_CLASSES = frozenset({"ConnectionError", "Timeout", "MaxRetryError",
                                "NewConnectionError", "ProtocolError", "SSLError",
                                "ReadTimeoutError"})


def classify(error: BaseException, *, follow_causes: bool = True) -> Outcome:
    """What ``error`` means, whichever library raised it.

    An MLflow error that only says "internal error" is judged by the error it wraps (a
    database refusing the password, say) unless ``follow_causes`` is False, which the
    translator uses to word the outer error itself.
    """
    from agentnn import errors

    if isinstance(error, errors.AgentNNError):
        return _classify_agentnn(error)
    mlflow_exceptions = sys.modules.get("mlflow.exceptions")
    if mlflow_exceptions is not None and isinstance(error, mlflow_exceptions.MlflowException):
        return _classify_mlflow(error, follow_causes)
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_exc is not None and isinstance(error, sqlalchemy_exc.SQLAlchemyError):
        return _classify_sql(error, sqlalchemy_exc)
    status = http_status(error)
    if status is not None:
        return _classify_status(status)
    if is_connection_error(error):
        return Outcome.UNREACHABLE
    return Outcome.UNKNOWN


def keep_for_later(error: BaseException) -> bool:
    """True when what was being sent must be kept and sent again, not set aside.

    "Not now" (no answer, a server error, refused credentials, an error that is not the
    store's) as opposed to "the store said no to these records".
    """
    outcome = classify(error)
    return outcome in TRANSIENT or outcome in NEEDS_A_PERSON or outcome is Outcome.UNKNOWN


def is_not_found(error: BaseException, *, lookup: bool = False) -> bool:
    """True when the thing asked for does not exist.

    ``lookup=True`` for a lookup by a name or id the user gave: MLflow's SQL stores answer
    INVALID_PARAMETER_VALUE for a malformed run id or a lost alias where a server says
    RESOURCE_DOES_NOT_EXIST, and to the user both mean "no such thing".
    """
    if classify(error, follow_causes=False) is Outcome.NOT_FOUND:
        return True
    return lookup and error_code(error) == "INVALID_PARAMETER_VALUE"


def is_already_exists(error: BaseException) -> bool:
    """True when a create met an existing experiment, registered model or other thing."""
    return classify(error, follow_causes=False) is Outcome.ALREADY_EXISTS


def is_unsupported(error: BaseException) -> bool:
    """True when the store lacks the endpoint: a server older than MLflow 3 has no logged
    models, so their searches are answered with ENDPOINT_NOT_FOUND."""
    return classify(error, follow_causes=False) is Outcome.UNSUPPORTED


def lacks_logged_models(error: BaseException) -> bool:
    """True when a search for logged models failed because the store has none to search: no
    such endpoint (:func:`is_unsupported`), or a store class that says it does not support
    the search (stores older than MLflow 3)."""
    if is_unsupported(error) or isinstance(error, NotImplementedError):
        return True
    text = str(error).lower()
    return "not" in text and "support" in text


def is_outdated_schema(error: BaseException) -> bool:
    """True when MLflow refuses a SQL store whose schema is older than this MLflow (``mlflow db
    upgrade`` fixes it)."""
    return "out-of-date" in str(error)


def error_code(error: BaseException) -> str:
    """MLflow's error code of ``error`` (``RESOURCE_DOES_NOT_EXIST``…), or ``""``."""
    return str(getattr(error, "error_code", "") or "")


def http_status(error: BaseException) -> int | None:
    """The HTTP status behind ``error``: a urllib or requests response's, else None.

    MLflow's own errors are classified by their error code instead, which a server sends
    and a local store raises alike.
    """
    if isinstance(error, urllib.error.HTTPError):
        return error.code
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def is_connection_error(error: BaseException) -> bool:
    """True for refused, timed-out or unresolvable connections (socket, urllib, requests),
    and for MLflow's REST client saying its request got no answer."""
    if isinstance(error, (ConnectionError, TimeoutError, urllib.error.URLError)):
        return True
    if isinstance(error, OSError) and error.errno is None and "timed out" in str(error):
        return True
    module = type(error).__module__
    if module.startswith(("requests", "urllib3")):
        return bool({cls.__name__ for cls in type(error).__mro__} & _NO_ANSWER_CLASSES)
    mlflow_exceptions = sys.modules.get("mlflow.exceptions")
    if mlflow_exceptions is not None and isinstance(error, mlflow_exceptions.MlflowException):
        # mlflow.utils.rest_utils.http_request wraps every transport failure in this text.
        line = str(getattr(error, "message", error))
        return "API request to" in line and ("failed with exception" in line
                                             or "timeout exception" in line
                                             or "Max retries" in line)
    return False


def root_cause(error: BaseException) -> BaseException | None:
    """The innermost exception MLflow wrapped (``raise … from``), if any."""
    seen: set[int] = set()
    current: BaseException | None = error.__cause__ or error.__context__
    last = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        last = current
        current = current.__cause__ or current.__context__
    return last


def missing_driver(error: BaseException) -> str | None:
    """The database driver module whose absence caused ``error``, if that is what happened."""
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ModuleNotFoundError):
            root = (current.name or "").split(".")[0]
            if root in DRIVER_PACKAGES:
                return root
        current = current.__cause__ or current.__context__
    return None


# --- per library ---------------------------------------------------------------------------


def _classify_mlflow(error: BaseException, follow_causes: bool) -> Outcome:
    """Credentials and "no answer" first (they hide behind any code), then the wrapped
    error, then MLflow's code, then the HTTP status MLflow maps an unknown code to."""
    code = error_code(error)
    own = _CODE_OUTCOMES.get(code)
    if own in NEEDS_A_PERSON:
        return own
    if is_connection_error(error):
        return Outcome.UNREACHABLE
    if follow_causes:
        cause = root_cause(error)
        if cause is not None and cause is not error:
            found = classify(cause)
            if found is not Outcome.UNKNOWN:
                return found
    if own is not None:
        return own
    status_of = getattr(error, "get_http_status_code", None)
    return _classify_status(status_of() if callable(status_of) else 500)


def _classify_status(status: int) -> Outcome:
    if status == 401:
        return Outcome.AUTHENTICATION
    if status == 403:
        return Outcome.PERMISSION
    if status == 404:
        return Outcome.NOT_FOUND
    if status in (429, 503):
        return Outcome.RETRY_LATER
    if status >= 500:
        return Outcome.SERVER_ERROR
    if status >= 400:
        return Outcome.REFUSED
    return Outcome.UNKNOWN


def _classify_sql(error: BaseException, sqlalchemy_exc: ModuleType) -> Outcome:
    """A database's refusal of the password or a permission, or no answer from it.

    Other SQL errors (a constraint, say) are UNKNOWN: the writer keeps its records on them, as
    it always has, rather than set aside points a locked or busy database could still take.
    """
    text = str(getattr(error, "orig", None) or error).lower()
    if "password authentication failed" in text or "access denied for user" in text:
        return Outcome.AUTHENTICATION
    if "permission denied" in text:
        return Outcome.PERMISSION
    if isinstance(error, (sqlalchemy_exc.OperationalError, sqlalchemy_exc.InterfaceError)):
        return Outcome.UNREACHABLE
    return Outcome.UNKNOWN


def _classify_agentnn(error: BaseException) -> Outcome:
    """agentnn's own errors, already translated (a push raises them through the store)."""
    from agentnn import errors

    for kind, outcome in (
        (errors.AuthenticationError, Outcome.AUTHENTICATION),
        (errors.PermissionDeniedError, Outcome.PERMISSION),
        (errors.StoreUnreachableError, Outcome.UNREACHABLE),
        (errors.NotFoundError, Outcome.NOT_FOUND),
        (errors.TrackingError, Outcome.REFUSED),
    ):
        if isinstance(error, kind):
            return outcome
    return Outcome.UNKNOWN
