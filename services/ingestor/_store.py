"""Reads: Get, ScanPrefix and the typed reads, over a StoreDb, as plain synchronous calls.

Every result carries the LSN it was served at. ``applied_lsn`` is sampled *before* RocksDB is
read, and the apply thread publishes it only after the batch is written, so every record up to
that LSN is visible to the read (later ones may be too). The point reads (Get, GetAssertion,
BatchGet) answer encoded responses assembled from the stored bytes (``_wire.py``): a stored
Record is served as it is, never parsed and serialized again.
"""

from __future__ import annotations

from collections.abc import Sequence

from stemedb.ingestor._db import ScanResult, StoreDb
from stemedb.ingestor._errors import InvalidRequest, StoreInconsistent
from stemedb.ingestor._keys import (
    ASSERTION_PREFIX,
    SIGNATURES_INLINE_MAX,
    VOTE_PREFIX,
    is_record_key,
    record_key,
    signer_prefix,
    subject_index_prefix,
    vote_index_prefix,
)
from stemedb.ingestor._paging import decode_page_token, encode_page_token, page_size_of
from stemedb.ingestor._state import ApplyState
from stemedb.ingestor._wire import (
    field_bool,
    field_message,
    field_varint,
    get_response_bytes,
    sole_field,
)
from stemedb.v1 import records_pb2, store_pb2

__all__ = ["BATCH_GET_KEYS_MAX", "KEY_BYTES_MAX", "PAGE_BYTES_MAX_DEFAULT", "Store"]

KEY_BYTES_MAX = 4096  # longer than any key the scheme produces
BATCH_GET_KEYS_MAX = 1000  # keys of one BatchGet
PAGE_BYTES_MAX_DEFAULT = 3 * 1024 * 1024  # keys and values of one page, before the last entry
_FETCH_CHUNK_RECORDS = 32  # records fetched at a time by the typed list reads
_HASH_BYTES = 32
# The smallest encoding of one stored co-signature (a 32-byte key and a 64-byte signature, as
# validated): an assertion shorter than SIGNATURES_INLINE_MAX of them cannot hold that many.
_SIGNATURE_ENTRY_BYTES_MIN = 2 + (2 + 32) + (2 + 64)
_RECORD_ASSERTION_FIELD = records_pb2.Record.DESCRIPTOR.fields_by_name["assertion"].number
_SUBJECT_BYTES_MAX = 1024
_SCOPE_SCAN = b"scan"
_SCOPE_SUBJECT = b"subject"
_SCOPE_VOTES = b"votes"
_SCOPE_SIGNERS = b"signers"
# A ListSigners token whose start key is <HS: prefix> + _INLINE_MARK + decimal index resumes in
# the signers held in the H: record; any other start key is an HS: key (hex: never '#').
_INLINE_MARK = b"#"


def _hash_field(value: bytes, name: str) -> bytes:
    if len(value) != _HASH_BYTES:
        raise InvalidRequest(f"{name} must be {_HASH_BYTES} bytes, got {len(value)}")
    return value


def _check_key(key: bytes, name: str) -> None:
    if not key:
        raise InvalidRequest(f"{name} is required")
    if len(key) > KEY_BYTES_MAX:
        raise InvalidRequest(f"{name} is longer than {KEY_BYTES_MAX} bytes")


def _inline_index(suffix: bytes) -> int:
    if not suffix:
        return 0
    digits = suffix[len(_INLINE_MARK) :]
    if not digits.isdigit() or len(digits) > 9:
        raise InvalidRequest("page_token is malformed")
    return int(digits)


