"""Encryption of the second-factor secrets allauth keeps in `mfa.Authenticator.data`.

Security: a TOTP secret or a recovery-code seed in plain text lets anyone holding a database
dump or a backup (`make backup`) pass every clinician's second factor (SECURITY.md #11, #19).
They are stored as "enc1:" + a Fernet token under keys that live only in the environment
(DJANGO_MFA_ENCRYPTION_KEY), never in the database or its backups.

Fernet rather than raw AES-GCM: it is authenticated (AES-128-CBC + HMAC-SHA256, so an edited
value is refused, not decrypted to something else), it picks its own random IV (no nonce for
us to get wrong), its keys are one url-safe string that fits an environment variable, and
MultiFernet gives key rotation for free: the first key encrypts, every listed key decrypts.
The values are a few dozen bytes read once per login, so Fernet's overhead does not matter.

Used by the MFA adapter (oncoplanner.accounts.adapter) and by the data migrations, so this
module must keep working for old migrations: plain functions, keys passed in, no models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "enc1:"

# The values allauth encrypts through the adapter: `secret` (TOTP), `seed` (recovery codes),
# and `migrated_codes` (recovery codes imported from django-allauth-2fa: a list of codes).
_TEXT_FIELDS = ("secret", "seed")
_LIST_FIELDS = ("migrated_codes",)


class SecretBoxError(Exception):
    """A stored value is not one we encrypted, was altered, or no configured key opens it."""


def _box(keys: Sequence[str]) -> MultiFernet:
    if not keys:
        raise SecretBoxError("no MFA encryption key configured")
    return MultiFernet([Fernet(key) for key in keys])


def check_key(key: str) -> None:
    """Raise ValueError unless `key` is a Fernet key (32 url-safe base64-encoded bytes)."""
    Fernet(key)


def is_encrypted(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def encrypt(text: str, *, keys: Sequence[str]) -> str:
    """`text` encrypted with the first of `keys`, marked with PREFIX."""
    return PREFIX + _box(keys).encrypt(text.encode()).decode("ascii")


def decrypt(value: str, *, keys: Sequence[str]) -> str:
    """The text inside `value`; SecretBoxError if it is not ours, was altered, or none of `keys`
    opens it. A plain value is refused too: accepting one would let anyone who can write to
    the database plant a second factor they know."""
    if not is_encrypted(value):
        raise SecretBoxError("value is not encrypted")
    try:
        return _box(keys).decrypt(value.removeprefix(PREFIX).encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise SecretBoxError("value does not decrypt with the configured keys") from exc


def _map_fields(data: dict[str, Any], change: Any) -> bool:
    changed = False
    for field in _TEXT_FIELDS:
        value = data.get(field)
        if isinstance(value, str):
            new = change(value)
            changed |= new != value
            data[field] = new
    for field in _LIST_FIELDS:
        values = data.get(field)
        if isinstance(values, list):
            new_values = [change(v) if isinstance(v, str) else v for v in values]
            changed |= new_values != values
            data[field] = new_values
    return changed


def encrypt_data(data: dict[str, Any], *, keys: Sequence[str]) -> bool:
    """Encrypt, in place, the plain secrets in an Authenticator's `data`; values already
    encrypted are left alone (so running it twice changes nothing). True if anything changed."""
    return _map_fields(data, lambda v: v if is_encrypted(v) else encrypt(v, keys=keys))


def decrypt_data(data: dict[str, Any], *, keys: Sequence[str]) -> bool:
    """The reverse of encrypt_data: plain values are left alone."""
    return _map_fields(data, lambda v: decrypt(v, keys=keys) if is_encrypted(v) else v)


def rotate_data(data: dict[str, Any], *, keys: Sequence[str]) -> bool:
    """Re-encrypt, in place, every encrypted value under the first of `keys` (after a new key
    was put first in DJANGO_MFA_ENCRYPTION_KEY), so the old key can then be removed."""
    box = _box(keys)

    def rotate(value: str) -> str:
        if not is_encrypted(value):
            return value
        try:
            token = box.rotate(value.removeprefix(PREFIX).encode("ascii"))
        except InvalidToken as exc:
            raise SecretBoxError("value does not decrypt with the configured keys") from exc
        return PREFIX + token.decode("ascii")

    return _map_fields(data, rotate)
