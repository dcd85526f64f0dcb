"""The audit hash chains: how a decision row's ``row_hash`` is computed.

Decisions form several hash chains, one per writer at a time (``chain``: 1, 2, ...; migration 0008). Within its
chain every decision has a ``seq`` (1, 2, 3, ... without gaps), the ``prev_hash`` of the decision before it (the
chain's genesis hash for seq 1) and a ``row_hash``: SHA-256 over a canonical encoding of ``seq``, ``prev_hash`` and
every stored field of the row. Changing a row breaks its own hash; deleting or inserting one breaks the seq
sequence or the next row's ``prev_hash``; ``audit_chain_head`` records each chain's end, so a deleted tail shows
too.

**Genesis.** Chain 1's genesis is 64 zeros, as it was when there was one chain, so every row stored before
migration 0008 (all of them chain 1) verifies unchanged. Chain ``n >= 2`` starts from ``genesis_hash(n)``,
SHA-256 of ``advisor-audit-chain-genesis/<n>``: every row's hash covers its chain number through the links before
it, so rows moved to another chain, or two chains' numbers swapped, no longer verify.

The encodings are frozen (``CHAIN_FORMAT``, ``CHAIN_FORMAT_ENGINE`` and ``CHAIN_FORMAT_CLIENT_ID`` name them): rows
hashed by an older release must verify under a newer one. A row without an ``engine_version`` (NULL: every row
stored before migration 0006, and rows a release before 0.2.0 still writes) and without a ``client_request_id`` is
the UTF-8 of the compact JSON array

    ["advisor-audit-chain/1", seq, prev_hash, id, created_at, ruleset_sha256, ruleset_version, caller,
     request_id, family, instance_type, scaling_method, instances, profile, recommendation]

a row with an engine version and without a client request id is

    ["advisor-audit-chain/2", seq, prev_hash, id, created_at, ruleset_sha256, ruleset_version, engine_version,
     caller, request_id, family, instance_type, scaling_method, instances, profile, recommendation]

and a row with a ``client_request_id`` (the X-Request-ID a client sent, kept apart from the service's own
``request_id`` since migration 0007) is

    ["advisor-audit-chain/3", seq, prev_hash, id, created_at, ruleset_sha256, ruleset_version, engine_version,
     caller, request_id, client_request_id, family, instance_type, scaling_method, instances, profile,
     recommendation]

with ``id`` as the canonical hyphenated lowercase UUID, ``created_at`` as UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
(always six fraction digits; both backends store microseconds exactly), strings as stored (JSON-escaped,
non-ASCII kept), ``null`` for missing values. JSON arrays are unambiguous: no field can bleed into another, and
the first element says which layout follows, so setting, clearing or editing ``engine_version`` or
``client_request_id`` changes the hash. Rows without a client id keep the layout they had, so the rows of earlier
releases verify unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from service.db.rows import DecisionRow

__all__ = [
    "CHAIN_FORMAT",
    "CHAIN_FORMAT_CLIENT_ID",
    "CHAIN_FORMAT_ENGINE",
    "GENESIS_HASH",
    "ChainHead",
    "canonical_timestamp",
    "chain_hash",
    "genesis_hash",
]

CHAIN_FORMAT = "advisor-audit-chain/1"  # rows without an engine_version (and without a client_request_id)
CHAIN_FORMAT_ENGINE = "advisor-audit-chain/2"  # rows with one: it follows ruleset_version
CHAIN_FORMAT_CLIENT_ID = "advisor-audit-chain/3"  # rows with a client_request_id: it follows request_id
GENESIS_HASH = "0" * 64  # chain 1's prev_hash of seq 1, and its head's hash while it has no decisions


def genesis_hash(chain: int) -> str:
    """The ``prev_hash`` of seq 1 of ``chain``, and its head's hash while it has no decisions."""
    if chain < 1:
        raise ValueError(f"audit chains are numbered from 1, got {chain}")
    if chain == 1:
        return GENESIS_HASH
    return hashlib.sha256(f"advisor-audit-chain-genesis/{chain}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The end of a chain: seq and row_hash of its last decision (0 and its genesis hash when there is none)."""

    seq: int
    row_hash: str
    chain: int = 1


def canonical_timestamp(value: datetime) -> str:
    if value.tzinfo is UTC and value.year >= 1000:  # every row this service writes: one step, the same text
        return value.isoformat(timespec="microseconds")[:-6] + "Z"  # drop "+00:00"
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: audit timestamps must be timezone-aware")
    utc = value.astimezone(UTC)
    if utc.year < 1000:  # strftime's %Y does not pad these; the frozen format is what it wrote
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The same text as that strftime, several times faster.
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def chain_hash(seq: int, prev_hash: str, row: DecisionRow) -> str:
    """The ``row_hash`` of ``row`` stored at ``seq`` after a row whose hash is ``prev_hash``."""
    engine_version, client_request_id = row.engine_version, row.client_request_id
    fields: list[str | int | None] = [
        CHAIN_FORMAT if engine_version is None else CHAIN_FORMAT_ENGINE,
        seq,
        prev_hash,
        str(row.id),
        canonical_timestamp(row.created_at),
        row.ruleset_sha256,
        row.ruleset_version,
        row.caller,
        row.request_id,
        row.family,
        row.instance_type,
        row.scaling_method,
        row.instances,
        row.profile,
    ]
    if client_request_id is not None:
        fields[0] = CHAIN_FORMAT_CLIENT_ID
        fields.insert(9, client_request_id)
        fields.insert(7, engine_version)
    elif engine_version is not None:
        fields.insert(7, engine_version)
    # The same bytes as encoding the array with the recommendation as its last element: compact JSON joins an
    # array's elements with "," between "[" and "]".
    encoded = b"".join((_encode(fields)[:-1], b",", _encoded_recommendation(row.recommendation), b"]"))
    return hashlib.sha256(encoded).hexdigest()


# The JSON string encodings of the last few recommendations hashed, by identity: a profile answered from the memo
# (service.engine.memo) brings the same str object every time, so its text is escaped once, not once a row
# (bench/README.md has the figures). Each entry holds its text, so an id can never be reused while it is here.
_RECENT_RECOMMENDATIONS = 8
_recent_recommendations: list[tuple[str, bytes]] = []


def _encoded_recommendation(text: str) -> bytes:
    for seen, encoded in _recent_recommendations:
        if seen is text:
            return encoded
    encoded = _encode(text)
    _recent_recommendations.insert(0, (text, encoded))
    del _recent_recommendations[_RECENT_RECOMMENDATIONS:]
    return encoded


_msgspec_encode = msgspec.json.Encoder().encode


def _encode(fields: list[str | int | None] | str) -> bytes:
    """Compact JSON, non-ASCII kept: msgspec writes the same bytes as ``json.dumps(ensure_ascii=False,
    separators=(",", ":"))`` for these fields (a property test holds it to that) several times faster, except that
    it refuses lone surrogates, which the stdlib encoder passes through."""
    try:
        return _msgspec_encode(fields)
    except UnicodeEncodeError:
        text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8", "surrogatepass")
