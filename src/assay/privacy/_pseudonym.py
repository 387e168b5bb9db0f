"""Keyed pseudonyms for users: HMAC-SHA256 over (tenant_id, user_id).

The message is unambiguous by construction: the tenant id's UTF-8 length as 4 bytes big-endian,
then the tenant id's UTF-8 bytes, then the user id's UTF-8 bytes::

    message = len(tenant_utf8).to_bytes(4, "big") + tenant_utf8 + user_utf8

A length prefix, not a separator, so no character a producer may send can make two different
pairs collide. The pseudonym is ``"u_"`` followed by the first 32 hex digits (128 bits) of
``HMAC-SHA256(key, message)``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pyarrow as pa
import pyarrow.compute as pc

from assay._errors import PrivacyError

#: Shortest key accepted, in bytes; :func:`new_key` makes 32.
MIN_KEY_BYTES = 16
_PREFIX = "u_"
_HEX_CHARS = 32


def new_key() -> bytes:
    """Return a new random pseudonymisation key (32 bytes from :mod:`secrets`).

    Returns
    -------
    bytes
        32 random bytes. Keep them secret and stable: a new key gives every user a new
        pseudonym.

    Examples
    --------
    >>> len(new_key())
    32
    """
    return secrets.token_bytes(32)


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_BYTES:
        got = f"{len(key)} bytes" if isinstance(key, bytes | bytearray) else type(key).__name__
        raise PrivacyError(
            f"pseudonymisation key must be at least {MIN_KEY_BYTES} bytes, got {got}; "
            "create one with assay.privacy.new_key()"
        )


def _digest(key: bytes, tenant: bytes, user: bytes) -> str:
    message = len(tenant).to_bytes(4, "big") + tenant + user
    return _PREFIX + hmac.digest(key, message, hashlib.sha256).hex()[:_HEX_CHARS]


def pseudonym(key: bytes, tenant_id: str, user_id: str) -> str:
    """Return the stored pseudonym of the user (``tenant_id``, ``user_id``).

    Parameters
    ----------
    key : bytes
        Secret key, at least 16 bytes (see :func:`new_key`).
    tenant_id, user_id : str
        The raw ids. The same ``user_id`` in two tenants is two users, with two pseudonyms.

    Returns
    -------
    str
        ``"u_"`` and 32 lowercase hex digits: the first 128 bits of HMAC-SHA256 under ``key``
        of ``len(t).to_bytes(4, "big") + t + u``, where ``t`` and ``u`` are the UTF-8 bytes of
        ``tenant_id`` and ``user_id``.

    Raises
    ------
    PrivacyError
        If the key is too short, an id is not a ``str``, or an id cannot be encoded as UTF-8
        (the message never holds the id).

    Examples
    --------
    >>> key = bytes(range(32))
    >>> pseudonym(key, "acme", "alice") == pseudonym(key, "acme", "alice")
    True
    >>> pseudonym(key, "acme", "alice") == pseudonym(key, "globex", "alice")
    False
    >>> len(pseudonym(key, "acme", "alice"))
    34
    """
    _check_key(key)
    if not isinstance(tenant_id, str) or not isinstance(user_id, str):
        raise PrivacyError(
            "pseudonym expected tenant_id and user_id as str, got "
            f"{type(tenant_id).__name__} and {type(user_id).__name__}"
        )
    try:
        tenant, user = tenant_id.encode("utf-8"), user_id.encode("utf-8")
    except UnicodeEncodeError:
        raise PrivacyError(
            "tenant_id or user_id is not valid Unicode (lone surrogate); "
            "fix the producer's encoding"
        ) from None
    return _digest(bytes(key), tenant, user)


def _as_string_array(values: pa.Array | pa.ChunkedArray, name: str) -> pa.Array:
    value_type = getattr(values, "type", None)
    if not isinstance(values, pa.Array | pa.ChunkedArray) or not (
        pa.types.is_string(value_type)
        or pa.types.is_large_string(value_type)
        or pa.types.is_string_view(value_type)
    ):
        raise PrivacyError(
            f"pseudonymise expected {name} as a pyarrow string array, got "
            f"{type(values).__name__} of type {value_type}; cast it to pa.string() first"
        )
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values


def pseudonymise(
    key: bytes,
    tenant_ids: pa.Array | pa.ChunkedArray,
    user_ids: pa.Array | pa.ChunkedArray,
) -> pa.Array:
    """Pseudonymise a column of users, one HMAC per distinct (tenant, user) pair.

    Parameters
    ----------
    key : bytes
        Secret key, at least 16 bytes.
    tenant_ids, user_ids : pyarrow.Array or pyarrow.ChunkedArray
        Aligned string arrays (``string``, ``large_string`` or ``string_view``).

    Returns
    -------
    pyarrow.Array
        ``pa.string()``, aligned with the inputs: ``pseudonym(key, t, u)`` for each row, and
        null where either id is null.

    Raises
    ------
    PrivacyError
        If the key is too short, the inputs are not string arrays of the same length, or
        anything fails while hashing (the message never holds an id).

    Examples
    --------
    >>> import pyarrow as pa
    >>> key = bytes(range(32))
    >>> out = pseudonymise(key, pa.array(["acme", "acme", None]), pa.array(["al", "al", "bo"]))
    >>> first, second, third = out.to_pylist()
    >>> first == second == pseudonym(key, "acme", "al"), third
    (True, None)
    """
    _check_key(key)
    tenants = _as_string_array(tenant_ids, "tenant_ids")
    users = _as_string_array(user_ids, "user_ids")
    if len(tenants) != len(users):
        raise PrivacyError(
            f"pseudonymise expected tenant_ids and user_ids of the same length, got "
            f"{len(tenants)} and {len(users)}"
        )
    try:
        return _pseudonymise(bytes(key), tenants, users)
    except Exception as exc:
        # ``from None``: an underlying message might quote an id.
        raise PrivacyError(
            f"pseudonymisation failed ({type(exc).__name__}) and returned nothing; do not store "
            "these rows. This is a bug in assay or a corrupt input array; report the exception type"
        ) from None


def _pseudonymise(key: bytes, tenants: pa.Array, users: pa.Array) -> pa.Array:
    if len(tenants) == 0:
        return pa.array([], type=pa.string())
    tenant_codes = pc.dictionary_encode(tenants.cast(pa.string()))
    user_codes = pc.dictionary_encode(users.cast(pa.string()))
    tenant_prefixes = [
        len(tenant).to_bytes(4, "big") + tenant
        for tenant in tenant_codes.dictionary.cast(pa.binary()).to_pylist()
    ]
    user_dict = user_codes.dictionary.cast(pa.binary()).to_pylist()
    n_users = len(user_dict)
    # One int64 code per (tenant, user) pair; null where either id is null (Arrow arithmetic
    # propagates nulls), so the pair's pseudonym is null too.
    pair_codes = pc.add(
        pc.multiply(pc.cast(tenant_codes.indices, pa.int64()), n_users),
        pc.cast(user_codes.indices, pa.int64()),
    )
    pairs = pc.dictionary_encode(pair_codes)
    # Keying HMAC once and copying the keyed state halves the cost per pair.
    keyed = hmac.new(key, digestmod=hashlib.sha256)
    digests = []
    for code in pairs.dictionary.to_pylist():
        mac = keyed.copy()
        mac.update(tenant_prefixes[code // n_users] + user_dict[code % n_users])
        digests.append(_PREFIX + mac.hexdigest()[:_HEX_CHARS])
    return pa.array(digests, type=pa.string()).take(pairs.indices)


__all__ = ["MIN_KEY_BYTES", "new_key", "pseudonym", "pseudonymise"]
