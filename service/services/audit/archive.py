"""Archiving whole months of decisions: export, verify the export, record it, drop the month.

``advisor audit archive --before YYYY-MM --to DIR`` takes each month before ``YYYY-MM`` that still holds
decisions, oldest first, and for each:

1. writes ``decisions-YYYY-MM.jsonl.gz``: one JSON object per decision, in ``(chain, seq)`` order, with its place
   in its chain (``chain``, ``seq``, ``prev_hash``, ``row_hash``) and every stored field, profile and answer as
   the exact texts (gzip: readable with ``zcat`` anywhere);
2. writes ``decisions-YYYY-MM.manifest.json``: the file's SHA-256, the number of decisions and, per chain, the
   runs of consecutive ``seq`` it holds (first seq and its ``prev_hash``, last seq and its ``row_hash``);
3. reads the file back and checks it: its SHA-256, every row's hash recomputed, the links within each run, and the
   count against the database;
4. in one transaction: records the month in ``audit_archives`` (with the manifest) and drops the month
   (``service.db.archive_store.drop_month``).

A month is never dropped unless its export was read back and verified. Afterwards ``GET /v1/decisions/{id}``
answers 410 naming the archive for a decision of that month, and ``advisor audit verify --archives DIR`` walks
the archived rows and the live ones as one chain per chain number.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import archive_store
from service.db.chain import canonical_timestamp, chain_hash
from service.db.connection import read_snapshot
from service.db.documents import month_of
from service.db.repository import uuid7_time
from service.db.rows import ChainedDecision, DecisionRow

__all__ = [
    "ARCHIVE_FORMAT",
    "ArchiveError",
    "ArchivedMonth",
    "archive_months",
    "file_sha256",
    "read_archive",
    "read_manifests",
]

ARCHIVE_FORMAT = "advisor-audit-archive/1"
# Every stored field of a decision but the two its record leads with.
_DECISION_TEXT_FIELDS = tuple(f.name for f in fields(DecisionRow) if f.name not in ("id", "created_at"))


class ArchiveError(RuntimeError):
    """An archive that cannot be written, or does not match what it should hold."""


@dataclass(frozen=True, slots=True)
class ArchivedMonth:
    month: int
    file: Path
    decisions: int
    sha256: str


def file_stem(month: int) -> str:
    return f"decisions-{month // 100:04d}-{month % 100:02d}"


def _encode(link: ChainedDecision) -> bytes:
    d = link.decision
    record: dict[str, object] = {
        "chain": link.chain,
        "seq": link.seq,
        "prev_hash": link.prev_hash,
        "row_hash": link.row_hash,
        "id": str(d.id),
        "created_at": canonical_timestamp(d.created_at),
    }
    record.update({name: getattr(d, name) for name in _DECISION_TEXT_FIELDS})
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass") + b"\n"


def _decode(line: bytes) -> ChainedDecision:
    record = json.loads(line.decode("utf-8", "surrogatepass"))
    created = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
    decision = DecisionRow(
        id=UUID(record["id"]), created_at=created, **{name: record[name] for name in _DECISION_TEXT_FIELDS}
    )
    return ChainedDecision(
        seq=int(record["seq"]),
        prev_hash=record["prev_hash"],
        row_hash=record["row_hash"],
        decision=decision,
        chain=int(record["chain"]),
    )


def read_archive(path: Path) -> Iterator[ChainedDecision]:
    """The decisions of an archive file, in the ``(chain, seq)`` order they were written."""
    with gzip.open(path, "rb") as stream:
        for line in stream:
            if line.strip():
                yield _decode(line)


def read_manifests(directory: Path) -> list[dict[str, object]]:
    """Every archive manifest in ``directory``, oldest month first."""
    found = [json.loads(path.read_text()) for path in sorted(directory.glob("decisions-*.manifest.json"))]
    return sorted(found, key=lambda manifest: int(str(manifest["month"])))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Runs:
    """Per chain, the runs of consecutive seq an archive holds."""

    def __init__(self) -> None:
        self.runs: dict[int, list[dict[str, object]]] = {}

    def add(self, link: ChainedDecision) -> None:
        runs = self.runs.setdefault(link.chain, [])
        if runs and runs[-1]["last_seq"] == link.seq - 1:
            runs[-1].update(last_seq=link.seq, last_row_hash=link.row_hash)
            runs[-1]["decisions"] = int(str(runs[-1]["decisions"])) + 1
            return
        runs.append(
            {
                "first_seq": link.seq,
                "first_prev_hash": link.prev_hash,
                "last_seq": link.seq,
                "last_row_hash": link.row_hash,
                "decisions": 1,
            }
        )


async def _export(engine: AsyncEngine, month: int, directory: Path) -> tuple[Path, dict[str, object]]:
    target = directory / f"{file_stem(month)}.jsonl.gz"
    partial = target.with_suffix(".gz.partial")
    runs, count = _Runs(), 0
    async with read_snapshot(engine) as conn:
        with gzip.open(partial, "wb") as out:
            async for link in archive_store.stream_month(conn, month):
                out.write(_encode(link))
                runs.add(link)
                count += 1
        expected = await archive_store.count_month(conn, month)
    if count != expected:
        raise ArchiveError(f"{file_stem(month)}: exported {count} decisions but the month holds {expected}")
    os.replace(partial, target)
    manifest: dict[str, object] = {
        "format": ARCHIVE_FORMAT,
        "month": month,
        "file": target.name,
        "sha256": file_sha256(target),
        "decisions": count,
        "chains": {str(chain): chain_runs for chain, chain_runs in sorted(runs.runs.items())},
    }
    return target, manifest


def verify_export(path: Path, manifest: dict[str, object]) -> None:
    """The archive file against its manifest: SHA-256, count, each row's hash and the links within each run."""
    if file_sha256(path) != manifest["sha256"]:
        raise ArchiveError(f"{path.name}: its SHA-256 does not match the manifest — the file was changed")
    runs, count = _Runs(), 0
    for link in read_archive(path):
        if chain_hash(link.seq, link.prev_hash, link.decision) != link.row_hash:
            raise ArchiveError(f"{path.name}: chain {link.chain} seq {link.seq}: row hash mismatch")
        previous = runs.runs.get(link.chain, [])
        if previous and previous[-1]["last_seq"] == link.seq - 1 and previous[-1]["last_row_hash"] != link.prev_hash:
            raise ArchiveError(f"{path.name}: chain {link.chain} seq {link.seq}: prev_hash does not match seq before")
        runs.add(link)
        count += 1
    chains = {str(chain): chain_runs for chain, chain_runs in sorted(runs.runs.items())}
    if count != manifest["decisions"] or chains != manifest["chains"]:
        raise ArchiveError(f"{path.name}: its rows do not match its manifest")


