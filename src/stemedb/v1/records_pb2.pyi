from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SupersessionType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUPERSESSION_TYPE_UNSPECIFIED: _ClassVar[SupersessionType]
    SUPERSESSION_TYPE_EXTENSION: _ClassVar[SupersessionType]
    SUPERSESSION_TYPE_REFINEMENT: _ClassVar[SupersessionType]
    SUPERSESSION_TYPE_REVOLUTION: _ClassVar[SupersessionType]
SUPERSESSION_TYPE_UNSPECIFIED: SupersessionType
SUPERSESSION_TYPE_EXTENSION: SupersessionType
SUPERSESSION_TYPE_REFINEMENT: SupersessionType
SUPERSESSION_TYPE_REVOLUTION: SupersessionType

class Value(_message.Message):
    __slots__ = ("text", "number", "flag", "blob", "ref")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    text: str
    number: float
    flag: bool
    blob: bytes
    ref: bytes
    def __init__(self, text: _Optional[str] = ..., number: _Optional[float] = ..., flag: _Optional[bool] = ..., blob: _Optional[bytes] = ..., ref: _Optional[bytes] = ...) -> None: ...

class SignatureEntry(_message.Message):
    __slots__ = ("public_key", "signature")
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    signature: bytes
    def __init__(self, public_key: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Assertion(_message.Message):
    __slots__ = ("subject", "predicate", "object", "confidence", "source_hash", "visual_hash", "epoch", "signatures")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PREDICATE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_HASH_FIELD_NUMBER: _ClassVar[int]
    VISUAL_HASH_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    subject: str
    predicate: str
    object: Value
    confidence: float
    source_hash: bytes
    visual_hash: int
    epoch: bytes
    signatures: _containers.RepeatedCompositeFieldContainer[SignatureEntry]
    def __init__(self, subject: _Optional[str] = ..., predicate: _Optional[str] = ..., object: _Optional[_Union[Value, _Mapping]] = ..., confidence: _Optional[float] = ..., source_hash: _Optional[bytes] = ..., visual_hash: _Optional[int] = ..., epoch: _Optional[bytes] = ..., signatures: _Optional[_Iterable[_Union[SignatureEntry, _Mapping]]] = ...) -> None: ...

class Vote(_message.Message):
    __slots__ = ("assertion_hash", "agent_id", "weight", "signature", "sequence")
    ASSERTION_HASH_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    assertion_hash: bytes
    agent_id: bytes
    weight: float
    signature: bytes
    sequence: int
    def __init__(self, assertion_hash: _Optional[bytes] = ..., agent_id: _Optional[bytes] = ..., weight: _Optional[float] = ..., signature: _Optional[bytes] = ..., sequence: _Optional[int] = ...) -> None: ...

class Epoch(_message.Message):
    __slots__ = ("name", "description", "supersedes", "supersession_type", "signatures")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDES_FIELD_NUMBER: _ClassVar[int]
    SUPERSESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    supersedes: bytes
    supersession_type: SupersessionType
    signatures: _containers.RepeatedCompositeFieldContainer[SignatureEntry]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., supersedes: _Optional[bytes] = ..., supersession_type: _Optional[_Union[SupersessionType, str]] = ..., signatures: _Optional[_Iterable[_Union[SignatureEntry, _Mapping]]] = ...) -> None: ...

class Record(_message.Message):
    __slots__ = ("assertion", "vote", "epoch")
    ASSERTION_FIELD_NUMBER: _ClassVar[int]
    VOTE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    assertion: Assertion
    vote: Vote
    epoch: Epoch
    def __init__(self, assertion: _Optional[_Union[Assertion, _Mapping]] = ..., vote: _Optional[_Union[Vote, _Mapping]] = ..., epoch: _Optional[_Union[Epoch, _Mapping]] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("hash", "lsn")
    HASH_FIELD_NUMBER: _ClassVar[int]
    LSN_FIELD_NUMBER: _ClassVar[int]
    hash: bytes
    lsn: int
    def __init__(self, hash: _Optional[bytes] = ..., lsn: _Optional[int] = ...) -> None: ...
