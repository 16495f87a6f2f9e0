from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobInfo(_message.Message):
    __slots__ = ("tokens", "compute_seconds", "value")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    tokens: int
    compute_seconds: float
    value: float
    def __init__(self, tokens: _Optional[int] = ..., compute_seconds: _Optional[float] = ..., value: _Optional[float] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("agent", "requests", "records", "units", "tokens", "compute_seconds", "value")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    agent: str
    requests: int
    records: int
    units: float
    tokens: int
    compute_seconds: float
    value: float
    def __init__(self, agent: _Optional[str] = ..., requests: _Optional[int] = ..., records: _Optional[int] = ..., units: _Optional[float] = ..., tokens: _Optional[int] = ..., compute_seconds: _Optional[float] = ..., value: _Optional[float] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("agent", "min_lsn")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    MIN_LSN_FIELD_NUMBER: _ClassVar[int]
    agent: str
    min_lsn: int
    def __init__(self, agent: _Optional[str] = ..., min_lsn: _Optional[int] = ...) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("found", "usage", "applied_lsn")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    found: bool
    usage: Usage
    applied_lsn: int
    def __init__(self, found: _Optional[bool] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., applied_lsn: _Optional[int] = ...) -> None: ...

class ListTopSpendersRequest(_message.Message):
    __slots__ = ("limit", "min_lsn")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    MIN_LSN_FIELD_NUMBER: _ClassVar[int]
    limit: int
    min_lsn: int
    def __init__(self, limit: _Optional[int] = ..., min_lsn: _Optional[int] = ...) -> None: ...

class ListTopSpendersResponse(_message.Message):
    __slots__ = ("usages", "applied_lsn")
    USAGES_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    usages: _containers.RepeatedCompositeFieldContainer[Usage]
    applied_lsn: int
    def __init__(self, usages: _Optional[_Iterable[_Union[Usage, _Mapping]]] = ..., applied_lsn: _Optional[int] = ...) -> None: ...

class GetBudgetRequest(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: str
    def __init__(self, agent: _Optional[str] = ...) -> None: ...

class GetBudgetResponse(_message.Message):
    __slots__ = ("metered", "tokens", "rate", "burst")
    METERED_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    BURST_FIELD_NUMBER: _ClassVar[int]
    metered: bool
    tokens: float
    rate: float
    burst: float
    def __init__(self, metered: _Optional[bool] = ..., tokens: _Optional[float] = ..., rate: _Optional[float] = ..., burst: _Optional[float] = ...) -> None: ...
