from stemedb.v1 import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WalletKey(_message.Message):
    __slots__ = ("name", "public_key", "is_default", "retired", "created_unix_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    RETIRED_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    public_key: bytes
    is_default: bool
    retired: bool
    created_unix_ms: int
    def __init__(self, name: _Optional[str] = ..., public_key: _Optional[bytes] = ..., is_default: _Optional[bool] = ..., retired: _Optional[bool] = ..., created_unix_ms: _Optional[int] = ...) -> None: ...

class CreateKeyRequest(_message.Message):
    __slots__ = ("name", "make_default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAKE_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    make_default: bool
    def __init__(self, name: _Optional[str] = ..., make_default: _Optional[bool] = ...) -> None: ...

class CreateKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: WalletKey
    def __init__(self, key: _Optional[_Union[WalletKey, _Mapping]] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[WalletKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[WalletKey, _Mapping]]] = ...) -> None: ...

class GetPublicKeyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetPublicKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: WalletKey
    def __init__(self, key: _Optional[_Union[WalletKey, _Mapping]] = ...) -> None: ...

class SignAssertionRequest(_message.Message):
    __slots__ = ("key_name", "assertion")
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    ASSERTION_FIELD_NUMBER: _ClassVar[int]
    key_name: str
    assertion: _records_pb2.Assertion
    def __init__(self, key_name: _Optional[str] = ..., assertion: _Optional[_Union[_records_pb2.Assertion, _Mapping]] = ...) -> None: ...

class SignAssertionResponse(_message.Message):
    __slots__ = ("assertion", "hash", "key_name")
    ASSERTION_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    assertion: _records_pb2.Assertion
    hash: bytes
    key_name: str
    def __init__(self, assertion: _Optional[_Union[_records_pb2.Assertion, _Mapping]] = ..., hash: _Optional[bytes] = ..., key_name: _Optional[str] = ...) -> None: ...

class SignVoteRequest(_message.Message):
    __slots__ = ("key_name", "vote")
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    VOTE_FIELD_NUMBER: _ClassVar[int]
    key_name: str
    vote: _records_pb2.Vote
    def __init__(self, key_name: _Optional[str] = ..., vote: _Optional[_Union[_records_pb2.Vote, _Mapping]] = ...) -> None: ...

class SignVoteResponse(_message.Message):
    __slots__ = ("vote", "hash", "key_name")
    VOTE_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    vote: _records_pb2.Vote
    hash: bytes
    key_name: str
    def __init__(self, vote: _Optional[_Union[_records_pb2.Vote, _Mapping]] = ..., hash: _Optional[bytes] = ..., key_name: _Optional[str] = ...) -> None: ...

class SignEpochRequest(_message.Message):
    __slots__ = ("key_name", "epoch")
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    key_name: str
    epoch: _records_pb2.Epoch
    def __init__(self, key_name: _Optional[str] = ..., epoch: _Optional[_Union[_records_pb2.Epoch, _Mapping]] = ...) -> None: ...

class SignEpochResponse(_message.Message):
    __slots__ = ("epoch", "hash", "key_name")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    epoch: _records_pb2.Epoch
    hash: bytes
    key_name: str
    def __init__(self, epoch: _Optional[_Union[_records_pb2.Epoch, _Mapping]] = ..., hash: _Optional[bytes] = ..., key_name: _Optional[str] = ...) -> None: ...

class SetDefaultKeyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class SetDefaultKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: WalletKey
    def __init__(self, key: _Optional[_Union[WalletKey, _Mapping]] = ...) -> None: ...

class RetireKeyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RetireKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: WalletKey
    def __init__(self, key: _Optional[_Union[WalletKey, _Mapping]] = ...) -> None: ...
