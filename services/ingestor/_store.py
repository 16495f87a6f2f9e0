"""Reads: Get, ScanPrefix and the typed reads, over a StoreDb, as plain synchronous calls.

Every result carries the LSN it was served at. ``applied_lsn`` is sampled *before* RocksDB is
read, and the apply thread publishes it only after the batch is written, so every record up to
that LSN is visible to the read (later ones may be too).
"""

from __future__ import annotations

from stemedb.ingestor._db import StoreDb
from stemedb.ingestor._errors import InvalidRequest, StoreInconsistent
from stemedb.ingestor._keys import (
    ASSERTION_PREFIX,
    VOTE_PREFIX,
    is_record_key,
    record_key,
    subject_index_prefix,
    vote_index_prefix,
)
from stemedb.ingestor._paging import decode_page_token, encode_page_token, page_size_of
from stemedb.ingestor._state import ApplyState
from stemedb.v1 import records_pb2, store_pb2

__all__ = ["KEY_BYTES_MAX", "Store"]

KEY_BYTES_MAX = 4096  # longer than any key the scheme produces
_HASH_BYTES = 32
_SUBJECT_BYTES_MAX = 1024
_SCOPE_SCAN = b"scan"
_SCOPE_SUBJECT = b"subject"
_SCOPE_VOTES = b"votes"


def _hash_field(value: bytes, name: str) -> bytes:
    if len(value) != _HASH_BYTES:
        raise InvalidRequest(f"{name} must be {_HASH_BYTES} bytes, got {len(value)}")
    return value


class Store:
    def __init__(self, db: StoreDb, state: ApplyState) -> None:
        self._db = db
        self._state = state

    @property
    def applied_lsn(self) -> int:
        return self._state.applied_lsn

    def get(self, key: bytes) -> store_pb2.GetResponse:
        if not key:
            raise InvalidRequest("key is required")
        if len(key) > KEY_BYTES_MAX:
            raise InvalidRequest(f"key is longer than {KEY_BYTES_MAX} bytes")
        applied = self._state.applied_lsn
        value = self._db.get(key)
        if value is None:
            return store_pb2.GetResponse(found=False, applied_lsn=applied)
        response = store_pb2.GetResponse(found=True, value=value, applied_lsn=applied)
        if is_record_key(key):
            response.record.ParseFromString(value)
        return response

    def scan_prefix(
        self, prefix: bytes, page_size: int, page_token: str
    ) -> store_pb2.ScanPrefixResponse:
        if len(prefix) > KEY_BYTES_MAX:
            raise InvalidRequest(f"prefix is longer than {KEY_BYTES_MAX} bytes")
        limit = page_size_of(page_size)
        start = decode_page_token(page_token, _SCOPE_SCAN, prefix)
        applied = self._state.applied_lsn
        page = self._db.scan(prefix, start, limit)
        response = store_pb2.ScanPrefixResponse(applied_lsn=applied)
        response.entries.extend(store_pb2.Entry(key=k, value=v) for k, v in page.entries)
        if page.next_key is not None:
            response.next_page_token = encode_page_token(_SCOPE_SCAN, prefix, page.next_key)
        return response

    def get_assertion(self, content_hash: bytes) -> store_pb2.GetAssertionResponse:
        _hash_field(content_hash, "hash")
        applied = self._state.applied_lsn
        value = self._db.get(record_key(ASSERTION_PREFIX, content_hash))
        response = store_pb2.GetAssertionResponse(applied_lsn=applied)
        if value is not None:
            response.found = True
            response.assertion.CopyFrom(records_pb2.Record.FromString(value).assertion)
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
        page = self._db.scan(prefix, start, limit)
        hashes = [value for _key, value in page.entries]
        records = self._records(ASSERTION_PREFIX, hashes)
        response = store_pb2.ListAssertionsBySubjectResponse(applied_lsn=applied)
        for content_hash, record in zip(hashes, records, strict=True):
            response.assertions.add(hash=content_hash, assertion=record.assertion)
        if page.next_key is not None:
            response.next_page_token = encode_page_token(_SCOPE_SUBJECT, prefix, page.next_key)
        return response

    def list_votes(
        self, assertion_hash: bytes, page_size: int, page_token: str
    ) -> store_pb2.ListVotesResponse:
        _hash_field(assertion_hash, "assertion_hash")
        prefix = vote_index_prefix(assertion_hash)
        limit = page_size_of(page_size)
        start = decode_page_token(page_token, _SCOPE_VOTES, prefix)
        applied = self._state.applied_lsn
        page = self._db.scan(prefix, start, limit)
        hashes = [value for _key, value in page.entries]
        records = self._records(VOTE_PREFIX, hashes)
        response = store_pb2.ListVotesResponse(applied_lsn=applied)
        for content_hash, record in zip(hashes, records, strict=True):
            response.votes.add(hash=content_hash, vote=record.vote)
        if page.next_key is not None:
            response.next_page_token = encode_page_token(_SCOPE_VOTES, prefix, page.next_key)
        return response

    def _records(self, prefix: bytes, hashes: list[bytes]) -> list[records_pb2.Record]:
        keys = [record_key(prefix, h) for h in hashes]
        values = self._db.multi_get(keys)
        records = []
        for key, value in zip(keys, values, strict=True):
            if value is None:
                # Index entries and records are written in the same batch.
                raise StoreInconsistent(f"index names {key!r}, which is missing")
            records.append(records_pb2.Record.FromString(value))
        return records
