from stemedb.v1 import meter_pb2 as _meter_pb2
from stemedb.v1 import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AppendAssertionRequest(_message.Message):
    __slots__ = ("assertion", "job")
    ASSERTION_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    assertion: _records_pb2.Assertion
    job: _meter_pb2.JobInfo
    def __init__(self, assertion: _Optional[_Union[_records_pb2.Assertion, _Mapping]] = ..., job: _Optional[_Union[_meter_pb2.JobInfo, _Mapping]] = ...) -> None: ...

class AppendAssertionResponse(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: _records_pb2.Receipt
    def __init__(self, receipt: _Optional[_Union[_records_pb2.Receipt, _Mapping]] = ...) -> None: ...

class AppendVoteRequest(_message.Message):
    __slots__ = ("vote", "job")
    VOTE_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    vote: _records_pb2.Vote
    job: _meter_pb2.JobInfo
    def __init__(self, vote: _Optional[_Union[_records_pb2.Vote, _Mapping]] = ..., job: _Optional[_Union[_meter_pb2.JobInfo, _Mapping]] = ...) -> None: ...

class AppendVoteResponse(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: _records_pb2.Receipt
    def __init__(self, receipt: _Optional[_Union[_records_pb2.Receipt, _Mapping]] = ...) -> None: ...

class AppendEpochRequest(_message.Message):
    __slots__ = ("epoch", "job")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    epoch: _records_pb2.Epoch
    job: _meter_pb2.JobInfo
    def __init__(self, epoch: _Optional[_Union[_records_pb2.Epoch, _Mapping]] = ..., job: _Optional[_Union[_meter_pb2.JobInfo, _Mapping]] = ...) -> None: ...

class AppendEpochResponse(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: _records_pb2.Receipt
    def __init__(self, receipt: _Optional[_Union[_records_pb2.Receipt, _Mapping]] = ...) -> None: ...

class AppendBatchRequest(_message.Message):
    __slots__ = ("records", "job")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[_records_pb2.Record]
    job: _meter_pb2.JobInfo
    def __init__(self, records: _Optional[_Iterable[_Union[_records_pb2.Record, _Mapping]]] = ..., job: _Optional[_Union[_meter_pb2.JobInfo, _Mapping]] = ...) -> None: ...

class AppendBatchResponse(_message.Message):
    __slots__ = ("receipts",)
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    receipts: _containers.RepeatedCompositeFieldContainer[_records_pb2.Receipt]
    def __init__(self, receipts: _Optional[_Iterable[_Union[_records_pb2.Receipt, _Mapping]]] = ...) -> None: ...
