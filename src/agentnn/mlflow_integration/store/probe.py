"""The one HTTP probe of a tracking server, with the credentials MLflow's own client would send.

Both :meth:`agentnn.mlflow_integration.store.client.Store.probe` (``agentnn config --check``,
and the check before a run's first call) and the writer's pusher (is the server of a
fallen-back run back?) ask through :class:`ServerProbe`.

Why MLflow's pieces rather than a hand-built request: the answer must be the one MLflow's
client will get a moment later. :func:`host_credentials` starts from MLflow's
``get_default_host_creds`` (``MLFLOW_TRACKING_USERNAME``/``PASSWORD``/``TOKEN`` in the
environment or ``~/.mlflow/credentials``, ``MLFLOW_TRACKING_INSECURE_TLS``,
``MLFLOW_TRACKING_SERVER_CERT_PATH``, client certificates, auth plugins), splits
``user:password@`` off the URI's host and sends it as basic auth (it wins over the
environment, as it does when MLflow hands the URI to requests), and lets ``.env`` values fill
what the environment lacks. :meth:`ServerProbe.get` then goes through MLflow's
``http_request`` with no retries and a short timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from mlflow.utils.rest_utils import MlflowHostCreds

__all__ = ["ANSWER_TIMEOUT", "MAX_BODY", "ServerProbe", "host_credentials", "split_userinfo"]

ANSWER_TIMEOUT = 2.0
"""Seconds to connect and get the first byte back from ``/health`` (no password hash there): a
refused port or unknown host fails at once, so this bounds a black-holed host or a server that
accepts connections and never answers."""
MAX_BODY = 1_000_000  # bytes of an answer kept: enough for a version, server info or a listing


def split_userinfo(uri: str) -> tuple[str, str | None, str | None]:
    """``http://user:pw@host:port/path`` -> (``http://host:port/path``, ``user``, ``pw``).

    The user and password are percent-decoded, as requests decodes them for basic auth.
    """
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6
    netloc = host + (f":{parts.port}" if parts.port else "")
    base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    if parts.username is None:
        return base, None, None
    return base, unquote(parts.username), unquote(parts.password or "")


def host_credentials(
    uri: str, *, username: str | None = None, password: str | None = None,
    token: str | None = None,
) -> MlflowHostCreds:
    """What MLflow's client would send to the server ``uri``, as its own ``MlflowHostCreds``.

    Args:
        uri: The server, perhaps with ``user:password@`` in it.
        username, password, token: Values from ``.env``; used only where neither the URI nor
            MLflow's own sources (environment, ``~/.mlflow/credentials``) give one.
    """
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import MlflowHostCreds

    base, uri_user, uri_password = split_userinfo(uri)
    mlflow_creds = get_default_host_creds(base)
    if uri_user is not None:
        username, password = uri_user, uri_password
    elif mlflow_creds.username and mlflow_creds.password:
        username, password = mlflow_creds.username, mlflow_creds.password
    else:
        username = mlflow_creds.username or username
        password = mlflow_creds.password or password
    return MlflowHostCreds(
        host=base, username=username, password=password,
        token=mlflow_creds.token or token,
        aws_sigv4=mlflow_creds.aws_sigv4, auth=mlflow_creds.auth,
        ignore_tls_verification=mlflow_creds.ignore_tls_verification,
        client_cert_path=mlflow_creds.client_cert_path,
        server_cert_path=mlflow_creds.server_cert_path,
    )


@dataclass(frozen=True)
class ServerProbe:
    """Requests to one server, with and without its credentials; no retries."""

    credentials: MlflowHostCreds
    timeout: float = ANSWER_TIMEOUT

    @classmethod
    def of(cls, uri: str, timeout: float = ANSWER_TIMEOUT, *, username: str | None = None,
           password: str | None = None, token: str | None = None) -> ServerProbe:
        """The probe of ``uri``; see :func:`host_credentials` for the optional ``.env`` values."""
        return cls(host_credentials(uri, username=username, password=password, token=token),
                   timeout)

    @property
    def base(self) -> str:
        """The server's address, without credentials."""
        return str(self.credentials.host)

    @property
    def sends_credentials(self) -> bool:
        """True when requests carry a username and password, a token or an auth plugin."""
        creds = self.credentials
        return bool((creds.username and creds.password) or creds.token or creds.auth
                    or creds.aws_sigv4)

    def get(self, path: str, *, authenticated: bool = True,
            timeout: float | None = None) -> tuple[int, bytes]:
        """(HTTP status, body) of ``GET path``; any status is an answer. ``timeout`` overrides
        the probe's own for this request.

        Raises:
            MlflowException: no answer (refused, timed out, unknown host, TLS failure), as
                MLflow's client raises it; classify it with
                :func:`agentnn.mlflow_integration.store.classify.classify`.
        """
        from mlflow.utils.rest_utils import MlflowHostCreds, http_request
        from urllib3.exceptions import HTTPError

        creds = self.credentials
        if not authenticated:
            creds = MlflowHostCreds(
                host=creds.host, ignore_tls_verification=creds.ignore_tls_verification,
                client_cert_path=creds.client_cert_path, server_cert_path=creds.server_cert_path,
            )
        response = http_request(creds, path, "GET", max_retries=0, backoff_factor=0,
                                timeout=self.timeout if timeout is None else timeout,
                                raise_on_status=False, stream=True)
        try:
            body = response.raw.read(MAX_BODY, decode_content=True)
        except (OSError, HTTPError):
            body = b""  # the status is the answer; a body cut off says nothing more
        finally:
            response.close()
        return response.status_code, body

    def answers(self) -> bool:
        """True when the server answers at all: any HTTP status counts, as the basic-auth app
        guards even ``/health``."""
        from mlflow.exceptions import MlflowException

        try:
            self.get("/health", authenticated=False, timeout=min(self.timeout, ANSWER_TIMEOUT))
        except MlflowException:
            return False
        return True
