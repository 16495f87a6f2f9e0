"""WalletService's names are a contract (DESIGN section 11): extend, never rename."""

from __future__ import annotations

import grpc

import stemedb.wallet
from stemedb.errors import StemeError
from stemedb.runtime import StatusTable
from stemedb.v1 import wallet_pb2
from stemedb.wallet import KeyNotFound, KeystoreLocked
from stemedb.wallet._config import DEFAULT_KEYSTORE, DEFAULT_LISTEN, DEFAULT_WRITER, build_parser
from stemedb.wallet._errors import STATUS_TABLE, grpc_code_of
from stemedb.wallet._service import KEY_METADATA


def test_wallet_service_methods() -> None:
    service = wallet_pb2.DESCRIPTOR.services_by_name["WalletService"]
    assert service.full_name == "stemedb.v1.WalletService"
    assert [m.name for m in service.methods][:6] == [
        "CreateKey", "ListKeys", "GetPublicKey", "SignAssertion", "SignVote", "SignEpoch",
    ]  # fmt: skip
    assert {"SetDefaultKey", "RetireKey"} <= {m.name for m in service.methods}
    for m in service.methods:
        assert m.input_type.name == f"{m.name}Request"
        assert m.output_type.name == f"{m.name}Response"


def test_flags_and_defaults() -> None:
    assert (DEFAULT_KEYSTORE, DEFAULT_LISTEN, DEFAULT_WRITER) == (
        "./data/wallet", "unix:./data/wallet.sock", "127.0.0.1:50051",
    )  # fmt: skip
    assert KEY_METADATA == "stemedb-key"
    flags = {o for a in build_parser()._actions for o in a.option_strings}
    assert {"--keystore", "--passphrase-file", "--listen", "--writer", "--metrics-listen"} <= flags


def test_wallet_errors_are_steme_errors_in_one_status_table() -> None:
    assert isinstance(STATUS_TABLE, StatusTable)
    for name in stemedb.wallet.__all__:
        value = getattr(stemedb.wallet, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, StemeError), name
    assert grpc_code_of(KeyNotFound("x")) == grpc.StatusCode.NOT_FOUND
    assert grpc_code_of(KeystoreLocked("x")) == grpc.StatusCode.INTERNAL
