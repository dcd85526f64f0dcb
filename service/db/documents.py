"""Stored documents: a decision's profile and answer, kept once per month by content and compressed.

A decision row names its profile and its recommendation by the SHA-256 of their UTF-8 bytes
(``profile_sha256``, ``recommendation_sha256``); the texts live in ``audit_documents`` under
``(month, sha256)``, where ``month`` is the ``YYYYMM`` (UTC) of the decisions that use them. So a profile
asked a thousand times in a month, and its answer, are stored once that month, and a month's documents go with
its decisions when the month is archived (``service.db.partitions``): no document is shared across months, so
dropping a month never leaves a decision without its texts.

Bodies are stored as:

* ``CODEC_TEXT`` (0): the UTF-8 bytes as they are (what migration 0009 wrote for the rows before it; Postgres
  compresses them with lz4 in TOAST);
* ``CODEC_ZSTD`` (1): a Zstandard frame, compressed with the dictionary ``dictionary`` names (a row of
  ``audit_dictionaries``, trained on answers this service gave) or without one when it is NULL. Answers are
  structured JSON with the same keys and much the same prose every time, which is what a trained dictionary
  captures: bench/README.md ("audit_bench.py") has what each saving measured.

Decoding checks the SHA-256 of what it decoded against the name it was stored under, so a changed body is
reported, never returned.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import zstandard

__all__ = [
    "CODEC_TEXT",
    "CODEC_ZSTD",
    "Dictionary",
    "DocumentDecodeError",
    "DocumentEncoder",
    "StoredDocument",
    "TextCache",
    "WrittenDocuments",
    "decode_document",
    "digest",
    "has_decompressor",
    "month_of",
    "train_dictionary",
]

CODEC_TEXT = 0
CODEC_ZSTD = 1
# Level 9 with the dictionary: smaller answers than the default level 3 for more CPU, spent off the event loop
# (DocumentEncoder.prepare); bench/README.md ("audit_bench.py") has both.
ZSTD_LEVEL = 9
DICTIONARY_BYTES = 262_144  # 256 KiB, above zstd's default 110 KiB: answers this size and alike compress smaller


class DocumentDecodeError(ValueError):
    """A stored document that does not decode to the text its SHA-256 names."""


def digest(text: str) -> bytes:
    """The name a text is stored under: SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def month_of(created_at: datetime) -> int:
    """``YYYYMM`` of a timestamp, in UTC: the month partition a decision and its documents are stored in."""
    utc = created_at.astimezone(UTC)
    return utc.year * 100 + utc.month


@dataclass(frozen=True, slots=True)
class Dictionary:
    """A zstd dictionary as stored in ``audit_dictionaries``: its number in this database and its bytes."""

    id: int
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """One row of ``audit_documents``."""

    month: int
    sha256: bytes
    codec: int
    dictionary: int | None
    body: bytes

    def as_values(self) -> dict[str, object]:
        return {
            "month": self.month,
            "sha256": self.sha256,
            "codec": self.codec,
            "dictionary": self.dictionary,
            "body": self.body,
        }


class DocumentEncoder:
    """Compresses texts for storage, with ``dictionary`` when there is one (zstd, level ``ZSTD_LEVEL``).

    ``prepare`` does the hashing and compressing of a batch ahead, off the event loop (zstd releases the GIL), so
    ``key`` and ``encode`` then only look the results up.
    """

    __slots__ = ("_compressor", "_prepared", "dictionary")

    def __init__(self, dictionary: Dictionary | None = None) -> None:
        self.dictionary = dictionary
        data = None if dictionary is None else zstandard.ZstdCompressionDict(dictionary.content)
        # No checksum (the SHA-256 the document is stored under covers it) and no dictionary id in the frame (the
        # row names its dictionary): neither is needed to decode.
        self._compressor = zstandard.ZstdCompressor(
            level=ZSTD_LEVEL, dict_data=data, write_checksum=False, write_dict_id=False, write_content_size=True
        )
        # By (id(text), month): the text itself (so a reused id cannot match), its name, its document if made.
        self._prepared: dict[tuple[int, int], tuple[str, bytes, StoredDocument | None]] = {}

    def prepare(self, texts: list[tuple[str, int]], written: WrittenDocuments | None) -> None:
        """Hash ``(text, month)`` pairs and compress those ``written`` does not know; safe to run in a thread."""
        for text, month in texts:
            if (id(text), month) in self._prepared:
                continue
            name = digest(text)
            stored = written is not None and written.knows((month, name))
            document = None if stored else self._compress(text, month, name)
            self._prepared[(id(text), month)] = (text, name, document)

    def forget_prepared(self) -> None:
        self._prepared.clear()

    def key(self, text: str, month: int) -> tuple[int, bytes]:
        found = self._prepared.get((id(text), month))
        return (month, found[1] if found is not None and found[0] is text else digest(text))

    def encode(self, text: str, *, month: int, sha256: bytes | None = None) -> StoredDocument:
        found = self._prepared.get((id(text), month))
        if found is not None and found[0] is text and found[2] is not None:
            return found[2]
        return self._compress(text, month, sha256 if sha256 is not None else digest(text))

    def _compress(self, text: str, month: int, name: bytes) -> StoredDocument:
        body = self._compressor.compress(text.encode("utf-8", "surrogatepass"))
        dictionary = None if self.dictionary is None else self.dictionary.id
        return StoredDocument(month=month, sha256=name, codec=CODEC_ZSTD, dictionary=dictionary, body=body)


