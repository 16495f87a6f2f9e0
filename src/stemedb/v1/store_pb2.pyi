from stemedb.v1 import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetRequest(_message.Message):
    __slots__ = ("key", "min_lsn")
    KEY_FIELD_NUMBER: _ClassVar[int]
    MIN_LSN_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    min_lsn: int
    def __init__(self, key: _Optional[bytes] = ..., min_lsn: _Optional[int] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("found", "value", "record", "applied_lsn")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    found: bool
    value: bytes
    record: _records_pb2.Record
    applied_lsn: int
    def __init__(self, found: _Optional[bool] = ..., value: _Optional[bytes] = ..., record: _Optional[_Union[_records_pb2.Record, _Mapping]] = ..., applied_lsn: _Optional[int] = ...) -> None: ...

class BatchGetRequest(_message.Message):
    __slots__ = ("keys", "min_lsn")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    MIN_LSN_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    min_lsn: int
    def __init__(self, keys: _Optional[_Iterable[bytes]] = ..., min_lsn: _Optional[int] = ...) -> None: ...

class BatchGetResponse(_message.Message):
    __slots__ = ("results", "applied_lsn")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[GetResponse]
    applied_lsn: int
    def __init__(self, results: _Optional[_Iterable[_Union[GetResponse, _Mapping]]] = ..., applied_lsn: _Optional[int] = ...) -> None: ...

class ScanPrefixRequest(_message.Message):
    __slots__ = ("prefix", "page_size", "page_token", "min_lsn")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MIN_LSN_FIELD_NUMBER: _ClassVar[int]
    prefix: bytes
    page_size: int
    page_token: str
    min_lsn: int
    def __init__(self, prefix: _Optional[bytes] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., min_lsn: _Optional[int] = ...) -> None: ...

class Entry(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ...) -> None: ...

class ScanPrefixResponse(_message.Message):
    __slots__ = ("entries", "next_page_token", "applied_lsn")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[Entry]
    next_page_token: str
    applied_lsn: int
    def __init__(self, entries: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., applied_lsn: _Optional[int] = ...) -> None: ...

class GetAssertionRequest(_message.Message):
    __slots__ = ("hash", "min_lsn")
    HASH_FIELD_NUMBER: _ClassVar[int]
    MIN_LSN_FIELD_NUMBER: _ClassVar[int]
    hash: bytes
    min_lsn: int
    def __init__(self, hash: _Optional[bytes] = ..., min_lsn: _Optional[int] = ...) -> None: ...

class GetAssertionResponse(_message.Message):
    __slots__ = ("found", "assertion", "applied_lsn", "more_signers")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    ASSERTION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    MORE_SIGNERS_FIELD_NUMBER: _ClassVar[int]
    found: bool
    assertion: _records_pb2.Assertion
    applied_lsn: int
    more_signers: bool
    def __init__(self, found: _Optional[bool] = ..., assertion: _Optional[_Union[_records_pb2.Assertion, _Mapping]] = ..., applied_lsn: _Optional[int] = ..., more_signers: _Optional[bool] = ...) -> None: ...

class HashedAssertion(_message.Message):
    __slots__ = ("hash", "assertion")
    HASH_FIELD_NUMBER: _ClassVar[int]
    ASSERTION_FIELD_NUMBER: _ClassVar[int]
    hash: bytes
    assertion: _records_pb2.Assertion
    def __init__(self, hash: _Optional[bytes] = ..., assertion: _Optional[_Union[_records_pb2.Assertion, _Mapping]] = ...) -> None: ...

class ListAssertionsBySubjectRequest(_message.Message):
    __slots__ = ("subject", "page_size", "page_token", "min_lsn")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MIN_LSN_FIELD_NUMBER: _ClassVar[int]
    subject: str
    page_size: int
    page_token: str
    min_lsn: int
    def __init__(self, subject: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., min_lsn: _Optional[int] = ...) -> None: ...

class ListAssertionsBySubjectResponse(_message.Message):
    __slots__ = ("assertions", "next_page_token", "applied_lsn")
    ASSERTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    assertions: _containers.RepeatedCompositeFieldContainer[HashedAssertion]
    next_page_token: str
    applied_lsn: int
    def __init__(self, assertions: _Optional[_Iterable[_Union[HashedAssertion, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., applied_lsn: _Optional[int] = ...) -> None: ...

class HashedVote(_message.Message):
    __slots__ = ("hash", "vote")
    HASH_FIELD_NUMBER: _ClassVar[int]
    VOTE_FIELD_NUMBER: _ClassVar[int]
    hash: bytes
    vote: _records_pb2.Vote
    def __init__(self, hash: _Optional[bytes] = ..., vote: _Optional[_Union[_records_pb2.Vote, _Mapping]] = ...) -> None: ...

class ListVotesRequest(_message.Message):
    __slots__ = ("assertion_hash", "page_size", "page_token", "min_lsn")
    ASSERTION_HASH_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MIN_LSN_FIELD_NUMBER: _ClassVar[int]
    assertion_hash: bytes
    page_size: int
    page_token: str
    min_lsn: int
    def __init__(self, assertion_hash: _Optional[bytes] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., min_lsn: _Optional[int] = ...) -> None: ...

class ListVotesResponse(_message.Message):
    __slots__ = ("votes", "next_page_token", "applied_lsn")
    VOTES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    votes: _containers.RepeatedCompositeFieldContainer[HashedVote]
    next_page_token: str
    applied_lsn: int
    def __init__(self, votes: _Optional[_Iterable[_Union[HashedVote, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., applied_lsn: _Optional[int] = ...) -> None: ...

class ListSignersRequest(_message.Message):
    __slots__ = ("assertion_hash", "page_size", "page_token", "min_lsn")
    ASSERTION_HASH_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MIN_LSN_FIELD_NUMBER: _ClassVar[int]
    assertion_hash: bytes
    page_size: int
    page_token: str
    min_lsn: int
    def __init__(self, assertion_hash: _Optional[bytes] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., min_lsn: _Optional[int] = ...) -> None: ...

class ListSignersResponse(_message.Message):
    __slots__ = ("signatures", "next_page_token", "applied_lsn")
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    signatures: _containers.RepeatedCompositeFieldContainer[_records_pb2.SignatureEntry]
    next_page_token: str
    applied_lsn: int
    def __init__(self, signatures: _Optional[_Iterable[_Union[_records_pb2.SignatureEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., applied_lsn: _Optional[int] = ...) -> None: ...
