from stemedb.v1 import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetCheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCheckpointResponse(_message.Message):
    __slots__ = ("checkpoint", "verifier_key", "applied_lsn")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_KEY_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    verifier_key: str
    applied_lsn: int
    def __init__(self, checkpoint: _Optional[str] = ..., verifier_key: _Optional[str] = ..., applied_lsn: _Optional[int] = ...) -> None: ...

class GetInclusionProofRequest(_message.Message):
    __slots__ = ("lsn", "tree_size")
    LSN_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    lsn: int
    tree_size: int
    def __init__(self, lsn: _Optional[int] = ..., tree_size: _Optional[int] = ...) -> None: ...

class GetInclusionProofResponse(_message.Message):
    __slots__ = ("leaf_index", "tree_size", "hashes", "record", "checkpoint", "applied_lsn")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    record: _records_pb2.Record
    checkpoint: str
    applied_lsn: int
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ..., hashes: _Optional[_Iterable[bytes]] = ..., record: _Optional[_Union[_records_pb2.Record, _Mapping]] = ..., checkpoint: _Optional[str] = ..., applied_lsn: _Optional[int] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("first_size", "second_size")
    FIRST_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECOND_SIZE_FIELD_NUMBER: _ClassVar[int]
    first_size: int
    second_size: int
    def __init__(self, first_size: _Optional[int] = ..., second_size: _Optional[int] = ...) -> None: ...

class GetConsistencyProofResponse(_message.Message):
    __slots__ = ("hashes", "applied_lsn")
    HASHES_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    applied_lsn: int
    def __init__(self, hashes: _Optional[_Iterable[bytes]] = ..., applied_lsn: _Optional[int] = ...) -> None: ...

class ListRecordLsnsRequest(_message.Message):
    __slots__ = ("hash", "page_size", "page_token", "min_lsn")
    HASH_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MIN_LSN_FIELD_NUMBER: _ClassVar[int]
    hash: bytes
    page_size: int
    page_token: str
    min_lsn: int
    def __init__(self, hash: _Optional[bytes] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., min_lsn: _Optional[int] = ...) -> None: ...

class ListRecordLsnsResponse(_message.Message):
    __slots__ = ("lsns", "next_page_token", "applied_lsn")
    LSNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    lsns: _containers.RepeatedScalarFieldContainer[int]
    next_page_token: str
    applied_lsn: int
    def __init__(self, lsns: _Optional[_Iterable[int]] = ..., next_page_token: _Optional[str] = ..., applied_lsn: _Optional[int] = ...) -> None: ...
