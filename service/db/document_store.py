"""The SQL of stored documents and dictionaries (``service.db.documents`` says how they are encoded)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import LargeBinary, Select, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.documents import (
    Dictionary,
    DocumentDecodeError,
    DocumentEncoder,
    StoredDocument,
    TextCache,
    WrittenDocuments,
    decode_document,
    has_decompressor,
    month_of,
)
from service.db.rows import DecisionRow
from service.db.tables import audit_dictionaries, audit_documents

__all__ = [
    "DocumentsMissing",
    "UnreadableDocument",
    "add_dictionary",
    "documents_to_store",
    "latest_dictionary",
    "load_decision_texts",
    "load_texts",
]

DocumentKey = tuple[int, bytes]
_CHUNK = 2000  # names per query: one array parameter on Postgres, an IN list on SQLite (under its 32766 limit)


class DocumentsMissing(DocumentDecodeError):
    """A decision names a document that is not stored."""


class UnreadableDocument(DocumentDecodeError):
    """The first decision, in the order asked for, whose profile or recommendation is missing or was changed:
    ``index`` into the decisions asked for, ``which`` of its documents, and the texts read before it. ``decision``
    is its ``(chain, seq, id)`` where the caller knows them."""

    def __init__(self, index: int, which: str, cause: DocumentDecodeError, texts: dict[DocumentKey, str]) -> None:
        super().__init__(f"the {which} document of decision #{index}: {cause}")
        self.index = index
        self.which = which
        self.missing = isinstance(cause, DocumentsMissing)
        self.texts = texts
        self.decision: tuple[int, int, UUID] | None = None
        self.links: list[Any] = []  # the chained decisions before it, where the caller built them


def documents_to_store(
    rows: Sequence[DecisionRow], encoder: DocumentEncoder, written: WrittenDocuments | None
) -> tuple[list[tuple[DocumentKey, DocumentKey]], list[StoredDocument]]:
    """For each row the keys of its profile and recommendation, and the documents to insert: each new one once,
    none that ``written`` says is committed already."""
    keys: list[tuple[DocumentKey, DocumentKey]] = []
    new: dict[DocumentKey, StoredDocument] = {}
    for row in rows:
        month = month_of(row.created_at)
        pair = []
        for text in (row.profile, row.recommendation):
            key = encoder.key(text, month)
            pair.append(key)
            if key not in new and (written is None or key not in written):
                new[key] = encoder.encode(text, month=month, sha256=key[1])
        keys.append((pair[0], pair[1]))
    return keys, list(new.values())


async def load_texts(
    conn: AsyncConnection, wanted: Iterable[DocumentKey], cache: TextCache | None = None
) -> dict[DocumentKey, str]:
    """The texts of these documents, decoded and checked; ``DocumentsMissing`` if one is not stored,
    ``DocumentDecodeError`` if one was changed."""
    found: dict[DocumentKey, str] = {}
    missing: list[DocumentKey] = []
    for key in dict.fromkeys(wanted):
        cached = None if cache is None else cache.get(key)
        if cached is None:
            missing.append(key)
        else:
            found[key] = cached
    by_month: dict[int, list[bytes]] = {}
    for month, sha256 in missing:
        by_month.setdefault(month, []).append(sha256)
    for month, names in by_month.items():
        for start in range(0, len(names), _CHUNK):
            rows = (await conn.execute(_select(conn, month, names[start : start + _CHUNK]))).all()
            contents = await _dictionaries(conn, {row.dictionary_sha256 for row in rows} - {None})
            for _, sha256, codec, body, dictionary in rows:
                key = (month, bytes(sha256))
                text = decode_document(key[1], int(codec), bytes(body), contents.get(dictionary), dictionary)
                found[key] = text
                if cache is not None:
                    cache.put(key, text)
    absent = [key for key in missing if key not in found]
    if absent:
        month, sha256 = absent[0]
        raise DocumentsMissing(f"document {sha256.hex()} of month {month} is not stored ({len(absent)} missing)")
    return found


def _select(conn: AsyncConnection, month: int, names: list[bytes]) -> Select[Any]:
    """The documents of one month with these names, and their dictionaries' content. Postgres: the names as one
    array parameter (``= ANY``), compiled once, where an IN list of row values was compiled again for every batch
    and dominated a history walk's CPU time."""
    if conn.dialect.name == "postgresql":
        named = audit_documents.c.sha256 == any_(bindparam("names", names, type_=postgresql.ARRAY(LargeBinary)))
    else:
        named = audit_documents.c.sha256.in_(names)
    return (
        select(
            audit_documents.c.month,
            audit_documents.c.sha256,
            audit_documents.c.codec,
            audit_documents.c.body,
            audit_dictionaries.c.sha256.label("dictionary_sha256"),
        )
        .join_from(
            audit_documents, audit_dictionaries, audit_dictionaries.c.id == audit_documents.c.dictionary, isouter=True
        )
        .where(audit_documents.c.month == month, named)
    )


async def _dictionaries(conn: AsyncConnection, wanted: set[str]) -> dict[str, bytes]:
    """The content of the dictionaries with these SHA-256s that are not loaded yet."""
    missing = [sha256 for sha256 in wanted if not has_decompressor(sha256)]
    if not missing:
        return {}
    query = select(audit_dictionaries.c.sha256, audit_dictionaries.c.content).where(
        audit_dictionaries.c.sha256.in_(missing)
    )
    return {row.sha256: bytes(row.content) for row in await conn.execute(query)}


async def load_decision_texts(
    conn: AsyncConnection, pairs: Sequence[tuple[DocumentKey, DocumentKey]], cache: TextCache | None = None
) -> dict[DocumentKey, str]:
    """The texts of each decision's ``(profile, recommendation)`` documents, as ``load_texts`` reads them; if one is
    missing or was changed, ``UnreadableDocument`` names the first decision of ``pairs`` it belongs to (found by
    reading them again one by one: only then)."""
    try:
        return await load_texts(conn, (key for pair in pairs for key in pair), cache)
    except DocumentDecodeError:
        pass
    texts: dict[DocumentKey, str] = {}
    for index, pair in enumerate(pairs):
        for which, key in zip(("profile", "recommendation"), pair, strict=True):
            if key not in texts:
                try:
                    texts.update(await load_texts(conn, [key], cache))
                except DocumentDecodeError as exc:
                    raise UnreadableDocument(index, which, exc, texts) from exc
    return texts


async def latest_dictionary(conn: AsyncConnection) -> Dictionary | None:
    query = select(audit_dictionaries.c.id, audit_dictionaries.c.content).order_by(audit_dictionaries.c.id.desc())
    row = (await conn.execute(query.limit(1))).first()
    return None if row is None else Dictionary(int(row.id), bytes(row.content))


async def add_dictionary(conn: AsyncConnection, content: bytes, *, now: datetime) -> Dictionary:
    """Store a dictionary under the next number (an ``IntegrityError`` if another writer took it first)."""
    number = int(await conn.scalar(select(func.coalesce(func.max(audit_dictionaries.c.id), 0))) or 0) + 1
    dictionary = Dictionary(number, content)
    await conn.execute(
        audit_dictionaries.insert().values(id=number, sha256=dictionary.sha256, content=content, created_at=now)
    )
    return dictionary
