"""Archived months in a chain walk: their files merged with the live rows, or their manifests in their place."""

from __future__ import annotations

import heapq
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from uuid import UUID

from service.db.archive_store import ArchiveRecord
from service.db.rows import ChainedDecision
from service.services.audit.archive import file_sha256, read_archive

__all__ = ["archived_runs", "check_archive_files", "merge_links"]

Found = tuple[int | None, UUID | None, str, int]  # ChainBreak's fields


def check_archive_files(records: Sequence[ArchiveRecord], files: Sequence[Path]) -> Found | None:
    """With archive files given: every archived month's file is among them and has the SHA-256 recorded for it."""
    if not files:
        return None
    by_name = {path.name: path for path in files}
    for record in records:
        path = by_name.get(record.file)
        if path is None:
            return (None, None, f"archive {record.file} (month {record.month}) was not given", 1)
        if file_sha256(path) != record.sha256:
            return (None, None, f"archive {record.file}: its SHA-256 differs from the one recorded — changed", 1)
    return None


def archived_runs(records: Sequence[ArchiveRecord]) -> dict[int, list[dict[str, object]]]:
    """Per chain, the runs of seq the archived months' manifests record."""
    runs: dict[int, list[dict[str, object]]] = {}
    for record in records:
        chains = json.loads(record.manifest).get("chains", {})
        for chain, chain_runs in chains.items():
            runs.setdefault(int(chain), []).extend(chain_runs)
    return runs


async def merge_links(live: AsyncIterator[ChainedDecision], files: Sequence[Path]) -> AsyncIterator[ChainedDecision]:
    """The live rows and the archived ones, merged in ``(chain, seq)`` order (each is in that order already)."""
    archived: Iterator[ChainedDecision] = heapq.merge(
        *(read_archive(path) for path in files), key=lambda link: (link.chain, link.seq)
    )
    pending = next(archived, None)
    async for link in live:
        while pending is not None and (pending.chain, pending.seq) <= (link.chain, link.seq):
            yield pending
            pending = next(archived, None)
        yield link
    while pending is not None:
        yield pending
        pending = next(archived, None)
