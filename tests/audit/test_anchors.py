"""Chain heads logged by the writer, and `advisor audit verify --anchors-from` (security review, finding 2): tamper
evidence that survives the database owner, who can rewrite the chain and its head but not the log lines that left
the database."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from typing import Any

import pytest
from auditutil import MakeClient, MakeWriter, decision, hex_sql, unprotect
from click.testing import CliRunner, Result
from profiles import WORKED_EXAMPLE
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.cli import main
from service.db import AuditRepository, ChainHead
from service.db.chain import chain_hash
from service.db.connection import read_snapshot
from service.observability.logging import configure_logging
from service.services.audit.checkpoints import checkpoint_hash, encode_heads
from service.settings import get_settings


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@contextmanager
def logged_lines() -> Iterator[list[str]]:
    """The JSON lines the process logs while the block runs (at ADVISOR_LOG_LEVEL=WARNING: anchors log anyway)."""
    stream = io.StringIO()
    lines: list[str] = []
    configure_logging("WARNING", "json")
    try:
        with redirect_stderr(stream):
            yield lines
    finally:
        configure_logging("INFO", "json")
        lines.extend(stream.getvalue().splitlines())


def heads(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if '"chain head"' in line]


async def advisor(database_url: str, *args: str, stdin: str | None = None) -> Result:
    def invoke() -> Result:
        get_settings.cache_clear()
        return CliRunner().invoke(main, list(args), env={"ADVISOR_DATABASE_URL": database_url}, input=stdin)

    return await asyncio.to_thread(invoke)


async def write_and_log(make_writer: MakeWriter, count: int, path: Path, **anchoring: float) -> list[dict[str, Any]]:
    """``count`` decisions, one batch each, from a writer that anchors every 5 rows (and once when stopped); its
    log, with lines of other loggers and a line that is not JSON, written to ``path``."""
    with logged_lines() as lines:
        writer = make_writer(**({"anchor_every_rows": 5, "anchor_every_s": 3600.0} | anchoring))
        await writer.start()
        for i in range(count):
            await writer.write(decision(i))
        logging.getLogger("service.audit").warning("an unrelated line")
        await writer.stop()
    text_lines = ["not json at all", *lines, '{"event": "chain head", "seq": "x"}']
    await asyncio.to_thread(path.write_text, "\n".join(text_lines) + "\n")
    return heads(lines)


async def tamper(engine: AsyncEngine, statements: list[tuple[str, dict[str, Any]]]) -> None:
    """Run ``statements`` behind the triggers' back, as the database owner or a superuser can."""
    postgres = engine.dialect.name == "postgresql"
    if not postgres:
        await unprotect(engine)
    async with engine.begin() as conn:
        if postgres:  # the review's way: superuser, triggers not fired
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        for statement, params in statements:
            await conn.execute(text(statement), params)


async def test_the_writer_logs_the_chain_head_every_n_rows_and_when_it_stops(
    engine: AsyncEngine, make_writer: MakeWriter, tmp_path: Path
) -> None:
    logged = await write_and_log(make_writer, 12, tmp_path / "log.jsonl")
    async with engine.connect() as conn:
        head = await AuditRepository(conn).get_chain_head()
        checkpoint = await AuditRepository(conn).last_checkpoint()
    assert head is not None and checkpoint is not None
    assert [line["seq"] for line in logged] == [5, 10, 12]
    assert logged[-1]["row_hash"] == head.row_hash
    for line in logged:
        assert line["event"] == "chain head" and line["logger"] == "service.audit.anchor"
        assert line["time"].endswith("Z") or line["time"].endswith("+00:00")
    from service.services.audit import read_anchors

    # The writer's lines, and the checkpoint it recorded as it stopped (before its last line): the checkpoint's
    # own hash as chain 0, then the head it bound.
    five, ten, twelve = (ChainHead(line["seq"], line["row_hash"]) for line in logged)
    assert checkpoint.seq == 1 and twelve.seq == 12
    assert read_anchors((tmp_path / "log.jsonl").read_text().splitlines()) == [
        five,
        ten,
        ChainHead(1, checkpoint.row_hash, chain=0),
        twelve,
        twelve,
    ]


