"""The meter (DESIGN section 12): each request's cost, charged to its agent's token bucket.

Free of gRPC and of the clock (``now`` is passed in), so it is tested as plain code.

- **Agent**: the mTLS client identity when there is one, else the first signer of the request's
  first record (an assertion's or epoch's first signature, a vote's ``agent_id``: 64 hex
  digits), else ``anonymous``. A whole batch is charged to that one agent.
- **Cost** in units: ``costs.record`` per record, ``costs.kib`` per KiB of the request's bytes
  (rounded up), ``costs.signature`` per signature verified.
- **Order of checks**: the declared value first (a request whose cost exceeds a non-zero
  ``JobInfo.value`` is refused, FAILED_PRECONDITION), then the budget. A request that costs more
  than its agent's burst can never pass (refused without a retry time); one that costs more than
  the tokens now in the bucket is refused with the time after which it would pass. A refused
  request consumes nothing.
- **Bounded memory**: at most ``agents_max`` buckets are kept; when a new agent arrives and the
  table is full, the least recently charged bucket is dropped. A dropped bucket comes back full,
  so an agent can gain at most one burst by being evicted, and only after ``agents_max`` other
  agents were charged since its last request.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple

from stemedb.errors import InvalidRecord, StemeError
from stemedb.v1 import records_pb2 as pb
from stemedb.walrecord import JobEnvelope

__all__ = [
    "AGENTS_MAX_DEFAULT",
    "ANONYMOUS",
    "Budget",
    "Charge",
    "Costs",
    "Decision",
    "Meter",
    "MeterAsk",
    "MeterConfig",
    "MeterConfigError",
    "MeterRefused",
    "Outcome",
    "OverBudget",
    "OverValue",
    "agent_of",
    "charge_ask",
    "charge_request",
    "check_job",
    "load_meter_config",
    "meter_ask",
    "parse_meter_config",
    "refusal",
]

ANONYMOUS = "anonymous"
AGENTS_MAX_DEFAULT = 100_000  # buckets held at once (about 200 bytes each)
_CONFIG_BYTES_MAX = 16 * 1024 * 1024


class MeterConfigError(StemeError):
    """The meter configuration file is malformed; the message names the key."""


@dataclass(frozen=True)
class Costs:
    record: float = 1.0
    kib: float = 1.0
    signature: float = 1.0


@dataclass(frozen=True)
class Budget:
    rate: float  # units per second added to the bucket
    burst: float  # the bucket's capacity in units


@dataclass(frozen=True)
class MeterConfig:
    costs: Costs = field(default_factory=Costs)
    default: Budget = field(default_factory=lambda: Budget(rate=1000.0, burst=5000.0))
    agents: dict[str, Budget] = field(default_factory=dict)
    agents_max: int = AGENTS_MAX_DEFAULT

    def budget_of(self, agent: str) -> Budget:
        return self.agents.get(agent, self.default)


def _number(value: Any, key: str, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MeterConfigError(f"{key}: expected a number, got {json.dumps(value)}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        bound = "> 0" if positive else ">= 0"
        raise MeterConfigError(f"{key}: expected a finite number {bound}, got {value}")
    return number


def _object(value: Any, key: str, allowed: set[str] | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MeterConfigError(f"{key}: expected an object, got {type(value).__name__}")
    if allowed is not None:
        for name in value:
            if name not in allowed:
                known = ", ".join(sorted(allowed))
                raise MeterConfigError(f"{key}.{name}: unknown key (known: {known})")
    return value


def _budget(value: Any, key: str) -> Budget:
    obj = _object(value, key, {"rate", "burst"})
    for name in ("rate", "burst"):
        if name not in obj:
            raise MeterConfigError(f"{key}.{name}: missing")
    return Budget(
        rate=_number(obj["rate"], f"{key}.rate", positive=True),
        burst=_number(obj["burst"], f"{key}.burst", positive=True),
    )


def parse_meter_config(text: str) -> MeterConfig:
    """Parse the JSON of ``--meter-config``; :class:`MeterConfigError` names the bad key."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MeterConfigError(f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    top = _object(raw, "meter config", {"costs", "default", "agents", "agents_max"})
    costs = Costs()
    if "costs" in top:
        c = _object(top["costs"], "costs", {"record", "kib", "signature"})
        costs = Costs(**{k: _number(v, f"costs.{k}", positive=False) for k, v in c.items()})
    default = _budget(top["default"], "default") if "default" in top else MeterConfig().default
    agents: dict[str, Budget] = {}
    for name, value in _object(top.get("agents", {}), "agents", None).items():
        if not name:
            raise MeterConfigError("agents: an agent name must not be empty")
        agents[name] = _budget(value, f"agents.{name}")
    agents_max = AGENTS_MAX_DEFAULT
    if "agents_max" in top:
        n = top["agents_max"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise MeterConfigError(f"agents_max: expected an integer >= 1, got {n}")
        agents_max = n
    return MeterConfig(costs=costs, default=default, agents=agents, agents_max=agents_max)


def load_meter_config(path: Path) -> MeterConfig:
    """Read and parse a meter configuration file; errors name the file and the key."""
    try:
        with path.open("rb") as f:
            data = f.read(_CONFIG_BYTES_MAX + 1)
    except OSError as exc:
        raise MeterConfigError(f"{path}: {exc.strerror or exc}") from None
    if len(data) > _CONFIG_BYTES_MAX:
        raise MeterConfigError(f"{path}: larger than {_CONFIG_BYTES_MAX} bytes")
    try:
        return parse_meter_config(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MeterConfigError(f"{path}: not UTF-8 at byte {exc.start}") from None
    except MeterConfigError as exc:
        raise MeterConfigError(f"{path}: {exc}") from None


class Outcome(Enum):
    ADMITTED = "admitted"
    OVER_VALUE = "over_value"  # cost above the declared value: FAILED_PRECONDITION
    OVER_BUDGET = "over_budget"  # not enough tokens now: RESOURCE_EXHAUSTED + RetryInfo
    OVER_BURST = "over_burst"  # costs more than the bucket can ever hold: RESOURCE_EXHAUSTED


class Decision(NamedTuple):
    """What the meter decided for one request (a tuple: built once per metered request)."""

    outcome: Outcome
    agent: str
    cost: float
    retry_after_seconds: float = 0.0  # set for OVER_BUDGET only

    @property
    def admitted(self) -> bool:
        return self.outcome is Outcome.ADMITTED

    def message(self) -> str:
        if self.outcome is Outcome.OVER_VALUE:
            return f"job: cost {self.cost:g} units exceeds the declared value"
        if self.outcome is Outcome.OVER_BURST:
            return (
                f"meter: request costs {self.cost:g} units, more than the burst of agent "
                f"{self.agent}: it can never pass; split it"
            )
        if self.outcome is Outcome.OVER_BUDGET:
            return (
                f"meter: agent {self.agent} is over its budget; retry in "
                f"{self.retry_after_seconds:.3f} s"
            )
        return "admitted"


def agent_of(records: list[pb.Record], mtls_identity: str | None) -> str:
    """The agent a request is charged to (see the module docstring)."""
    if mtls_identity:
        return mtls_identity
    if records:
        first = records[0]
        kind = first.WhichOneof("kind")
        if kind == "vote" and first.vote.agent_id:
            return first.vote.agent_id.hex()
        signed = first.assertion if kind == "assertion" else first.epoch if kind else None
        if signed is not None and signed.signatures:
            return signed.signatures[0].public_key.hex()
    return ANONYMOUS


class MeterRefused(StemeError):
    """The meter refused a request; ``decision`` says why (nothing was written or charged)."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.message())
        self.decision = decision


class OverValue(MeterRefused):
    """The request costs more than the value its job declares (FAILED_PRECONDITION)."""


class OverBudget(MeterRefused):
    """The agent's bucket holds too few units now, or the request exceeds its burst
    (RESOURCE_EXHAUSTED; with a retry time unless it can never pass)."""


def refusal(decision: Decision) -> MeterRefused:
    if decision.outcome is Outcome.OVER_VALUE:
        return OverValue(decision)
    return OverBudget(decision)


def check_job(job: Any, field: str = "job") -> None:
    """Refuse a JobInfo whose figures are negative, -0.0 or not finite, naming the field."""
    for name in ("compute_seconds", "value"):
        number = float(getattr(job, name))
        if not math.isfinite(number):
            raise InvalidRecord(f"{field}.{name}", "must be finite")
        if number < 0 or math.copysign(1.0, number) < 0:
            raise InvalidRecord(f"{field}.{name}", f"must be >= 0 (and not -0.0), got {number}")


class Charge(NamedTuple):
    """An admitted request's charge: what to refund if its append fails, what the WAL keeps."""

    decision: Decision
    job: JobEnvelope


class MeterAsk(NamedTuple):
    """What the meter needs to know of one request (a front end sends it to the WAL owner,
    which holds the buckets): its agent, size, signatures and declared job."""

    agent: str
    records: int
    request_bytes: int
    signatures: int
    tokens: int = 0
    compute_seconds: float = 0.0
    value: float = 0.0


def meter_ask(
    records: list[pb.Record], request_bytes: int, signatures: int, job: Any | None,
    mtls_identity: str | None,
) -> MeterAsk:  # fmt: skip
    """The meter's view of a request; ``job`` (its ``JobInfo`` or None) is checked first."""
    tokens, seconds, value = 0, 0.0, 0.0
    if job is not None:
        check_job(job)
        tokens, seconds, value = int(job.tokens), float(job.compute_seconds), float(job.value)
    agent = agent_of(records, mtls_identity)
    return MeterAsk(agent, len(records), request_bytes, signatures, tokens, seconds, value)


def charge_ask(meter: Meter, ask: MeterAsk, now: float) -> Charge:
    """Charge one request to its agent, or raise :class:`MeterRefused` (nothing charged)."""
    cost = meter.cost(ask.records, ask.request_bytes, ask.signatures)
    decision = meter.charge(ask.agent, cost, ask.value, now)
    if not decision.admitted:
        raise refusal(decision)
    envelope = JobEnvelope(ask.agent, ask.records, cost, ask.tokens, ask.compute_seconds, ask.value)
    return Charge(decision, envelope)


def charge_request(
    meter: Meter, records: list[pb.Record], request_bytes: int, signatures: int,
    job: Any | None, mtls_identity: str | None, now: float,
) -> Charge:  # fmt: skip
    """Charge one request to its agent, or raise :class:`MeterRefused` (nothing charged).

    ``job`` is the request's ``JobInfo`` (or None); its figures are checked, then recorded.
    """
    return charge_ask(meter, meter_ask(records, request_bytes, signatures, job, mtls_identity), now)


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class Meter:
    """Token buckets per agent; ``charge`` decides and, when it admits, takes the tokens."""

    def __init__(self, config: MeterConfig) -> None:
        self._config = config
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def config(self) -> MeterConfig:
        return self._config

    def reload(self, config: MeterConfig) -> None:
        """Use a new configuration; buckets keep their tokens, capped at the new burst."""
        self._config = config
        while len(self._buckets) > config.agents_max:
            self._buckets.popitem(last=False)

    def cost(self, records: int, request_bytes: int, signatures: int) -> float:
        c = self._config.costs
        kib = -(-request_bytes // 1024)
        return records * c.record + kib * c.kib + signatures * c.signature

    def _refilled(self, agent: str, budget: Budget, now: float) -> _Bucket:
        bucket = self._buckets.get(agent)
        if bucket is None:
            bucket = _Bucket(budget.burst, now)
            self._buckets[agent] = bucket
            while len(self._buckets) > self._config.agents_max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(agent)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(budget.burst, bucket.tokens + elapsed * budget.rate)
            bucket.updated = now
        bucket.tokens = min(bucket.tokens, budget.burst)
        return bucket

    def charge(self, agent: str, cost: float, declared_value: float, now: float) -> Decision:
        if declared_value > 0 and cost > declared_value:
            return Decision(Outcome.OVER_VALUE, agent, cost)
        budget = self._config.budget_of(agent)
        if cost > budget.burst:
            return Decision(Outcome.OVER_BURST, agent, cost)
        bucket = self._refilled(agent, budget, now)
        if cost > bucket.tokens:
            wait = (cost - bucket.tokens) / budget.rate
            return Decision(Outcome.OVER_BUDGET, agent, cost, retry_after_seconds=wait)
        bucket.tokens -= cost
        return Decision(Outcome.ADMITTED, agent, cost)

    def refund(self, decision: Decision) -> None:
        """Give back an admitted request's units (its append failed after the charge)."""
        if not decision.admitted:
            return
        bucket = self._buckets.get(decision.agent)
        if bucket is not None:
            burst = self._config.budget_of(decision.agent).burst
            bucket.tokens = min(burst, bucket.tokens + decision.cost)

    def tokens(self, agent: str, now: float) -> float:
        """The tokens ``agent`` has now (its burst when it holds no bucket)."""
        budget = self._config.budget_of(agent)
        bucket = self._buckets.get(agent)
        if bucket is None:
            return budget.burst
        return min(budget.burst, bucket.tokens + max(0.0, now - bucket.updated) * budget.rate)

    def agents(self) -> int:
        return len(self._buckets)
