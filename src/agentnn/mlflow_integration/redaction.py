"""Keep credentials out of the store: params and tags that look like secrets become ``***``.

A config handed whole to ``log_params`` often carries an API key or a database URL with a password.
Once in MLflow it is visible to everyone with access to the server and hard to remove, so it is
masked before it leaves the training process. Keys are matched by whole words (``auth_token``,
``clientSecret``, ``db.password``), so ``max_tokens`` and ``author`` stay readable.
"""

from __future__ import annotations

import re

REDACTED = "***"
REDACTED_KEYS_TAG = "agentnn.redacted_keys"  # lists which keys were masked, never their values

SECRET_WORDS = frozenset(
    {"password", "passwd", "pwd", "secret", "token", "apikey", "credential", "credentials", "auth",
     "authorization", "passphrase"}
)
SECRET_WORD_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key"),
                               ("secret", "key"), ("client", "secret")})
SECRET_VALUE_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),  # OpenAI-style keys
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}"),  # JWTs
    re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@]+:[^/\s@]+@"),  # user:password@ in URLs
)
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def key_words(key: str) -> list[str]:
    """Split a key into lower-case words at punctuation and camelCase boundaries."""
    return [word.lower() for word in _WORD_SPLIT.split(key) if word]


def is_secret_key(key: str) -> bool:
    words = key_words(key)
    if any(word in SECRET_WORDS for word in words):
        return True
    return any(pair in SECRET_WORD_PAIRS for pair in zip(words, words[1:]))


def is_secret_value(value: str) -> bool:
    return any(pattern.search(value) for pattern in SECRET_VALUE_PATTERNS)


def redact(items: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Mask secret-looking entries of already flattened, stringified ``items``.

    Returns the masked copy and the keys that were masked.
    """
    masked: dict[str, str] = {}
    redacted: list[str] = []
    for key, value in items.items():
        if value != REDACTED and (is_secret_key(key) or is_secret_value(value)):
            masked[key] = REDACTED
            redacted.append(key)
        else:
            masked[key] = value
    return masked, redacted


def redact_text(text: str) -> str:
    """Mask secret-looking words inside free text, such as a command line."""
    return " ".join(REDACTED if is_secret_value(word) else word for word in text.split(" "))
