"""Secrets never leave the process in clear: configs are stored and printed with secrets as fingerprints.

A config value is secret when it was resolved from the environment (`${oc.env:...}`: engine/config.py marks
such values at compose time with the types below, which behave exactly like str, int and float) or when its key
is named like one (salt, key, token, secret, password, credentials, ...). Its
fingerprint ("pbkdf2-sha256:3f9a1c2b7d4e") identifies it, so two runs can be compared and a config hash still
changes when the secret does, without giving it away: the fingerprint is a slow key derivation, so guessing a
weak secret from it costs ten thousand hashes per guess, not one.

Clear secret values the process knows (environment-resolved config values, API keys read by model adapters)
are also registered here, and `scrub` replaces them in any text about to be written or stored.
"""
from __future__ import annotations

import functools
import hashlib
import re
import threading
from typing import Any

_SECRET_NAME = re.compile(
    r"(?:^|_)(salt|key|token|secret|secrets|password|passwd|passphrase|credential|credentials|apikey|"
    r"api_key|private_key|access_key)$")
_MIN_SCRUB_LENGTH = 6  # shorter registered values are fingerprinted where marked but not searched for
_lock = threading.Lock()
_secrets: set[str] = set()


class SecretStr(str):
    """A config string resolved from the environment: used as itself, stored and printed as a fingerprint."""


class SecretInt(int):
    """A config integer resolved from the environment (e.g. through oc.decode)."""


class SecretFloat(float):
    """A config number resolved from the environment (e.g. through oc.decode)."""


_MARKED = (SecretStr, SecretInt, SecretFloat)


def mark_secret(value: Any) -> Any:
    """`value` marked as a secret (same value, same behaviour), and registered for `scrub`."""
    register_secret(value)
    if isinstance(value, _MARKED) or value is None or isinstance(value, bool):
        return value
    for plain, marked in ((str, SecretStr), (int, SecretInt), (float, SecretFloat)):
        if isinstance(value, plain):
            return marked(value)
    return value


def is_secret_key(key: object) -> bool:
    """True for keys named like a secret: salt, api_key, authToken, client_secret, db_password, ..."""
    if not isinstance(key, str):
        return False
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower().replace("-", "_")
    return _SECRET_NAME.search(snake) is not None


@functools.lru_cache(maxsize=256)
def _derive(text: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", text.encode("utf-8"), b"flywheel-secret-fingerprint", 10_000).hex()[:12]


def fingerprint(value: Any) -> str:
    """A stable, non-reversible stand-in for a secret value."""
    return f"pbkdf2-sha256:{_derive(str(value))}"


def register_secret(value: Any) -> None:
    """Remember a clear secret value so that `redact` and `scrub` hide it wherever it turns up."""
    if value is None or isinstance(value, bool):
        return
    text = str(value)
    if text:
        with _lock:
            _secrets.add(text)


def registered_secrets() -> frozenset[str]:
    with _lock:
        return frozenset(_secrets)


def redact(value: Any, *, secret: bool = False) -> Any:
    """A copy of a config (or any JSON-able value) with every secret replaced by its fingerprint."""
    if isinstance(value, dict):
        return {k: redact(v, secret=secret or is_secret_key(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, secret=secret) for v in value]
    if value is None or isinstance(value, bool):
        return value  # nothing to hide in a null or a flag
    if secret or isinstance(value, _MARKED):
        return fingerprint(value)
    if isinstance(value, str) and len(value) >= _MIN_SCRUB_LENGTH and value in registered_secrets():
        return fingerprint(value)  # a secret copied out of its marked place
    return value


def scrub(text: str, _secrets: list[str] | None = None) -> str:
    """`text` with every registered secret value replaced by its fingerprint (longest first)."""
    if not isinstance(text, str):
        return text
    for value in _searched() if _secrets is None else _secrets:
        if value in text:
            text = text.replace(value, fingerprint(value))
    return text


def _searched() -> list[str]:
    return sorted((v for v in registered_secrets() if len(v) >= _MIN_SCRUB_LENGTH), key=len, reverse=True)


def redact_message(message: str, key_path: str, config: Any) -> str:
    """A config error message about `key_path` without the clear value of a secret it may quote."""
    message = scrub(message)
    segments = [s for s in re.split(r"[.\[\]]", key_path) if s]
    if not any(is_secret_key(s) for s in segments):
        return message
    value = config
    for segment in segments:
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return message
    for leaf in _leaves(value):
        if leaf is not None and not isinstance(leaf, bool) and str(leaf) and str(leaf) in message:
            message = message.replace(str(leaf), fingerprint(leaf))
    return message


def _leaves(value: Any):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def scrub_value(value: Any, _secrets: list[str] | None = None) -> Any:
    """`scrub` applied to every string inside a JSON-able value (keys included)."""
    secrets = _searched() if _secrets is None else _secrets
    if not secrets:
        return value
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub_value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_value(v, secrets) for v in value]
    return value