async def test_the_writer_logs_a_moved_head_after_the_interval_without_more_rows(make_writer: MakeWriter) -> None:
    with logged_lines() as lines:
        writer = make_writer(anchor_every_rows=1000, anchor_every_s=0.05)
        await writer.start()
        await writer.write(decision(0))
        await asyncio.sleep(0.3)
        await writer.stop()  # nothing moved since: no second line
    assert [line["seq"] for line in heads(lines)] == [1]


def test_anchor_lines_are_read_from_any_worker_and_everything_else_is_ignored() -> None:
    from service.services.audit import read_anchors

    line = {"timestamp": "t", "level": "info", "logger": "service.audit.anchor", "event": "chain head"}
    text_lines = [
        json.dumps(line | {"seq": 5, "row_hash": "a" * 64, "time": "t"}),
        "[pod/advisor-7c9/advisor] " + json.dumps(line | {"seq": 3, "row_hash": "b" * 64}),  # kubectl --prefix
        json.dumps(line | {"seq": True, "row_hash": "c" * 64}),
        json.dumps(line | {"seq": 6, "row_hash": "NOT HEX"}),
        json.dumps({"event": "request", "seq": 9, "row_hash": "d" * 64}),
        "{broken json",
        "",
    ]
    assert read_anchors(text_lines) == [ChainHead(5, "a" * 64), ChainHead(3, "b" * 64)]


async def test_a_truncated_tail_with_the_head_moved_back_is_caught_by_the_logged_anchors(
    engine: AsyncEngine, database_url: str, make_writer: MakeWriter, tmp_path: Path
) -> None:
    log = tmp_path / "advisor.log"
    await write_and_log(make_writer, 18, log)
    row_hash = hex_sql(engine, "row_hash")
    cut_tail = [
        ("DELETE FROM decisions WHERE seq > 15", {}),
        (f"UPDATE audit_chain_head SET seq = 15, row_hash = (SELECT {row_hash} FROM decisions WHERE seq = 15)", {}),
    ]
    await tamper(engine, cut_tail)
    # The checkpoint the writer recorded as it stopped still names seq 18.
    checkpointed = await advisor(database_url, "audit", "verify")
    assert checkpointed.exit_code == 1, checkpointed.output
    assert "chain 1: the checkpoint or anchor seq 18 is beyond the last decision (seq 15)" in checkpointed.stderr

    await tamper(engine, [("DELETE FROM audit_checkpoints", {})])  # the owner can delete those too
    plain = await advisor(database_url, "audit", "verify")
    assert plain.exit_code == 0 and plain.stdout.startswith("ok: 15 decisions"), plain.output  # the attack works

    anchored = await advisor(database_url, "audit", "verify", "--anchors-from", str(log))
    assert anchored.exit_code == 1, anchored.output
    assert "an anchor records checkpoint seq 1 but the last is seq 0 — checkpoints were deleted" in anchored.stderr
    # The writer's own head lines catch it as well.
    heads_only = "".join(line for line in log.read_text().splitlines(keepends=True) if "audit checkpoint" not in line)
    anchored = await advisor(database_url, "audit", "verify", "--anchors-from", "-", stdin=heads_only)
    assert anchored.exit_code == 1, anchored.output
    assert "chain 1: the checkpoint or anchor seq 18 is beyond the last decision (seq 15)" in anchored.stderr


