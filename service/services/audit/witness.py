"""The witness: where signed checkpoints are copied to, out of the service's reach, and read back by the verifier.

A checkpoint's external copy is one JSON object (``CheckpointCopy``, fields in this order, compact, UTF-8):

    {"format": "advisor-audit-checkpoint/1", "seq": 7, "time": "2026-12-03T16:00:00.000000Z",
     "heads": [[chain, seq, row_hash], ...], "prev_hash": "<64 hex>", "row_hash": "<64 hex>",
     "key_id": "<64 hex>", "signature": "<base64>"}

``heads`` is the stored heads text parsed (its compact JSON is that text again, so ``row_hash`` can be recomputed);
the copy of a checkpoint is the same bytes whoever writes it, so two workers publishing the same one at once make
identical copies, which the verifier accepts.

Two destinations (``ADVISOR_AUDIT_CHECKPOINT_WITNESS``):

* ``s3://bucket/prefix``: one object per checkpoint, ``prefix/<seq, 12 digits>.json``, put with Object Lock
  retention mode COMPLIANCE until ``retain_days`` from now: nobody, the bucket's owner included, can delete or
  overwrite that version before then. The bucket must have Object Lock enabled (which also turns versioning on);
  the witness checks this before its first put and refuses otherwise. A second put of the same key makes another
  version; the verifier reads every version.
* a file path: one line per checkpoint, appended (``O_APPEND``, one ``write`` a line, then ``fsync``). The service
  must not be able to rewrite it: put it on storage that only appends (``chattr +a`` as root, a WORM mount, or a
  file that a separate host's log shipper owns), not just a file the service's user owns.

The service never reads a copy back to trust it; it only asks where the copies end (``last_seq``) so that every
checkpoint not yet published is published, in order (``checkpoints.py``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import msgspec

from service.db.chain import canonical_timestamp
from service.db.rows import StoredCheckpoint

__all__ = [
    "CheckpointCopy",
    "FileWitness",
    "S3Witness",
    "Witness",
    "WitnessError",
    "as_copy",
    "open_witness",
    "to_copy",
]

_S3 = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?$")
_TAIL_CHUNK = 65_536


class WitnessError(RuntimeError):
    """The witness cannot be written or read (the message says why)."""


class CheckpointCopy(msgspec.Struct, frozen=True):
    """One checkpoint as published: the stored checkpoint with its heads parsed and its time as text."""

    format: str
    seq: int
    time: str
    heads: list[tuple[int, int, str]]
    prev_hash: str
    row_hash: str
    key_id: str | None
    signature: str | None


_encode = msgspec.json.Encoder().encode


def to_copy(checkpoint: StoredCheckpoint) -> bytes:
    """The external copy of ``checkpoint``, as bytes (no newline)."""
    return _encode(as_copy(checkpoint))


def as_copy(checkpoint: StoredCheckpoint) -> CheckpointCopy:
    """``checkpoint`` as published (and as ``GET /v1/audit/checkpoints`` lists it)."""
    from service.services.audit.checkpoints import CHECKPOINT_FORMAT, decode_heads

    heads = [(h.chain, h.seq, h.row_hash) for h in decode_heads(checkpoint.heads)]
    return CheckpointCopy(
        format=CHECKPOINT_FORMAT,
        seq=checkpoint.seq,
        time=canonical_timestamp(checkpoint.created_at),
        heads=heads,
        prev_hash=checkpoint.prev_hash,
        row_hash=checkpoint.row_hash,
        key_id=checkpoint.key_id,
        signature=checkpoint.signature,
    )


class Witness(Protocol):
    """An append-only destination of checkpoint copies. Blocking calls: run them in a thread."""

    def last_seq(self) -> int:
        """The highest seq published (0: none)."""

    def publish(self, seq: int, copy: bytes) -> None: ...

    def read_all(self) -> list[tuple[str, bytes]]:
        """Every copy published, with where it was found (for messages), in no particular order."""

    def describe(self) -> str: ...


@dataclass
class FileWitness:
    """Copies as JSON lines appended to ``path``."""

    path: Path

    def describe(self) -> str:
        return str(self.path)

    def publish(self, seq: int, copy: bytes) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                size = os.fstat(fd).st_size
                # A line cut short (a crash during a write) must not swallow this one: start on a line of its own.
                lead = b"\n" if size and os.pread(fd, 1, size - 1) != b"\n" else b""
                os.write(fd, lead + copy + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise WitnessError(f"cannot append checkpoint {seq} to {self.path}: {exc.strerror or exc}") from exc

    def last_seq(self) -> int:
        """The seq of the last complete line, read from the end (not the whole file)."""
        try:
            with self.path.open("rb") as file:
                end = start = file.seek(0, os.SEEK_END)
                while start > 0:
                    start = max(0, start - _TAIL_CHUNK)
                    file.seek(start)
                    tail = file.read(end - start)
                    complete = tail[: max(tail.rfind(b"\n"), 0)]  # a line is complete once its newline is written
                    begin = complete.rfind(b"\n")
                    if complete and (begin >= 0 or start == 0):
                        return _seq_of(complete[begin + 1 :], str(self.path))
                return 0
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise WitnessError(f"cannot read {self.path}: {exc.strerror or exc}") from exc

    def read_all(self) -> list[tuple[str, bytes]]:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise WitnessError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        return [(f"{self.path}:{n}", line) for n, line in enumerate(data.split(b"\n"), 1) if line.strip()]


def _seq_of(line: bytes, where: str) -> int:
    try:
        seq = msgspec.json.decode(line, type=dict[str, Any]).get("seq")
    except msgspec.DecodeError as exc:
        raise WitnessError(f"the last line of {where} is not a checkpoint copy: {exc}") from exc
    if type(seq) is not int:
        raise WitnessError(f"the last line of {where} has no integer seq")
    return seq


class S3Witness:
    """Copies as objects ``<prefix>/<seq:012d>.json`` in an Object Lock bucket, each locked in COMPLIANCE mode."""

    def __init__(self, bucket: str, prefix: str, *, retain_days: int, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.retain_days = retain_days
        self._client = client
        self._checked = False
        self._last_key: str | None = None  # the highest key seen so far: listing resumes after it

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # only a service publishing to S3 loads it
            from botocore.config import Config

            # Bounded waits: a checkpoint is published again later, a hung request only delays that.
            self._client = boto3.client(
                "s3", config=Config(connect_timeout=5, read_timeout=15, retries={"mode": "standard"})
            )
        return self._client

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, seq: int) -> str:
        return f"{self.prefix}/{seq:012d}.json" if self.prefix else f"{seq:012d}.json"

    def check_object_lock(self) -> None:
        """Refuse a bucket without Object Lock: a copy there could be deleted or overwritten."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            found = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ObjectLockConfigurationNotFoundError":
                found = {}
            else:
                raise WitnessError(f"cannot read the Object Lock configuration of {self.describe()}: {exc}") from exc
        except BotoCoreError as exc:
            raise WitnessError(f"cannot reach {self.describe()}: {exc}") from exc
        if found.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise WitnessError(
                f"refusing to publish checkpoints to {self.describe()}: the bucket does not have Object Lock enabled, "
                "so the copies could be deleted or overwritten (create it with --object-lock-enabled-for-bucket)"
            )
        self._checked = True

    def publish(self, seq: int, copy: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        if not self._checked:
            self.check_object_lock()
        retain_until = datetime.now(UTC) + timedelta(days=self.retain_days)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.key(seq),
                Body=copy,
                ContentType="application/json",
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=retain_until,
                ChecksumAlgorithm="SHA256",  # Object Lock puts need an integrity checksum
            )
        except (BotoCoreError, ClientError) as exc:
            raise WitnessError(f"cannot put checkpoint {seq} to {self.describe()}: {exc}") from exc
        self._last_key = max(self._last_key or "", self.key(seq))

    def last_seq(self) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        last = self._last_key
        listing: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.key(0)[: -len("000000000000.json")]}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                **listing, **({"StartAfter": last} if last else {})
            ):
                for item in page.get("Contents", ()):
                    if item["Key"].endswith(".json"):
                        last = max(last or "", item["Key"])
        except (BotoCoreError, ClientError) as exc:
            raise WitnessError(f"cannot list {self.describe()}: {exc}") from exc
        self._last_key = last
        if last is None:
            return 0
        try:
            return int(last.rsplit("/", 1)[-1].removesuffix(".json"))
        except ValueError as exc:
            raise WitnessError(f"{last} in {self.describe()} is not named <seq>.json") from exc

    def read_all(self) -> list[tuple[str, bytes]]:
        """Every version of every object under the prefix: an overwrite makes a version, it never hides one."""
        from botocore.exceptions import BotoCoreError, ClientError

        found: list[tuple[str, bytes]] = []
        prefix = self.key(0)[: -len("000000000000.json")]
        try:
            for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
                for version in page.get("Versions", ()):
                    body = self.client.get_object(
                        Bucket=self.bucket, Key=version["Key"], VersionId=version["VersionId"]
                    )["Body"].read()
                    found.append((f"s3://{self.bucket}/{version['Key']}?versionId={version['VersionId']}", body))
        except (BotoCoreError, ClientError) as exc:
            raise WitnessError(f"cannot read {self.describe()}: {exc}") from exc
        return found


def open_witness(destination: str, *, retain_days: int = 365, client: Any = None) -> Witness:
    """The witness ``destination`` names: ``s3://bucket/prefix`` or a file path."""
    if destination.startswith("s3://"):
        match = _S3.match(destination)
        if match is None:
            raise ValueError(f"{destination!r} is not s3://bucket/prefix")
        return S3Witness(match[1], match[2] or "", retain_days=retain_days, client=client)
    return FileWitness(Path(destination))
