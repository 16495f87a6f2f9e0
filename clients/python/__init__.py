"""stemedb.client: the Python client of StemeDB, sync and asyncio, and the ``stemedb`` CLI.

Quick start::

    from stemedb.client import AgentKey, Client, make_assertion, source_hash_of

    key = AgentKey.generate()
    with Client() as db:                       # writer 127.0.0.1:50051, store 127.0.0.1:50052
        a = make_assertion("Q42", "name", "Douglas Adams", source_hash=source_hash_of("wiki"))
        receipt = db.append_assertion(key.sign_assertion(a))
        db.append_vote(key.vote(receipt.hash, 0.9))
        print(db.get("H:" + receipt.hash_hex, min_lsn=receipt.lsn).record)
        print(db.resolve("Q42", "name", min_lsn=receipt.lsn).resolution.status)  # the Lattice

Every append validates and hashes the record locally first (InvalidRecord, naming the field,
before any network call) and checks the receipt's hash; UNAVAILABLE is retried with backoff;
every call has a deadline. The ingestor's QueryService (``resolve``, ``resolve_subject``,
``get_tally``, ``list_history``, ``list_lenses``) and LogService (``get_checkpoint``, proofs)
are methods too. Through a stemedb-wallet (``through_wallet=True`` or ``wallet_key=NAME``, the
writer being the wallet's socket), records go unsigned and the wallet signs them; a vote then
needs only ``assertion_hash`` and ``weight``. ``ShardedClient`` (and ``AsyncShardedClient``)
route by subject hash across several (writer, store) pairs; its module documents the rule. TLS
is set per channel (``writer_tls``, ``store_tls``) or for both (``tls``). All four clients share
one I/O-free core (requests, checks, paging, routing plans: ``stemedb.client._core`` and
``_query``). The CLI is :mod:`stemedb.client.cli`.
"""

from __future__ import annotations

from stemedb.client._aio import AsyncClient
from stemedb.client._channel import DEFAULT_STORE, DEFAULT_WRITER, TlsConfig
from stemedb.client._client import DEFAULT_TIMEOUT_SECONDS, Client
from stemedb.client._errors import (
    ClientError,
    KeyFileError,
    ReadMismatch,
    ReceiptMismatch,
    RpcFailed,
    ShardLookupError,
    Unavailable,
)
from stemedb.client._keys import KEY_FILE_MODE, AgentKey
from stemedb.client._records import (
    Entry,
    GetResult,
    Page,
    Receipt,
    Ref,
    make_assertion,
    make_epoch,
    source_hash_of,
    to_value,
)
from stemedb.client._retry import RetryPolicy
from stemedb.client._shard import (
    AsyncShardedClient,
    ShardedClient,
    ShardReceipt,
    shard_of_hash,
    shard_of_subject,
)
from stemedb.errors import InvalidRecord

__all__ = [
    "DEFAULT_STORE",
    "DEFAULT_TIMEOUT_SECONDS",
    "DEFAULT_WRITER",
    "KEY_FILE_MODE",
    "AgentKey",
    "AsyncClient",
    "AsyncShardedClient",
    "Client",
    "ClientError",
    "Entry",
    "GetResult",
    "InvalidRecord",
    "KeyFileError",
    "Page",
    "ReadMismatch",
    "Receipt",
    "ReceiptMismatch",
    "Ref",
    "RetryPolicy",
    "RpcFailed",
    "ShardLookupError",
    "ShardReceipt",
    "ShardedClient",
    "TlsConfig",
    "Unavailable",
    "make_assertion",
    "make_epoch",
    "shard_of_hash",
    "shard_of_subject",
    "source_hash_of",
    "to_value",
]

# The public names are documented (and pickled, and shown in reprs) as stemedb.client's, not as
# the private module's that happens to define them. InvalidRecord stays stemedb.errors's: it is
# shared with the services.
for _name in __all__:
    _obj = globals()[_name]
    if callable(_obj) and _obj.__module__.startswith("stemedb.client."):
        _obj.__module__ = __name__
del _name, _obj