async def archive_months(
    engine: AsyncEngine,
    *,
    before: int,
    directory: Path,
    clock: Callable[[], datetime],
    on_month: Callable[[ArchivedMonth], None] = lambda _: None,
) -> list[ArchivedMonth]:
    """Archive every month before ``before`` (``YYYYMM``) that holds decisions into ``directory`` (which must
    exist); what was archived."""
    now = clock()
    current = now.year * 100 + now.month
    if before > current:
        raise ArchiveError(
            f"cannot archive {before // 100}-{before % 100:02d} or later: months up to the current one still take "
            "decisions"
        )
    async with engine.connect() as conn:
        months = await archive_store.months_with_decisions(conn, before=before)
    done: list[ArchivedMonth] = []
    for month in months:
        path, manifest = await _export(engine, month, directory)
        verify_export(path, manifest)
        text = json.dumps(manifest, indent=2, sort_keys=True)
        (directory / f"{file_stem(month)}.manifest.json").write_text(text + "\n")
        record = archive_store.ArchiveRecord(
            month, path.name, str(manifest["sha256"]), int(str(manifest["decisions"])), text, clock()
        )
        async with engine.begin() as conn:
            if await archive_store.count_month(conn, month) != record.decisions:
                raise ArchiveError(f"{file_stem(month)}: decisions were added while it was exported; run again")
            await archive_store.record_archive(conn, record)
            await archive_store.drop_month(conn, month)
        archived = ArchivedMonth(month, path, record.decisions, record.sha256)
        on_month(archived)
        done.append(archived)
    return done


def month_of_decision_id(decision_id: UUID) -> int | None:
    """The month a UUIDv7 was made in (``YYYYMM``, UTC); None for other UUID versions."""
    made = uuid7_time(decision_id)
    return None if made is None else month_of(made)
