"""The public surface of stemedb.client is pinned: changing it is a deliberate act."""

from __future__ import annotations

import stemedb.client
from stemedb.client import cli


def test_public_names_are_pinned() -> None:
    assert sorted(stemedb.client.__all__) == [
        "AgentKey", "AsyncClient", "AsyncShardedClient", "Client", "ClientError", "DEFAULT_STORE",
        "DEFAULT_TIMEOUT_SECONDS", "DEFAULT_WRITER", "Entry", "GetResult", "InvalidRecord",
        "KEY_FILE_MODE", "KeyFileError", "Page", "ReadMismatch", "Receipt", "ReceiptMismatch",
        "Ref", "RetryPolicy", "RpcFailed", "ShardLookupError", "ShardReceipt", "ShardedClient",
        "TlsConfig", "Unavailable", "make_assertion", "make_epoch", "shard_of_hash",
        "shard_of_subject", "source_hash_of", "to_value",
    ]  # fmt: skip
    for name in stemedb.client.__all__:
        assert hasattr(stemedb.client, name), name


def test_public_names_report_stemedb_client_as_their_module() -> None:
    for name in stemedb.client.__all__:
        obj = getattr(stemedb.client, name)
        if callable(obj) and name != "InvalidRecord":  # InvalidRecord is stemedb.errors's
            assert obj.__module__ == "stemedb.client", name
    assert repr(stemedb.client.Receipt(b"\x01" * 32, 1)).startswith("Receipt(")
    assert stemedb.client.Client.append_assertion.__doc__


def test_defaults_are_the_contract_addresses() -> None:
    assert stemedb.client.DEFAULT_WRITER == "127.0.0.1:50051"
    assert stemedb.client.DEFAULT_STORE == "127.0.0.1:50052"


def test_cli_exit_codes() -> None:
    assert (cli.EXIT_OK, cli.EXIT_NOT_FOUND, cli.EXIT_USAGE, cli.EXIT_SERVER) == (0, 1, 2, 3)