# Decompressors by the SHA-256 of their dictionary's bytes: dictionary numbers are per database, their bytes are not.
_decompressors: OrderedDict[str | None, zstandard.ZstdDecompressor] = OrderedDict()
_KEPT_DECOMPRESSORS = 16


def _decompressor(dictionary: bytes | None, dictionary_sha256: str | None) -> zstandard.ZstdDecompressor:
    key = dictionary_sha256 if dictionary_sha256 is not None else _sha256_hex(dictionary)
    found = _decompressors.get(key)
    if found is None:
        if key is not None and dictionary is None:
            raise DocumentDecodeError(f"dictionary {key} is not loaded")
        data = None if dictionary is None else zstandard.ZstdCompressionDict(dictionary)
        found = zstandard.ZstdDecompressor(dict_data=data)
        _decompressors[key] = found
        while len(_decompressors) > _KEPT_DECOMPRESSORS:
            _decompressors.popitem(last=False)
    return found


def _sha256_hex(content: bytes | None) -> str | None:
    return None if content is None else hashlib.sha256(content).hexdigest()


def has_decompressor(dictionary_sha256: str) -> bool:
    """Whether the dictionary with this SHA-256 is loaded (``decode_document`` then needs only its SHA-256)."""
    return dictionary_sha256 in _decompressors


def decode_document(
    sha256: bytes, codec: int, body: bytes, dictionary: bytes | None, dictionary_sha256: str | None = None
) -> str:
    """The text of a stored document; ``DocumentDecodeError`` if it does not decode to what ``sha256`` names.

    ``dictionary`` is the content of the dictionary the document names (None when it names none), or
    ``dictionary_sha256`` names one already loaded (``has_decompressor``): hashing a 256 KiB dictionary for every
    document would cost more than decoding it.
    """
    if codec == CODEC_TEXT:
        raw = body
    elif codec == CODEC_ZSTD:
        try:
            raw = _decompressor(dictionary, dictionary_sha256).decompress(body)
        except zstandard.ZstdError as exc:
            raise DocumentDecodeError(f"document {sha256.hex()} does not decompress: {exc}") from exc
    else:
        raise DocumentDecodeError(f"document {sha256.hex()} has unknown codec {codec}")
    if hashlib.sha256(raw).digest() != sha256:
        raise DocumentDecodeError(f"document {sha256.hex()} was changed: its bytes no longer hash to its name")
    return raw.decode("utf-8", "surrogatepass")


def train_dictionary(samples: list[str]) -> bytes:
    """A zstd dictionary of ``DICTIONARY_BYTES`` trained on ``samples`` (answers as stored)."""
    return bytes(
        zstandard.train_dictionary(DICTIONARY_BYTES, [s.encode("utf-8", "surrogatepass") for s in samples]).as_bytes()
    )


class WrittenDocuments:
    """The ``(month, sha256)`` of documents a writer knows are committed, newest kept (at most ``size``): their
    bodies need not be compressed and sent again. Only add what a committed transaction stored."""

    __slots__ = ("_keys", "_staged", "size")

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._keys: OrderedDict[tuple[int, bytes], None] = OrderedDict()
        self._staged: list[tuple[int, bytes]] = []

    def stage(self, keys: list[tuple[int, bytes]]) -> None:
        """Documents sent in the transaction under way: known once it commits (``commit``), forgotten if not."""
        self._staged.extend(keys)

    def commit(self) -> None:
        self.add_all(self._staged)
        self._staged = []

    def rollback(self) -> None:
        self._staged = []

    def knows(self, key: tuple[int, bytes]) -> bool:
        """Like ``in``, without marking the key as recently used (safe to call from another thread)."""
        return key in self._keys

    def __contains__(self, key: tuple[int, bytes]) -> bool:
        if key in self._keys:
            self._keys.move_to_end(key)
            return True
        return False

    def add_all(self, keys: list[tuple[int, bytes]]) -> None:
        for key in keys:
            self._keys[key] = None
            self._keys.move_to_end(key)
        while len(self._keys) > self.size:
            self._keys.popitem(last=False)

    def clear(self) -> None:
        self._keys.clear()
        self._staged = []


class TextCache:
    """Decoded texts by ``(month, sha256)``, the most recently used ``size`` kept: a history walk decodes a
    profile or answer shared by many decisions once."""

    __slots__ = ("_texts", "size")

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._texts: OrderedDict[tuple[int, bytes], str] = OrderedDict()

    def get(self, key: tuple[int, bytes]) -> str | None:
        found = self._texts.get(key)
        if found is not None:
            self._texts.move_to_end(key)
        return found

    def put(self, key: tuple[int, bytes], value: str) -> None:
        self._texts[key] = value
        self._texts.move_to_end(key)
        while len(self._texts) > self.size:
            self._texts.popitem(last=False)
