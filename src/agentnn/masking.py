"""Hide secrets inside URIs and the texts that quote them, before anything is shown.

Lives apart from ``config`` and ``errors`` (and imports nothing of agentnn) because both use
it: :class:`agentnn.config.Settings` masks what it displays, and the errors mask their
messages when they are made, so no caller can forget to.

Two shapes are hidden wherever they occur in a text, for any scheme (known or not):

- the password of ``scheme://user:password@host`` becomes ``scheme://user:***@host``;
- the value of a secret-looking query parameter (``?token=…``, ``&password=…``,
  ``&X-Amz-Signature=…``) becomes ``***``.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@ in any scheme. The password runs to the last '@' that a host follows
# within the same blank-free token, so one holding '@', '/' or '#' is hidden whole.
_USERINFO = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s'\"<>]*):[^\s'\"<>]*@(?=[A-Za-z0-9\[_%])"
)
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?:[^=&;#\s'\"]*?)"
    r"(?:token|passw|pwd|secret|api[_-]?key|apikey|access[_-]?key|auth|signature|sig|credential)"
    r"[^=&;#\s'\"]*=)(?P<value>[^&;#\s'\"]+)",
    re.IGNORECASE,
)


def mask_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with URI passwords, secret query values and each of ``secrets`` replaced."""
    masked = mask_uri_passwords(text)
    masked = _SECRET_QUERY.sub(lambda match: match["key"] + MASK, masked)
    for secret in secrets:
        if secret and len(secret) >= 3:  # a one-letter "secret" would mask half the message
            masked = masked.replace(secret, MASK)
    return masked


def mask_uri_passwords(text: str) -> str:
    """``text`` with only the passwords of its URIs replaced: ``scheme://user:***@host``."""
    return _USERINFO.sub(lambda match: f"{match['head']}:{MASK}@", text)


def mask_uri(uri: str) -> str:
    """A URI fit to show: its password and secret query values replaced by ``***``."""
    return mask_text(uri)
