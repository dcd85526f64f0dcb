"""Profiles and answers as documents: once per month by content, zstd with a dictionary the writer trains."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from auditutil import MakeWriter, decision
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import AuditRepository
from service.db.documents import (
    CODEC_TEXT,
    CODEC_ZSTD,
    Dictionary,
    DocumentDecodeError,
    DocumentEncoder,
    decode_document,
    digest,
    train_dictionary,
)
from service.services.audit import verify_chain


def answer(n: int) -> str:
    """An answer-like JSON text: the same keys and prose every time, a few numbers that differ."""
    return json.dumps(
        {
            "instance": {"family": "g", "instance_type": f"ml.g5.{n % 4}xlarge", "because": "GPU-bound models " * 20},
            "capacity": {"instances": n % 17, "per_az": [n % 3, n % 5], "because": "peak over per-instance " * 30},
            "scaling": {"method": "target_tracking", "target": 70 + n % 9, "because": "steady traffic " * 25},
            "n": n,
        }
    )


def test_a_document_decodes_to_its_exact_text_and_a_changed_one_is_refused() -> None:
    texts = [answer(n) for n in range(300)]
    dictionary = Dictionary(1, train_dictionary(texts[:200]))
    plain, trained = DocumentEncoder(), DocumentEncoder(dictionary)
    text_ = texts[250] + "ü✓"
    for encoder, content in ((plain, None), (trained, dictionary.content)):
        document = encoder.encode(text_, month=202612)
        assert document.codec == CODEC_ZSTD
        assert decode_document(document.sha256, document.codec, document.body, content) == text_
    assert len(trained.encode(texts[250], month=1).body) < len(plain.encode(texts[250], month=1).body) / 2
    raw = text_.encode()
    assert decode_document(digest(text_), CODEC_TEXT, raw, None) == text_
    with pytest.raises(DocumentDecodeError, match="was changed"):
        decode_document(digest(text_), CODEC_TEXT, raw.replace(b"g5", b"g6"), None)


async def test_repeated_texts_are_stored_once_a_month(engine: AsyncEngine, make_writer: MakeWriter) -> None:
    writer = make_writer(dictionary_samples=0)
    december = datetime(2026, 12, 1, 1, tzinfo=UTC)
    november = december - timedelta(days=2)
    same = {"profile": '{"same":1}', "recommendation": answer(1)}
    rows = [decision(n, created_at=december + timedelta(seconds=n), **same) for n in range(20)]
    rows += [decision(n, created_at=november + timedelta(seconds=n), **same) for n in range(20, 25)]
    rows.append(decision(99, created_at=december))
    for row in rows:  # one batch each: a repeat is skipped by what the writer knows it stored
        await writer.write(row)
    async with engine.connect() as conn:
        by_month = dict((await conn.execute(text("SELECT month, count(*) FROM audit_documents GROUP BY month"))).all())
        stored = await AuditRepository(conn).get_decision(rows[7].id)
    assert by_month == {202612: 4, 202611: 2}
    assert stored == rows[7]
    assert (await verify_chain(engine)).ok


async def test_the_writer_trains_a_dictionary_and_compresses_with_it(
    engine: AsyncEngine, make_writer: MakeWriter
) -> None:
    writer = make_writer(dictionary_samples=64)
    first = [decision(n, recommendation=answer(n) * 30) for n in range(80)]
    await asyncio.gather(*(writer.write(row) for row in first))
    for _ in range(200):  # training runs in a thread
        if writer.documents.dictionary is not None:
            break
        await asyncio.sleep(0.05)
    assert writer.documents.dictionary is not None
    later = [decision(n, recommendation=answer(n) * 30) for n in range(100, 110)]
    for row in later:
        await writer.write(row)
    async with engine.connect() as conn:
        dictionaries = (await conn.execute(text("SELECT id FROM audit_dictionaries"))).scalars().all()
        named = await conn.scalar(text("SELECT count(*) FROM audit_documents WHERE dictionary = 1"))
        repo = AuditRepository(conn)
        assert [await repo.get_decision(row.id) for row in later] == later
    assert dictionaries == [1]
    assert named >= 10
    assert (await verify_chain(engine)).ok
