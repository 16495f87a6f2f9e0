from stemedb.v1 import store_pb2 as _store_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_UNSPECIFIED: _ClassVar[Status]
    STATUS_RESOLVED: _ClassVar[Status]
    STATUS_CONTESTED: _ClassVar[Status]
    STATUS_UNCERTAIN: _ClassVar[Status]
    STATUS_EMPTY: _ClassVar[Status]
STATUS_UNSPECIFIED: Status
STATUS_RESOLVED: Status
STATUS_CONTESTED: Status
STATUS_UNCERTAIN: Status
STATUS_EMPTY: Status

class Candidate(_message.Message):
    __slots__ = ("assertion_hash", "score", "support", "dispute", "supporters", "disputers", "retired", "votes", "first_lsn", "last_lsn", "qualified")
    ASSERTION_HASH_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_FIELD_NUMBER: _ClassVar[int]
    DISPUTE_FIELD_NUMBER: _ClassVar[int]
    SUPPORTERS_FIELD_NUMBER: _ClassVar[int]
    DISPUTERS_FIELD_NUMBER: _ClassVar[int]
    RETIRED_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    FIRST_LSN_FIELD_NUMBER: _ClassVar[int]
    LAST_LSN_FIELD_NUMBER: _ClassVar[int]
    QUALIFIED_FIELD_NUMBER: _ClassVar[int]
    assertion_hash: bytes
    score: float
    support: float
    dispute: float
    supporters: int
    disputers: int
    retired: bool
    votes: int
    first_lsn: int
    last_lsn: int
    qualified: bool
    def __init__(self, assertion_hash: _Optional[bytes] = ..., score: _Optional[float] = ..., support: _Optional[float] = ..., dispute: _Optional[float] = ..., supporters: _Optional[int] = ..., disputers: _Optional[int] = ..., retired: _Optional[bool] = ..., votes: _Optional[int] = ..., first_lsn: _Optional[int] = ..., last_lsn: _Optional[int] = ..., qualified: _Optional[bool] = ...) -> None: ...

class Resolution(_message.Message):
    __slots__ = ("subject", "predicate", "lens", "status", "winner", "score", "candidates", "policy_hash", "as_of_lsn", "candidates_total")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PREDICATE_FIELD_NUMBER: _ClassVar[int]
    LENS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    WINNER_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    POLICY_HASH_FIELD_NUMBER: _ClassVar[int]
    AS_OF_LSN_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    subject: str
    predicate: str
    lens: str
    status: Status
    winner: _store_pb2.HashedAssertion
    score: float
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    policy_hash: bytes
    as_of_lsn: int
    candidates_total: int
    def __init__(self, subject: _Optional[str] = ..., predicate: _Optional[str] = ..., lens: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., winner: _Optional[_Union[_store_pb2.HashedAssertion, _Mapping]] = ..., score: _Optional[float] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., policy_hash: _Optional[bytes] = ..., as_of_lsn: _Optional[int] = ..., candidates_total: _Optional[int] = ...) -> None: ...

class SlotView(_message.Message):
    __slots__ = ("subject", "predicate", "resolutions", "lsn")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PREDICATE_FIELD_NUMBER: _ClassVar[int]
    RESOLUTIONS_FIELD_NUMBER: _ClassVar[int]
    LSN_FIELD_NUMBER: _ClassVar[int]
    subject: str
    predicate: str
    resolutions: _containers.RepeatedCompositeFieldContainer[Resolution]
    lsn: int
    def __init__(self, subject: _Optional[str] = ..., predicate: _Optional[str] = ..., resolutions: _Optional[_Iterable[_Union[Resolution, _Mapping]]] = ..., lsn: _Optional[int] = ...) -> None: ...

class SlotHistoryEntry(_message.Message):
    __slots__ = ("lsn", "view", "changed_lenses")
    LSN_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    CHANGED_LENSES_FIELD_NUMBER: _ClassVar[int]
    lsn: int
    view: SlotView
    changed_lenses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, lsn: _Optional[int] = ..., view: _Optional[_Union[SlotView, _Mapping]] = ..., changed_lenses: _Optional[_Iterable[str]] = ...) -> None: ...

class ResolveRequest(_message.Message):
    __slots__ = ("subject", "predicate", "lens", "min_lsn", "as_of_lsn")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PREDICATE_FIELD_NUMBER: _ClassVar[int]
    LENS_FIELD_NUMBER: _ClassVar[int]
    MIN_LSN_FIELD_NUMBER: _ClassVar[int]
    AS_OF_LSN_FIELD_NUMBER: _ClassVar[int]
    subject: str
    predicate: str
    lens: str
    min_lsn: int
    as_of_lsn: int
    def __init__(self, subject: _Optional[str] = ..., predicate: _Optional[str] = ..., lens: _Optional[str] = ..., min_lsn: _Optional[int] = ..., as_of_lsn: _Optional[int] = ...) -> None: ...

