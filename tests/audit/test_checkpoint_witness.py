"""The witness the signed checkpoints are copied to (an S3 Object Lock bucket, moto; an append-only file), how the
writer feeds it (every N rows, never holding up a decision, retried in order after a failure), the signing key
kept out of logs and settings, and GET /v1/audit/checkpoints."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from apiclients import KEY_ENTRIES, KEYS
from auditutil import MakeClient, MakeWriter, decision
from checkpointutil import KeyPair, advisor, append_on, build_history, make_key, verify_args
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from moto import mock_aws
from profiles import WORKED_EXAMPLE
from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import AuditRepository
from service.services.audit.batch import utcnow
from service.services.audit.checkpoints import Checkpoints
from service.services.audit.publisher import CheckpointPublisher
from service.services.audit.signing import CheckpointKeyError, CheckpointSigner, signed_bytes
from service.services.audit.witness import FileWitness, S3Witness, WitnessError, open_witness
from service.settings import Settings

BUCKET = "advisor-checkpoints"


@pytest.fixture
def key(tmp_path: Path) -> KeyPair:
    return make_key(tmp_path, "signing")


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto S3 with an Object Lock bucket (BUCKET) and a plain one (``plain``)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        client.create_bucket(Bucket="plain")
        yield client


def lines_of(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as file:  # a small local file, in a test
        return [json.loads(line) for line in file.read().splitlines()]


def failures() -> float:
    return REGISTRY.get_sample_value("advisor_audit_checkpoint_publish_failures_total") or 0.0


async def eventually(check: Any, *, within_s: float = 5.0) -> None:
    for _ in range(int(within_s / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{check.__name__} did not hold within {within_s} s")


# --- S3 with Object Lock ----------------------------------------------------------------------------------------


async def test_checkpoints_go_to_an_object_lock_bucket_locked_in_compliance_mode_and_verify_from_it(
    database_url: str, engine: AsyncEngine, s3: Any, key: KeyPair, tmp_path: Path
) -> None:
    witness = open_witness(f"s3://{BUCKET}/prod/checkpoints")
    assert isinstance(witness, S3Witness)
    await build_history(engine, witness, key.signer, key.signer)
    listed = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [o["Key"] for o in listed] == ["prod/checkpoints/000000000001.json", "prod/checkpoints/000000000002.json"]
    head = s3.head_object(Bucket=BUCKET, Key="prod/checkpoints/000000000002.json")
    assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockRetainUntilDate"].year >= 2027
    version = s3.list_object_versions(Bucket=BUCKET)["Versions"][0]
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"])

    result = await advisor(database_url, *verify_args([f"s3://{BUCKET}/prod/checkpoints"], key))
    assert result.exit_code == 0, result.output
    assert "2 external checkpoint(s) from s3://advisor-checkpoints/prod/checkpoints verified" in result.output

    # Whoever holds the service's credentials can put another version of an object, never hide the first one.
    forged = json.loads(s3.get_object(Bucket=BUCKET, Key="prod/checkpoints/000000000002.json")["Body"].read())
    forged["heads"][0][1] = 4
    s3.put_object(Bucket=BUCKET, Key="prod/checkpoints/000000000002.json", Body=json.dumps(forged).encode())
    broken = await advisor(database_url, *verify_args([f"s3://{BUCKET}/prod/checkpoints"], key))
    assert broken.exit_code == 1 and "external checkpoint seq 2" in broken.output, broken.output


async def test_a_bucket_without_object_lock_is_refused(
    engine: AsyncEngine, s3: Any, key: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = CheckpointPublisher(engine, open_witness("s3://plain/checkpoints"))
    checkpoints = Checkpoints(engine, every_s=60, clock=lambda: decision().created_at, signer=key.signer)
    await append_on(engine, 1, [decision(0)])
    assert await checkpoints.record(due_after_s=0) is not None
    before = failures()
    with caplog.at_level(logging.WARNING, logger="service.audit.anchor"):
        await publisher.try_publish()
    assert "refusing to publish checkpoints to s3://plain/checkpoints" in caplog.text
    assert "does not have Object Lock enabled" in caplog.text
    assert failures() == before + 1
    assert "Contents" not in s3.list_objects_v2(Bucket="plain")
    with pytest.raises(WitnessError, match="Object Lock"):
        await publisher.publish_pending()


# --- the writer -------------------------------------------------------------------------------------------------


def signing_checkpoints(
    engine: AsyncEngine, key: KeyPair, witness: Path, *, every_rows: int | None = None, every_s: float = 3600
) -> Checkpoints:
    publisher = CheckpointPublisher(engine, FileWitness(witness))
    return Checkpoints(
        engine, every_s=every_s, every_rows=every_rows, clock=utcnow, signer=key.signer, publisher=publisher
    )


async def stored_checkpoints(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return await AuditRepository(conn).count_checkpoints()


async def test_the_writer_checkpoints_every_n_rows_and_signs_and_publishes_each(
    engine: AsyncEngine, make_writer: MakeWriter, key: KeyPair, tmp_path: Path
) -> None:
    witness = tmp_path / "witness.jsonl"
    writer = make_writer(checkpoint_every_s=3600)
    writer.checkpoints = signing_checkpoints(engine, key, witness, every_rows=3)
    await writer.start()
    for n in range(3):
        await writer.write(decision(n))

    async def recorded_and_published() -> bool:
        return witness.exists() and await stored_checkpoints(engine) == 1

    await eventually(recorded_and_published)
    for n in range(3, 5):  # two more: below the count, and the timer is an hour
        await writer.write(decision(n))
    await asyncio.sleep(0.2)
    assert await stored_checkpoints(engine) == 1
    await writer.stop()  # one more as it stops, published too
    copies = lines_of(witness)
    assert [c["seq"] for c in copies] == [1, 2]
    assert [c["heads"][0][1] for c in copies] == [3, 5]
    for copy in copies:
        assert copy["key_id"] == key.signer.key_id
        key.signer.public_key.verify(base64.b64decode(copy["signature"]), signed_bytes(copy["seq"], copy["row_hash"]))


async def test_a_failing_witness_holds_up_no_decision_and_catches_up_in_order(
    engine: AsyncEngine, make_writer: MakeWriter, key: KeyPair, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    witness = tmp_path / "not-yet" / "witness.jsonl"  # its directory is missing: every append fails
    writer = make_writer(checkpoint_every_s=3600)
    writer.checkpoints = signing_checkpoints(engine, key, witness, every_rows=1)
    before = failures()
    await writer.start()
    with caplog.at_level(logging.WARNING, logger="service.audit.anchor"):
        await writer.write(decision(0))

        async def one_failure() -> bool:
            return failures() == before + 1

        await eventually(one_failure)
    assert "publishing audit checkpoints to" in caplog.text and "retried at the next checkpoint" in caplog.text
    assert await stored_checkpoints(engine) == 1  # recorded and signed all the same

    witness.parent.mkdir()
    await writer.write(decision(1))

    async def both_published() -> bool:
        return witness.exists() and len(lines_of(witness)) == 2

    await eventually(both_published)
    assert [c["seq"] for c in lines_of(witness)] == [1, 2]
    await writer.stop()


async def test_a_file_witness_finds_its_last_seq_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "witness.jsonl"
    witness = FileWitness(path)
    assert witness.last_seq() == 0
    big = "x" * 150_000  # lines longer than the chunk read from the end
    for seq in (1, 2, 3):
        witness.publish(seq, json.dumps({"seq": seq, "pad": big}).encode())
    assert witness.last_seq() == 3
    with open(path, "ab") as file:  # noqa: ASYNC230 - a crash in the middle of a write: no newline yet
        file.write(b'{"seq": 4, "pad": "xx')
    assert witness.last_seq() == 3
    assert [where for where, _ in witness.read_all()][-1].endswith(":4")


# --- the key ----------------------------------------------------------------------------------------------------


def pem_body(key: KeyPair) -> str:
    return key.pem.decode().splitlines()[1]  # the base64 of the key itself


async def test_the_key_never_appears_in_settings_or_logs(
    engine: AsyncEngine, make_writer: MakeWriter, key: KeyPair, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        audit_checkpoint_signing_key_file=key.private, audit_checkpoint_witness=str(tmp_path / "w.jsonl")
    )
    secret = pem_body(key)
    for shown in (repr(settings), str(settings), settings.model_dump_json(), repr(key.signer)):
        assert secret not in shown
    writer = make_writer()
    writer.checkpoints = Checkpoints.from_settings(engine, settings, clock=utcnow)
    assert writer.checkpoints.signer is not None and writer.checkpoints.signer.key_id == key.signer.key_id
    with caplog.at_level(logging.DEBUG):
        await writer.start()
        await writer.write(decision(0))
        await writer.stop()
    logged = caplog.text + "".join(str(vars(record)) for record in caplog.records)  # the messages and every field
    assert "audit checkpoint" in logged and key.signer.key_id in logged  # the checkpoint was logged, with its key id
    assert secret not in logged and "PRIVATE KEY" not in logged


def test_a_bad_key_file_is_named_and_its_contents_are_not_shown(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LW1hdGVyaWFs\n-----END PRIVATE KEY-----\n")
    with pytest.raises(CheckpointKeyError) as raised:
        CheckpointSigner.from_file(bad)
    assert str(bad) in str(raised.value) and "c2VjcmV0" not in str(raised.value)
    with pytest.raises(CheckpointKeyError, match="cannot read"):
        CheckpointSigner.from_file(tmp_path / "missing.pem")


def test_a_witness_needs_the_signing_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="needs audit_checkpoint_signing_key_file"):
        Settings(audit_checkpoint_witness=str(tmp_path / "w.jsonl"))


# --- GET /v1/audit/checkpoints ----------------------------------------------------------------------------------


async def test_the_checkpoints_route_lists_signed_checkpoints_with_the_public_key(
    make_client: MakeClient, key: KeyPair, tmp_path: Path
) -> None:
    witness = tmp_path / "witness.jsonl"
    settings = {
        "api_keys": KEY_ENTRIES,
        "audit_checkpoint_signing_key_file": key.private,
        "audit_checkpoint_witness": str(witness),
        "audit_checkpoint_every_rows": 1,
    }
    auditor = {"Authorization": f"Bearer {KEYS['auditor']}"}
    async with make_client(**settings) as client:
        for n in range(2):
            made = await client.post(
                "/v1/recommendations", json=WORKED_EXAMPLE, headers={"Authorization": f"Bearer {KEYS['decider']}"}
            )
            assert made.status_code == 201, made.text

            async def listed(count: int = n + 1) -> bool:
                page = await client.get("/v1/audit/checkpoints", headers=auditor)
                return len(page.json()["items"]) == count

            await eventually(listed)
        assert (await client.get("/v1/audit/checkpoints")).status_code == 401
        denied = await client.get("/v1/audit/checkpoints", headers={"Authorization": f"Bearer {KEYS['decider']}"})
        assert denied.status_code == 403
        first = await client.get("/v1/audit/checkpoints", params={"limit": 1}, headers=auditor)
        assert first.status_code == 200 and "no-store" in first.headers["cache-control"]
        body = first.json()
        assert [item["seq"] for item in body["items"]] == [1] and body["next_after"] == 1
        second = (await client.get("/v1/audit/checkpoints", params={"after": 1}, headers=auditor)).json()
        assert [item["seq"] for item in second["items"]] == [2] and second["next_after"] is None
    [public] = body["public_keys"]
    assert public["key_id"] == key.signer.key_id
    verifier = serialization.load_pem_public_key(public["public_key_pem"].encode())
    assert isinstance(verifier, Ed25519PublicKey)
    for item in (body["items"][0], second["items"][0]):
        verifier.verify(base64.b64decode(item["signature"]), signed_bytes(item["seq"], item["row_hash"]))
    published = lines_of(witness)
    served = [body["items"][0], second["items"][0]]
    assert [(c["seq"], c["row_hash"], c["signature"], c["heads"]) for c in published[:2]] == [
        (c["seq"], c["row_hash"], c["signature"], c["heads"]) for c in served
    ]
