"""Keep credentials out of the store: params and tags that look like secrets become ``***``.

A config handed whole to ``log_params`` often carries an API key or a database URL with a password.
Once in MLflow it is visible to everyone with access to the server and hard to remove, so it is
masked before it leaves the training process. Keys are matched by whole words (``auth_token``,
``clientSecret``, ``db.password``), so ``max_tokens`` and ``author`` stay readable.

Secrets also hide inside values: a list of service dicts stringified as
``[{'name': 'db', 'password': …}]``, a connection string ``Server=x;User Id=sa;Password=…;``, an
environment assignment ``PGPASSWORD=…`` on a command line. Every ``key: value`` or ``key=value``
pair inside a value is judged by the same key rules, so such a value is masked whole.

A URI is the exception: ``postgresql://u:pw@db:5432/optuna`` keeps everything but its password
(``postgresql://u:***@db:5432/optuna``), since host and database say where a study or a store
lives and are not secrets.
"""

from __future__ import annotations

import re

from agentnn.masking import mask_uri_passwords

REDACTED = "***"
REDACTED_KEYS_TAG = "agentnn.redacted_keys"  # lists which keys were masked, never their values

SECRET_WORDS = frozenset(
    {"password", "passwords", "passwd", "passwds", "pwd", "pwds", "pass", "secret", "secrets",
     "token", "apikey", "apikeys", "credential", "credentials", "auth", "authorization",
     "passphrase", "passphrases"}
)
SECRET_WORD_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key"),
                               ("secret", "key"), ("client", "secret"), ("api", "keys"),
                               ("access", "keys"), ("private", "keys")})
# Words that mark a secret even glued inside a longer word, as in ``PGPASSWORD`` or
# ``mysqlpasswd``: none of them occurs inside an ordinary hyper-parameter name.
SECRET_SUBSTRINGS = ("password", "passwd", "secret", "apikey", "passphrase", "credential")
# Short command-line flags whose next argument is a password (``mysql -p``, ``sshpass -p``).
SECRET_SHORT_FLAGS = frozenset({"-p", "--pw"})

SECRET_VALUE_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),  # OpenAI-style keys
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}"),  # JWTs
    # user:password@ in URLs, unless the password is masked already (``u:***@``)
    re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@]+:(?!\*\*\*@)[^/\s@]+@"),
)
# ``key: value`` / ``key=value`` pairs inside a value: dict reprs, JSON, connection strings,
# ``NAME=VALUE`` assignments. The key may be quoted and may hold spaces (``User Id``).
_PAIR = re.compile(
    r"""(?P<key>[A-Za-z_][A-Za-z0-9_.\- ]{0,60}?)['"]?\s*[:=]\s*"""
    r"""(?P<value>'[^']*'|"[^"]*"|[^\s'",;}\]&]+)"""
)
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def key_words(key: str) -> list[str]:
    """Split a key into lower-case words at punctuation and camelCase boundaries."""
    return [word.lower() for word in _WORD_SPLIT.split(key) if word]


def is_secret_key(key: str) -> bool:
    """True when a key names a credential: ``db_pass``, ``Passwords``, ``PGPASSWORD``."""
    words = key_words(key)
    if any(word in SECRET_WORDS for word in words):
        return True
    if any(pair in SECRET_WORD_PAIRS for pair in zip(words, words[1:])):
        return True
    squashed = "".join(words)
    return any(part in squashed for part in SECRET_SUBSTRINGS)


def _has_secret_pair(value: str) -> bool:
    for match in _PAIR.finditer(value):
        secret = match.group("value").strip("'\"")
        if secret and secret != REDACTED and is_secret_key(match.group("key").strip()):
            return True
    return False


def is_secret_value(value: str) -> bool:
    """True when a value carries a known token shape or a secret-named ``key=value`` pair."""
    return any(pattern.search(value) for pattern in SECRET_VALUE_PATTERNS) or _has_secret_pair(
        value
    )


def redact(items: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Mask secret-looking entries of already flattened, stringified ``items``.

    Returns the masked copy and the keys that were masked.
    """
    masked: dict[str, str] = {}
    redacted: list[str] = []
    for key, value in items.items():
        shown = value if value == REDACTED else _redact_value(key, value)
        masked[key] = shown
        if shown != value:
            redacted.append(key)
    return masked, redacted


def _redact_value(key: str, value: str) -> str:
    """``***`` for a secret, or the value with only its URI passwords masked when that is all
    the secret it holds."""
    if is_secret_key(key):
        return REDACTED
    partly = mask_uri_passwords(value)
    return REDACTED if is_secret_value(partly) else partly


def _redact_word(word: str) -> str:
    name, equals, _ = word.partition("=")
    if equals and name and not name.startswith("-") and is_secret_key(name):
        return f"{name}={REDACTED}"  # keep ``PGPASSWORD=`` readable, hide what follows
    partly = mask_uri_passwords(word)
    return REDACTED if is_secret_value(partly) else partly


def redact_text(text: str) -> str:
    """Mask secret-looking words inside free text, such as a command line."""
    return " ".join(_redact_word(word) for word in text.split(" "))