class ResolveResponse(_message.Message):
    __slots__ = ("resolution", "applied_lsn")
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    resolution: Resolution
    applied_lsn: int
    def __init__(self, resolution: _Optional[_Union[Resolution, _Mapping]] = ..., applied_lsn: _Optional[int] = ...) -> None: ...

class ResolveSubjectRequest(_message.Message):
    __slots__ = ("subject", "lens", "page_size", "page_token", "min_lsn")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    LENS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MIN_LSN_FIELD_NUMBER: _ClassVar[int]
    subject: str
    lens: str
    page_size: int
    page_token: str
    min_lsn: int
    def __init__(self, subject: _Optional[str] = ..., lens: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., min_lsn: _Optional[int] = ...) -> None: ...

class ResolveSubjectResponse(_message.Message):
    __slots__ = ("resolutions", "next_page_token", "applied_lsn")
    RESOLUTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    resolutions: _containers.RepeatedCompositeFieldContainer[Resolution]
    next_page_token: str
    applied_lsn: int
    def __init__(self, resolutions: _Optional[_Iterable[_Union[Resolution, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., applied_lsn: _Optional[int] = ...) -> None: ...

class Tally(_message.Message):
    __slots__ = ("assertion_hash", "support", "dispute", "supporters", "disputers", "votes", "score")
    ASSERTION_HASH_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_FIELD_NUMBER: _ClassVar[int]
    DISPUTE_FIELD_NUMBER: _ClassVar[int]
    SUPPORTERS_FIELD_NUMBER: _ClassVar[int]
    DISPUTERS_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    assertion_hash: bytes
    support: float
    dispute: float
    supporters: int
    disputers: int
    votes: int
    score: float
    def __init__(self, assertion_hash: _Optional[bytes] = ..., support: _Optional[float] = ..., dispute: _Optional[float] = ..., supporters: _Optional[int] = ..., disputers: _Optional[int] = ..., votes: _Optional[int] = ..., score: _Optional[float] = ...) -> None: ...

class GetTallyRequest(_message.Message):
    __slots__ = ("assertion_hash", "min_lsn")
    ASSERTION_HASH_FIELD_NUMBER: _ClassVar[int]
    MIN_LSN_FIELD_NUMBER: _ClassVar[int]
    assertion_hash: bytes
    min_lsn: int
    def __init__(self, assertion_hash: _Optional[bytes] = ..., min_lsn: _Optional[int] = ...) -> None: ...

class GetTallyResponse(_message.Message):
    __slots__ = ("found", "tally", "policy_hash", "applied_lsn")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    TALLY_FIELD_NUMBER: _ClassVar[int]
    POLICY_HASH_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    found: bool
    tally: Tally
    policy_hash: bytes
    applied_lsn: int
    def __init__(self, found: _Optional[bool] = ..., tally: _Optional[_Union[Tally, _Mapping]] = ..., policy_hash: _Optional[bytes] = ..., applied_lsn: _Optional[int] = ...) -> None: ...

class ListHistoryRequest(_message.Message):
    __slots__ = ("subject", "predicate", "lens", "page_size", "page_token", "min_lsn")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PREDICATE_FIELD_NUMBER: _ClassVar[int]
    LENS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MIN_LSN_FIELD_NUMBER: _ClassVar[int]
    subject: str
    predicate: str
    lens: str
    page_size: int
    page_token: str
    min_lsn: int
    def __init__(self, subject: _Optional[str] = ..., predicate: _Optional[str] = ..., lens: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., min_lsn: _Optional[int] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("lsn", "status", "winner_hash", "score")
    LSN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    WINNER_HASH_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    lsn: int
    status: Status
    winner_hash: bytes
    score: float
    def __init__(self, lsn: _Optional[int] = ..., status: _Optional[_Union[Status, str]] = ..., winner_hash: _Optional[bytes] = ..., score: _Optional[float] = ...) -> None: ...

class ListHistoryResponse(_message.Message):
    __slots__ = ("entries", "next_page_token", "applied_lsn")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    next_page_token: str
    applied_lsn: int
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., applied_lsn: _Optional[int] = ...) -> None: ...

class ListLensesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Lens(_message.Message):
    __slots__ = ("name", "description", "parameters")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    parameters: _containers.ScalarMap[str, float]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., parameters: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ListLensesResponse(_message.Message):
    __slots__ = ("lenses", "policy_hash", "candidates_max", "applied_lsn")
    LENSES_FIELD_NUMBER: _ClassVar[int]
    POLICY_HASH_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_MAX_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    lenses: _containers.RepeatedCompositeFieldContainer[Lens]
    policy_hash: bytes
    candidates_max: int
    applied_lsn: int
    def __init__(self, lenses: _Optional[_Iterable[_Union[Lens, _Mapping]]] = ..., policy_hash: _Optional[bytes] = ..., candidates_max: _Optional[int] = ..., applied_lsn: _Optional[int] = ...) -> None: ...