class Store:
    """Reads; a page (ScanPrefix and the typed list reads) holds at most ``page_bytes_max``
    bytes of stored keys and values, plus the one entry that crosses the bound when it is the
    page's first (a record is bounded by the input limits), so paging always progresses."""

    def __init__(
        self, db: StoreDb, state: ApplyState, page_bytes_max: int = PAGE_BYTES_MAX_DEFAULT
    ) -> None:
        self._db = db
        self._state = state
        self._page_bytes_max = page_bytes_max

    @property
    def applied_lsn(self) -> int:
        return self._state.applied_lsn

    def get(self, key: bytes) -> store_pb2.GetResponse:
        return store_pb2.GetResponse.FromString(self.get_bytes(key))

    def batch_get(self, keys: Sequence[bytes]) -> store_pb2.BatchGetResponse:
        return store_pb2.BatchGetResponse.FromString(self.batch_get_bytes(keys))

    def get_assertion(self, content_hash: bytes) -> store_pb2.GetAssertionResponse:
        return store_pb2.GetAssertionResponse.FromString(self.get_assertion_bytes(content_hash))

    def get_bytes(self, key: bytes) -> bytes:
        """The encoded GetResponse of ``key`` (what the servicer sends; ``get`` decodes it)."""
        _check_key(key, "key")
        applied = self._state.applied_lsn
        return get_response_bytes(self._db.cached_get(key), is_record_key(key), applied)

    def batch_get_bytes(self, keys: Sequence[bytes]) -> bytes:
        """The encoded BatchGetResponse: one GetResponse per key, in order, at one LSN."""
        if not keys:
            raise InvalidRequest("keys: at least one key is required")
        if len(keys) > BATCH_GET_KEYS_MAX:
            raise InvalidRequest(f"keys: at most {BATCH_GET_KEYS_MAX} keys, got {len(keys)}")
        for i, key in enumerate(keys):
            _check_key(key, f"keys[{i}]")
        applied = self._state.applied_lsn
        values = self._db.cached_multi_get(keys)
        total = sum(len(v) for v in values if v is not None)
        if total > self._page_bytes_max:
            raise InvalidRequest(
                f"keys: the {len(keys)} values total {total} bytes, above the "
                f"--read-page-bytes-max of {self._page_bytes_max}; ask for fewer keys"
            )
        parts = [
            field_message(1, get_response_bytes(value, is_record_key(key), applied))
            for key, value in zip(keys, values, strict=True)
        ]
        parts.append(field_varint(2, applied))
        return b"".join(parts)

    def scan_prefix(
        self, prefix: bytes, page_size: int, page_token: str
    ) -> store_pb2.ScanPrefixResponse:
        if len(prefix) > KEY_BYTES_MAX:
            raise InvalidRequest(f"prefix is longer than {KEY_BYTES_MAX} bytes")
        limit = page_size_of(page_size)
        start = decode_page_token(page_token, _SCOPE_SCAN, prefix)
        applied = self._state.applied_lsn
        page = self._db.scan(prefix, start, limit, self._page_bytes_max)
        response = store_pb2.ScanPrefixResponse(applied_lsn=applied)
        response.entries.extend(store_pb2.Entry(key=k, value=v) for k, v in page.entries)
        if page.next_key is not None:
            response.next_page_token = encode_page_token(_SCOPE_SCAN, prefix, page.next_key)
        return response

    def get_assertion_bytes(self, content_hash: bytes) -> bytes:
        """The encoded GetAssertionResponse: the stored Record's assertion bytes as they are."""
        _hash_field(content_hash, "hash")
        applied = self._state.applied_lsn
        value = self._db.cached_get(record_key(ASSERTION_PREFIX, content_hash))
        if value is None:
            return field_varint(3, applied)
        assertion = sole_field(value, _RECORD_ASSERTION_FIELD)
        if assertion is None:  # not the stored form: decode it
            assertion = records_pb2.Record.FromString(value).assertion.SerializeToString()
        more = False
        if len(assertion) >= SIGNATURES_INLINE_MAX * _SIGNATURE_ENTRY_BYTES_MIN:
            signatures = records_pb2.Assertion.FromString(assertion).signatures
            if len(signatures) >= SIGNATURES_INLINE_MAX:
                prefix = signer_prefix(content_hash)
                more = bool(self._db.scan(prefix, prefix, 1).entries)
        return b"".join(
            (field_bool(1, True), field_message(2, assertion), field_varint(3, applied),
             field_bool(4, more))
        )  # fmt: skip

    def list_signers(
        self, assertion_hash: bytes, page_size: int, page_token: str
    ) -> store_pb2.ListSignersResponse:
        """The H: record's signers (log order), then the HS: ones (key order), paged."""
        _hash_field(assertion_hash, "assertion_hash")
        prefix = signer_prefix(assertion_hash)
        limit = page_size_of(page_size)
        start = decode_page_token(page_token, _SCOPE_SIGNERS, prefix)
        applied = self._state.applied_lsn
        response = store_pb2.ListSignersResponse(applied_lsn=applied)
        suffix = start[len(prefix) :]
        if not suffix or suffix.startswith(_INLINE_MARK):
            index = _inline_index(suffix)
            value = self._db.get(record_key(ASSERTION_PREFIX, assertion_hash))
            if value is None:
                return response
            inline = records_pb2.Record.FromString(value).assertion.signatures
            response.signatures.extend(inline[index : index + limit])
            if index + limit < len(inline):
                resume = prefix + _INLINE_MARK + str(index + limit).encode()
                response.next_page_token = encode_page_token(_SCOPE_SIGNERS, prefix, resume)
                return response
            start = prefix
        room = limit - len(response.signatures)
        # With no room left, one step still tells whether HS: keys follow, so a page is empty
        # only when the whole listing is.
        page = self._db.scan(prefix, start, max(room, 1))
        next_key: bytes | None
        if room == 0:
            next_key = page.entries[0][0] if page.entries else None
        else:
            response.signatures.extend(
                records_pb2.SignatureEntry(
                    public_key=bytes.fromhex(key[len(prefix) :].decode("ascii")), signature=sig
                )
                for key, sig in page.entries
            )
            next_key = page.next_key
        if next_key is not None:
            response.next_page_token = encode_page_token(_SCOPE_SIGNERS, prefix, next_key)
        return response

    def list_assertions_by_subject(
        self, subject: str, page_size: int, page_token: str
    ) -> store_pb2.ListAssertionsBySubjectResponse:
        raw = subject.encode("utf-8")
        if not raw:
            raise InvalidRequest("subject is required")
        if b"\x00" in raw or len(raw) > _SUBJECT_BYTES_MAX:
            raise InvalidRequest(f"subject must be at most {_SUBJECT_BYTES_MAX} bytes, no NUL")
        prefix = subject_index_prefix(raw)
        limit = page_size_of(page_size)
        start = decode_page_token(page_token, _SCOPE_SUBJECT, prefix)
        applied = self._state.applied_lsn
        records, next_key = self._records_page(
            ASSERTION_PREFIX, self._db.scan(prefix, start, limit)
        )
        response = store_pb2.ListAssertionsBySubjectResponse(applied_lsn=applied)
        for content_hash, record in records:
            response.assertions.add(hash=content_hash, assertion=record.assertion)
        if next_key is not None:
            response.next_page_token = encode_page_token(_SCOPE_SUBJECT, prefix, next_key)
        return response

    def list_votes(
        self, assertion_hash: bytes, page_size: int, page_token: str
    ) -> store_pb2.ListVotesResponse:
        _hash_field(assertion_hash, "assertion_hash")
        prefix = vote_index_prefix(assertion_hash)
        limit = page_size_of(page_size)
        start = decode_page_token(page_token, _SCOPE_VOTES, prefix)
        applied = self._state.applied_lsn
        records, next_key = self._records_page(VOTE_PREFIX, self._db.scan(prefix, start, limit))
        response = store_pb2.ListVotesResponse(applied_lsn=applied)
        for content_hash, record in records:
            response.votes.add(hash=content_hash, vote=record.vote)
        if next_key is not None:
            response.next_page_token = encode_page_token(_SCOPE_VOTES, prefix, next_key)
        return response

    def _records_page(
        self, prefix: bytes, page: ScanResult
    ) -> tuple[list[tuple[bytes, records_pb2.Record]], bytes | None]:
        """The records an index page names, fetched a chunk at a time until the byte budget is
        spent; returns them and the index key where the next page starts (or None)."""
        out: list[tuple[bytes, records_pb2.Record]] = []
        used = 0
        entries = page.entries
        for first in range(0, len(entries), _FETCH_CHUNK_RECORDS):
            chunk = entries[first : first + _FETCH_CHUNK_RECORDS]
            keys = [record_key(prefix, content_hash) for _index_key, content_hash in chunk]
            values = self._db.multi_get(keys)
            for (index_key, content_hash), key, value in zip(chunk, keys, values, strict=True):
                if value is None:
                    # Index entries and records are written in the same batch.
                    raise StoreInconsistent(f"index names {key!r}, which is missing")
                used += len(value)
                if out and used > self._page_bytes_max:
                    return out, index_key
                out.append((content_hash, records_pb2.Record.FromString(value)))
        return out, page.next_key