async def test_a_rewritten_and_rechained_history_is_caught_by_the_logged_anchors(
    engine: AsyncEngine, database_url: str, make_writer: MakeWriter, tmp_path: Path
) -> None:
    log = tmp_path / "advisor.log"
    await write_and_log(make_writer, 18, log)
    async with read_snapshot(engine) as conn:
        chain = [link async for link in AuditRepository(conn).stream_chain()]
        checkpoint = await AuditRepository(conn).last_checkpoint()
    assert checkpoint is not None
    statements: list[tuple[str, dict[str, Any]]] = []
    prev_hash = chain[3].row_hash
    for link in chain[4:]:  # seq 5 changed, then every hash after it recomputed
        row = link.decision
        if link.seq == 5:
            row = type(row)(**{f: getattr(row, f) for f in row.__slots__} | {"instance_type": "ml.c5.24xlarge"})
        row_hash = chain_hash(link.seq, prev_hash, row)
        statements.append(
            (
                "UPDATE decisions SET instance_type = :it, prev_hash = :p, row_hash = :h WHERE seq = :s",
                {"it": row.instance_type, "p": bytes.fromhex(prev_hash), "h": bytes.fromhex(row_hash), "s": link.seq},
            )
        )
        prev_hash = row_hash
    statements.append(("UPDATE audit_chain_head SET row_hash = :h", {"h": prev_hash}))
    # ... and the checkpoint re-made for the new head, so the database agrees with itself throughout.
    heads = encode_heads([ChainHead(18, prev_hash)])
    rehashed = checkpoint_hash(1, checkpoint.prev_hash, checkpoint.created_at, heads)
    statements.append(("UPDATE audit_checkpoints SET heads = :heads, row_hash = :h", {"heads": heads, "h": rehashed}))
    await tamper(engine, statements)
    plain = await advisor(database_url, "audit", "verify")
    assert plain.exit_code == 0 and plain.stdout.startswith("ok: 18 decisions"), plain.output  # the attack works

    anchored = await advisor(database_url, "audit", "verify", "--anchors-from", "-", stdin=log.read_text())
    assert anchored.exit_code == 1, anchored.output
    assert "checkpoint seq 1: hash differs from the anchor" in anchored.stderr  # the logged checkpoint
    heads_only = "".join(line for line in log.read_text().splitlines(keepends=True) if "audit checkpoint" not in line)
    anchored = await advisor(database_url, "audit", "verify", "--anchors-from", "-", stdin=heads_only)
    assert anchored.exit_code == 1, anchored.output
    # seq 5 was anchored (every 5 rows): its recomputed hash is not the one logged.
    assert "seq 5 (decision" in anchored.stderr and "hash differs from the anchor or checkpoint" in anchored.stderr


async def test_verify_reports_the_anchors_it_checked_and_the_window_they_leave(
    engine: AsyncEngine, database_url: str, make_writer: MakeWriter, tmp_path: Path
) -> None:
    log = tmp_path / "advisor.log"
    await write_and_log(make_writer, 12, log)
    ok = await advisor(database_url, "audit", "verify", "--anchors-from", str(log))
    assert ok.exit_code == 0, ok.output
    # Three head lines and the checkpoint recorded at stop: its own hash and the head it bound (seq 12 again).
    assert "1 checkpoint(s) checked; 4 anchor(s) checked, the newest at seq 12" in ok.stdout

    # The protection window: rows after the newest anchor are covered by no anchor.
    await write_and_log(make_writer, 3, tmp_path / "later.log", anchor_every_rows=1000)
    await tamper(
        engine,
        [
            ("DELETE FROM decisions WHERE seq > 12", {}),
            (
                "UPDATE audit_chain_head SET seq = 12, row_hash = "
                f"(SELECT {hex_sql(engine, 'row_hash')} FROM decisions WHERE seq = 12)",
                {},
            ),
            ("DELETE FROM audit_checkpoints WHERE seq > 1", {}),  # the one recorded after the first log
        ],
    )
    unnoticed = await advisor(database_url, "audit", "verify", "--anchors-from", str(log))
    assert unnoticed.exit_code == 0, unnoticed.output

    empty = tmp_path / "empty.log"
    empty.write_text('{"event": "request"}\n')
    none = await advisor(database_url, "audit", "verify", "--anchors-from", str(empty))
    assert none.exit_code == 2 and "no `chain head` lines" in none.stderr


async def test_the_app_logs_chain_heads_at_any_log_level(make_client: MakeClient) -> None:
    with logged_lines() as lines:
        async with make_client(audit_anchor_every_rows=2, log_level="WARNING", log_format="json") as client:
            for _ in range(3):
                answer = await client.post("/v1/recommendations", json=WORKED_EXAMPLE)
                assert answer.status_code == 201, answer.text
    assert [line["seq"] for line in heads(lines)] == [2, 3]  # every 2 rows, then at shutdown
    assert not [line for line in lines if '"service.access"' in line]  # the access log is off at WARNING


def test_a_hostile_line_in_the_log_is_not_an_anchor() -> None:
    """The second reader's finding: a line nested past the stack raised RecursionError out of `verify`."""
    from service.services.audit.anchors import read_anchors

    good = json.dumps({"event": "chain head", "seq": 3, "row_hash": "a" * 64})
    hostile = 'x chain head {"a":' + "[" * 200_000
    assert read_anchors([hostile, good, "chain head {not json"]) == [ChainHead(3, "a" * 64)]
