"""`advisor audit verify --checkpoints`: the signed copies on the witness are the trust root. A truncated tail, a
rewritten row, a history re-hashed and signed again, a forged and a missing checkpoint are each caught against
them; a row deleted after the newest copy is not (the window, stated in the output and tested at its boundary)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from auditutil import hex_sql
from checkpointutil import (
    T1,
    KeyPair,
    advisor,
    build_history,
    checkpoint,
    make_key,
    rehash_chain,
    tamper,
    verify_args,
)
from click.testing import Result
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import AuditRepository
from service.services.audit.checkpoints import checkpoint_hash
from service.services.audit.witness import FileWitness, WitnessError


@pytest.fixture
def keys(tmp_path: Path) -> tuple[KeyPair, KeyPair]:
    return make_key(tmp_path, "old"), make_key(tmp_path, "new")


@pytest.fixture
async def witness(engine: AsyncEngine, tmp_path: Path, keys: tuple[KeyPair, KeyPair]) -> Path:
    """The history of ``build_history`` (checkpoint 1 signed by the old key, 2 by the new one) on a witness file."""
    path = tmp_path / "witness.jsonl"
    await build_history(engine, FileWitness(path), keys[0].signer, keys[1].signer)
    return path


def read_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as file:
        return file.read().splitlines()


def write_lines(path: Path, lines: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.writelines(line + "\n" for line in lines)


def assert_broken(result: Result, *phrases: str) -> None:
    assert result.exit_code == 1, result.output
    for phrase in phrases:
        assert phrase in result.output, result.output


async def verify(database_url: str, witness: Path, *keys: KeyPair) -> Result:
    return await advisor(database_url, *verify_args([str(witness)], *keys))


async def test_the_intact_history_verifies_and_the_window_is_stated(
    database_url: str, engine: AsyncEngine, witness: Path, keys: tuple[KeyPair, KeyPair]
) -> None:
    copies = [json.loads(line) for line in read_lines(witness)]
    assert [c["seq"] for c in copies] == [1, 2]
    assert [c["key_id"] for c in copies] == [keys[0].signer.key_id, keys[1].signer.key_id]
    assert copies[1]["heads"][0][:2] == [1, 5] and copies[1]["heads"][1][:2] == [2, 3]
    result = await verify(database_url, witness, *keys)
    assert result.exit_code == 0, result.output
    assert "ok: 9 decisions in 2 chains" in result.output
    assert "2 external checkpoint(s)" in result.output and "signed by 2 trusted key(s)" in result.output
    assert "the newest, seq 2 at 2026-12-03T12:01:00.250000Z" in result.output
    assert "1 decision(s) after it are covered by no external checkpoint" in result.output


async def test_a_truncated_tail_is_caught(
    database_url: str, engine: AsyncEngine, witness: Path, keys: tuple[KeyPair, KeyPair]
) -> None:
    """Seq 5 and 6 of chain 1 deleted, its head moved back to seq 4 and the checkpoint binding seq 5 deleted:
    consistent inside the database, but the copy of checkpoint 2 recorded seq 5."""
    async with engine.connect() as conn:
        seq4 = (await AuditRepository(conn).get_chain_head(1), None)[0]
    assert seq4 is not None
    await tamper(
        engine,
        "DELETE FROM decisions WHERE chain = 1 AND seq >= 5",
        f"UPDATE audit_chain_head SET seq = 4, row_hash = (SELECT {hex_sql(engine, 'row_hash')} FROM decisions "
        "WHERE chain = 1 AND seq = 4) WHERE id = 1",
        "DELETE FROM audit_checkpoints WHERE seq = 2",
    )
    assert_broken(await verify(database_url, witness, *keys), "checkpoint seq 2", "checkpoints were deleted")
    # Without the copies, the database agrees with itself.
    plain = await advisor(database_url, "audit", "verify")
    assert plain.exit_code == 0, plain.output


async def test_the_window_at_its_boundary(
    database_url: str, engine: AsyncEngine, witness: Path, keys: tuple[KeyPair, KeyPair]
) -> None:
    """Chain 1's seq 6 came after the newest copy: deleting it (head moved back) cannot be told from it never having
    been made. Seq 5, the head the newest copy bound, can: deleting it too is caught."""
    cut_to = (
        "UPDATE audit_chain_head SET seq = {seq}, "
        f"row_hash = (SELECT {hex_sql(engine, 'row_hash')} FROM decisions WHERE chain = 1 AND seq = {{seq}}) "
        "WHERE id = 1"
    )
    await tamper(engine, "DELETE FROM decisions WHERE chain = 1 AND seq = 6", cut_to.format(seq=5))
    undetected = await verify(database_url, witness, *keys)
    assert undetected.exit_code == 0, undetected.output
    assert "0 decision(s) after it are covered by no external checkpoint" in undetected.output

    await tamper(engine, "DELETE FROM decisions WHERE chain = 1 AND seq = 5", cut_to.format(seq=4))
    assert_broken(
        await verify(database_url, witness, *keys),
        "chain 1",
        "seq 5 is beyond the last decision (seq 4) — rows at the end were deleted",
    )


async def test_a_rewritten_row_is_caught(
    database_url: str, engine: AsyncEngine, witness: Path, keys: tuple[KeyPair, KeyPair]
) -> None:
    await tamper(engine, "UPDATE decisions SET instances = 9 WHERE chain = 2 AND seq = 2")
    assert_broken(await verify(database_url, witness, *keys), "chain 2 seq 2", "row hash mismatch")


@pytest.mark.parametrize("signed_again_by", ["leaked key", "another key"])
async def test_a_history_rewritten_rehashed_and_signed_again_is_caught(
    database_url: str,
    engine: AsyncEngine,
    witness: Path,
    keys: tuple[KeyPair, KeyPair],
    tmp_path: Path,
    signed_again_by: str,
) -> None:
    """A row changed, its chain re-hashed, the head row moved, the checkpoints deleted and recorded again (with
    the service's own key, leaked, or another): the database verifies on its own, the copies do not match."""
    await tamper(engine, "UPDATE decisions SET instances = 9 WHERE chain = 1 AND seq = 2")
    await rehash_chain(engine, 1)
    await tamper(engine, "DELETE FROM audit_checkpoints")
    signer = keys[1].signer if signed_again_by == "leaked key" else make_key(tmp_path, "rogue").signer
    elsewhere = FileWitness(tmp_path / "rogue-witness.jsonl")  # what the rewriter can write to
    await checkpoint(engine, T1 + timedelta(minutes=1), signer, elsewhere)  # binding the rewritten heads
    plain = await advisor(database_url, "audit", "verify")
    assert plain.exit_code == 0, plain.output
    assert_broken(await verify(database_url, witness, *keys), "checkpoint seq 1", "differs from the anchor")


async def test_checkpoints_not_published_yet_widen_the_window(
    database_url: str, engine: AsyncEngine, witness: Path, keys: tuple[KeyPair, KeyPair], tmp_path: Path
) -> None:
    """The witness was unreachable for checkpoint 3: the history verifies, up to the newest copy (seq 2)."""
    unreachable = FileWitness(tmp_path / "missing-dir" / "witness.jsonl")
    with pytest.raises(WitnessError):
        await checkpoint(engine, T1 + timedelta(minutes=2), keys[1].signer, unreachable)
    result = await verify(database_url, witness, *keys)
    assert result.exit_code == 0, result.output
    assert "the newest, seq 2 at 2026-12-03T12:01:00.250000Z" in result.output
    assert "1 decision(s) after it are covered by no external checkpoint" in result.output
    assert "(1 newer stored checkpoint(s) not published yet)" in result.output


async def test_a_stored_checkpoint_signed_by_another_key_is_caught(
    database_url: str, engine: AsyncEngine, witness: Path, keys: tuple[KeyPair, KeyPair], tmp_path: Path
) -> None:
    """A checkpoint stored after the newest copy, signed by a key nobody trusts (never published)."""
    rogue = make_key(tmp_path, "rogue")
    await checkpoint(engine, T1 + timedelta(minutes=2), rogue.signer, FileWitness(tmp_path / "rogue.jsonl"))
    assert_broken(await verify(database_url, witness, *keys), "stored checkpoint seq 3", "not trusted")


async def test_a_forged_checkpoint_is_caught(
    database_url: str, engine: AsyncEngine, witness: Path, keys: tuple[KeyPair, KeyPair]
) -> None:
    """A copy appended with other heads and a hash to match, but the old signature: it does not verify."""
    copy = json.loads(read_lines(witness)[-1])
    copy["seq"], copy["prev_hash"] = 3, copy["row_hash"]
    copy["heads"][0][1] = 7
    heads = json.dumps(copy["heads"], separators=(",", ":"))
    at = datetime.strptime(copy["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=T1.tzinfo)
    copy["row_hash"] = checkpoint_hash(3, copy["prev_hash"], at, heads)
    write_lines(witness, [*read_lines(witness), json.dumps(copy)])
    assert_broken(await verify(database_url, witness, *keys), "external checkpoint seq 3", "does not verify", "forged")


async def test_a_line_cut_short_is_named_but_hides_nothing(
    database_url: str, engine: AsyncEngine, witness: Path, keys: tuple[KeyPair, KeyPair]
) -> None:
    """A crash in the middle of an append leaves half a line; the next copy starts on a line of its own."""
    lines = read_lines(witness)
    with open(witness, "w", encoding="utf-8") as file:  # noqa: ASYNC230 - a small local file, in a test
        file.write(lines[0] + "\n" + lines[1][:40])
    FileWitness(witness).publish(2, lines[1].encode())
    assert read_lines(witness)[1:] == [lines[1][:40], lines[1]]
    result = await verify(database_url, witness, *keys)
    assert result.exit_code == 0, result.output
    assert f"1 unreadable entry(ies) ignored, the first at {witness}:2" in result.output
    write_lines(witness, [lines[1][:40], lines[1]])  # but the copy of checkpoint 1 cannot be replaced by one
    assert_broken(await verify(database_url, witness, *keys), "checkpoint seq 1 is stored and signed but missing")


async def test_a_checkpoint_signed_by_an_untrusted_key_is_caught(
    database_url: str, engine: AsyncEngine, witness: Path, keys: tuple[KeyPair, KeyPair]
) -> None:
    """Key rotation: checkpoint 1 is signed by the old key, 2 by the new one. Trusting only the new key leaves the
    first unproven."""
    assert_broken(await verify(database_url, witness, keys[1]), "external checkpoint seq 1", "not trusted")


async def test_a_missing_checkpoint_is_caught(
    database_url: str, engine: AsyncEngine, witness: Path, keys: tuple[KeyPair, KeyPair]
) -> None:
    write_lines(witness, read_lines(witness)[1:])  # the copy of checkpoint 1 removed
    assert_broken(await verify(database_url, witness, *keys), "checkpoint seq 1 is stored and signed but missing")


async def test_two_different_copies_of_one_seq_are_caught(
    database_url: str, engine: AsyncEngine, witness: Path, keys: tuple[KeyPair, KeyPair], tmp_path: Path
) -> None:
    """A second, validly signed copy of seq 2 (the key leaked) that differs from the first: one is forged."""
    other = FileWitness(tmp_path / "other.jsonl")
    await tamper(engine, "DELETE FROM audit_checkpoints WHERE seq = 2")
    await checkpoint(engine, T1 + timedelta(minutes=2), keys[1].signer, other)
    assert_broken(
        await advisor(database_url, *verify_args([str(witness), str(other.path)], *keys)),
        "two different checkpoints published for this seq",
    )


async def test_verify_needs_trusted_keys_and_copies(
    database_url: str, engine: AsyncEngine, tmp_path: Path, keys: tuple[KeyPair, KeyPair]
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    no_keys = await advisor(database_url, "audit", "verify", "--checkpoints", str(empty))
    assert no_keys.exit_code == 2 and "--public-key" in no_keys.output
    nothing = await verify(database_url, empty, keys[0])
    assert nothing.exit_code == 2 and "no checkpoint copies" in nothing.output
