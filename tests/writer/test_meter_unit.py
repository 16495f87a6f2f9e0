"""The meter's plain logic: config parsing, cost, token buckets, agents, eviction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stemedb.v1 import records_pb2 as pb
from stemedb.writer._meter import (
    ANONYMOUS,
    Budget,
    Meter,
    MeterConfig,
    MeterConfigError,
    Outcome,
    agent_of,
    load_meter_config,
    parse_meter_config,
)


def _config(**agents: Budget) -> MeterConfig:
    return MeterConfig(default=Budget(rate=10.0, burst=100.0), agents=dict(agents))


def test_defaults_when_keys_are_absent() -> None:
    cfg = parse_meter_config("{}")
    assert cfg.costs.record == cfg.costs.kib == cfg.costs.signature == 1.0
    assert cfg.default == Budget(rate=1000.0, burst=5000.0)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('{"costs": {"record": -1}}', "costs.record"),
        ('{"costs": {"bytes": 1}}', "costs.bytes: unknown key"),
        ('{"default": {"rate": 1}}', "default.burst: missing"),
        ('{"default": {"rate": 0, "burst": 5}}', "default.rate"),
        ('{"agents": {"a": {"rate": "fast", "burst": 5}}}', "agents.a.rate"),
        ('{"agents": []}', "agents: expected an object"),
        ('{"agents_max": 0}', "agents_max"),
        ('{"surprise": 1}', "meter config.surprise: unknown key"),
        ('{"costs": {"record": 1,}}', "line 1 column"),
    ],
)
def test_malformed_config_names_the_key(text: str, named: str) -> None:
    with pytest.raises(MeterConfigError, match=named.replace(".", r"\.")):
        parse_meter_config(text)


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "meter.json"
    path.write_text(json.dumps({"default": {"rate": 5, "burst": -1}}))
    with pytest.raises(MeterConfigError, match=r"meter\.json: default\.burst"):
        load_meter_config(path)
    with pytest.raises(MeterConfigError, match=r"missing\.json"):
        load_meter_config(tmp_path / "missing.json")


def test_cost_rounds_kib_up() -> None:
    meter = Meter(parse_meter_config('{"costs": {"record": 2, "kib": 3, "signature": 5}}'))
    assert meter.cost(records=1, request_bytes=1, signatures=0) == 2 + 3
    assert meter.cost(records=4, request_bytes=2049, signatures=3) == 8 + 9 + 15
    assert meter.cost(records=0, request_bytes=0, signatures=0) == 0


def test_bucket_admits_burst_then_refuses_with_retry_time() -> None:
    meter = Meter(_config())
    assert meter.charge("a", 60, 0, now=0.0).admitted
    refused = meter.charge("a", 60, 0, now=0.0)
    assert refused.outcome is Outcome.OVER_BUDGET
    assert refused.retry_after_seconds == pytest.approx(2.0)  # 20 missing at 10/s
    assert meter.tokens("a", now=0.0) == pytest.approx(40.0)  # the refusal took nothing
    assert meter.charge("a", 60, 0, now=2.0).admitted
    assert meter.tokens("a", now=2.0) == pytest.approx(0.0)


def test_refill_is_capped_at_burst() -> None:
    meter = Meter(_config())
    assert meter.charge("a", 100, 0, now=0.0).admitted
    assert meter.tokens("a", now=1_000.0) == pytest.approx(100.0)


def test_over_burst_can_never_pass_and_has_no_retry_time() -> None:
    meter = Meter(_config())
    d = meter.charge("a", 101, 0, now=0.0)
    assert d.outcome is Outcome.OVER_BURST and d.retry_after_seconds == 0.0
    assert "can never pass" in d.message()


def test_value_checked_before_budget_and_consumes_nothing() -> None:
    meter = Meter(_config())
    d = meter.charge("a", 50, declared_value=10, now=0.0)
    assert d.outcome is Outcome.OVER_VALUE
    assert meter.tokens("a", now=0.0) == 100.0
    # an undeclared value (0) is no limit; a value at or above the cost passes
    assert meter.charge("a", 50, declared_value=0, now=0.0).admitted
    assert meter.charge("a", 50, declared_value=50, now=0.0).admitted


def test_agents_have_their_own_buckets() -> None:
    meter = Meter(_config(vip=Budget(rate=1.0, burst=1_000.0)))
    assert meter.charge("vip", 500, 0, now=0.0).admitted
    assert meter.charge("other", 100, 0, now=0.0).admitted
    assert not meter.charge("other", 1, 0, now=0.0).admitted
    assert meter.charge("vip", 500, 0, now=0.0).admitted


def test_eviction_bounds_the_table_and_drops_the_least_recent() -> None:
    meter = Meter(MeterConfig(default=Budget(rate=1.0, burst=10.0), agents_max=3))
    for name in ("a", "b", "c"):
        assert meter.charge(name, 10, 0, now=0.0).admitted
    assert meter.charge("a", 1, 0, now=0.0).outcome is Outcome.OVER_BUDGET  # a is most recent
    assert meter.charge("d", 10, 0, now=0.0).admitted  # evicts b
    assert meter.agents() == 3
    assert meter.charge("b", 10, 0, now=0.0).admitted  # b came back full
    assert meter.charge("c", 1, 0, now=0.0).admitted  # c was evicted when b came back


def test_reload_keeps_tokens_capped_at_new_burst() -> None:
    meter = Meter(_config())
    assert meter.charge("a", 30, 0, now=0.0).admitted
    meter.reload(MeterConfig(default=Budget(rate=10.0, burst=50.0)))
    assert meter.tokens("a", now=0.0) == pytest.approx(50.0)


def _signed_assertion(key: bytes) -> pb.Record:
    a = pb.Assertion(subject="s", predicate="p")
    a.signatures.add(public_key=key, signature=b"\x01" * 64)
    return pb.Record(assertion=a)


def test_agent_of_prefers_mtls_then_first_signer_then_anonymous() -> None:
    k1, k2 = b"\x11" * 32, b"\x22" * 32
    records = [_signed_assertion(k1), _signed_assertion(k2)]
    assert agent_of(records, "CN=agent-7") == "CN=agent-7"
    assert agent_of(records, None) == k1.hex()
    vote = pb.Record(vote=pb.Vote(assertion_hash=b"\x00" * 32, agent_id=k2, weight=1.0))
    assert agent_of([vote, records[0]], None) == k2.hex()
    assert agent_of([pb.Record(assertion=pb.Assertion(subject="s"))], None) == ANONYMOUS
    assert agent_of([pb.Record(epoch=pb.Epoch(name="e"))], None) == ANONYMOUS
    assert agent_of([], None) == ANONYMOUS
