"""The AMS sketch of users' event counts: how concentrated a slice's events are in few users.

For users ``j`` with ``m_j`` events, ``F2 = sum_j m_j ** 2``; ``F2 / sum_j m_j`` is the design
effect of a per-user attribute (Kish), which the drift tests divide by so that they count users,
not events (``docs/drift.md``). F2 over a week is not the sum of the days' F2 (a user's daily
counts add before they are squared), so profiles keep a sketch that merges exactly: the AMS
sketch of Alon, Matias and Szegedy (1996). Each of :data:`F2_COUNTERS` counters is
``Z_i = sum_j s_i(j) m_j`` with signs ``s_i(j) = +-1`` drawn from a keyed BLAKE2b hash of the
(pseudonymised) user id; ``E[Z_i ** 2] = F2``, the mean over the counters has a relative standard
error of at most ``sqrt(2 / F2_COUNTERS)``, and two sketches of the same user's events add up
to the sketch of their sum: days, slices and workspaces merge by adding counters.

Stored as ``F2_COUNTERS`` little-endian int64 (1 KiB) per day and slice, on the ``user_id`` row.
A counter is a signed sum of many users' counts: it holds no id and no user's count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from assay._errors import UsageError
from assay.profiles._columns import F2_COUNTERS

_PERSON = b"assay-f2-v1"
_DTYPE = np.dtype("<i8")
_CHUNK = 16_384


def _signs(users: Sequence[str]) -> np.ndarray[Any, Any]:
    """(len(users), F2_COUNTERS) signs, +1 or -1, from each user's hash bits."""
    digests = b"".join(
        hashlib.blake2b(u.encode(), digest_size=F2_COUNTERS // 8, person=_PERSON).digest()
        for u in users
    )
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8)).reshape(len(users), F2_COUNTERS)
    return 1 - 2 * bits.astype(np.int64)


def f2_sketches(
    gids: np.ndarray[Any, Any], users: Sequence[str], counts: np.ndarray[Any, Any], n_groups: int
) -> list[bytes | None]:
    """Per group, the sketch of its users' event counts.

    ``gids`` (sorted), ``users`` and ``counts`` are one row per (group, user): the group, the
    user id and the user's events in the group."""
    z = np.zeros((n_groups, F2_COUNTERS), dtype=np.int64)
    seen = np.zeros(n_groups, dtype=bool)
    counts = np.asarray(counts, dtype=np.int64)
    for lo in range(0, len(users), _CHUNK):
        hi = min(lo + _CHUNK, len(users))
        g = np.asarray(gids[lo:hi], dtype=np.int64)
        np.add.at(z, g, _signs(users[lo:hi]) * counts[lo:hi, np.newaxis])
        seen[g] = True
    return [z[i].astype(_DTYPE).tobytes() if seen[i] else None for i in range(n_groups)]


def _counters(blob: bytes) -> np.ndarray[Any, Any]:
    if len(blob) != F2_COUNTERS * _DTYPE.itemsize:
        raise UsageError(
            f"an F2 sketch must be {F2_COUNTERS * _DTYPE.itemsize} bytes; got {len(blob)}; "
            "rebuild the profiles with `assay profile build --since <first day>`"
        )
    return np.frombuffer(blob, dtype=_DTYPE)


def merge_f2(blobs: Sequence[bytes]) -> bytes:
    """The sketch of all the events the sketches saw (their counters added)."""
    total = np.zeros(F2_COUNTERS, dtype=np.int64)
    for blob in blobs:
        total += _counters(blob)
    return total.astype(_DTYPE).tobytes()


def f2_estimate(blob: bytes) -> float:
    """The estimate of ``sum over users of events ** 2``: the counters' mean square.

    Examples
    --------
    >>> import numpy as np
    >>> one = f2_sketches(np.array([0]), ["u1"], np.array([3]), 1)[0]
    >>> f2_estimate(one)  # one user: every counter is +-3
    9.0
    """
    z = _counters(blob).astype(np.float64)
    return float(np.mean(z * z))
