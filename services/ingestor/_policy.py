"""The trust policy (DESIGN section 9.2): agent trust, epoch authority and lens parameters.

The file is JSON, given with ``--trust-policy FILE`` (``STEMEDB_TRUST_POLICY``)::

    {"default_weight": 1.0,
     "agents": {"<64 hex public key>": 0.25, ...},
     "epoch_authority_min": 1.0,
     "candidates_max": 10,
     "lenses": {"consensus": {"contested_margin": 0.1},
                "skeptic": {"min_supporters": 2, "threshold": 0.6},
                "recent": {}}}

Every key is optional; a missing one takes the default above. An unknown key, a value of the
wrong type or out of range, a duplicate key or malformed JSON is refused with a message naming
the key (``agents.<key>``, ``lenses.skeptic.threshold``) or the line and column, and the
ingestor exits with status 2 at start. The *effective* policy (defaults filled in, public keys
in lowercase hex) serialized as RFC 8785 JSON is hashed with BLAKE3: that is ``policy_hash``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import blake3
from stemedb.ingestor._jcs import canonical_json

__all__ = [
    "DEFAULT_POLICY",
    "LENS_NAMES",
    "POLICY_BYTES_MAX",
    "PolicyError",
    "TrustPolicy",
    "load_policy",
    "parse_policy",
]

POLICY_BYTES_MAX = 64 * 1024 * 1024  # a policy naming ~800,000 agents
CANDIDATES_MAX_LIMIT = 1000  # candidates_max may be set up to this
LENS_NAMES = ("consensus", "skeptic", "recent")  # the built-in lenses, in SlotView order
_KEY_HEX_DIGITS = 64
_HEX = frozenset("0123456789abcdef")


class PolicyError(ValueError):
    """A trust policy file that cannot be used; the message names the key or the line."""


@dataclass(frozen=True)
class TrustPolicy:
    """The effective policy: every value set (defaults filled in)."""

    default_weight: float = 1.0
    agents: Mapping[bytes, float] = field(default_factory=dict)  # raw 32-byte key -> trust
    epoch_authority_min: float = 1.0
    candidates_max: int = 10
    contested_margin: float = 0.1
    min_supporters: int = 2
    threshold: float = 0.6

    def weight(self, agent: bytes) -> float:
        """w_A: the agent's trust in [0, 1]."""
        return self.agents.get(agent, self.default_weight)

    def lens_parameters(self) -> dict[str, dict[str, float]]:
        return {
            "consensus": {"contested_margin": self.contested_margin},
            "skeptic": {"min_supporters": float(self.min_supporters), "threshold": self.threshold},
            "recent": {},
        }

    def effective(self) -> dict[str, Any]:
        """The effective policy as a JSON value (what the hash covers)."""
        return {
            "agents": {key.hex(): w for key, w in self.agents.items()},
            "candidates_max": self.candidates_max,
            "default_weight": self.default_weight,
            "epoch_authority_min": self.epoch_authority_min,
            "lenses": {
                "consensus": {"contested_margin": self.contested_margin},
                "recent": {},
                "skeptic": {"min_supporters": self.min_supporters, "threshold": self.threshold},
            },
        }

    def canonical(self) -> bytes:
        """The effective policy in RFC 8785 (JCS) form."""
        return canonical_json(self.effective())

    @cached_property
    def policy_hash(self) -> bytes:
        """BLAKE3-256 of the canonical effective policy (computed once per policy)."""
        return blake3.blake3(self.canonical()).digest()


DEFAULT_POLICY = TrustPolicy()


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PolicyError(f"{where} must be a JSON object")
    return value


def _known(obj: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in obj:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            raise PolicyError(
                f"unknown key {prefix}{key}: expected one of {', '.join(allowed) or 'none'}"
            )


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(f"{where} must be a number, got {json.dumps(value)}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise PolicyError(f"{where} must be in [{low:g}, {high:g}], got {value!r}")
    return number


def _integer(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise PolicyError(f"{where} must be an integer, got {json.dumps(value)}")
    number = int(value)
    if not low <= number <= high:
        raise PolicyError(f"{where} must be in [{low}, {high}], got {number}")
    return number


def _agent_key(text: str) -> bytes:
    where = f"agents.{text}"
    lowered = text.lower()
    if len(lowered) != _KEY_HEX_DIGITS or not set(lowered) <= _HEX:
        raise PolicyError(f"{where}: a key must be a public key of {_KEY_HEX_DIGITS} hex digits")
    return bytes.fromhex(lowered)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise PolicyError(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_policy(text: str, source: str = "trust policy") -> TrustPolicy:
    """Parse and check a policy's JSON text; raise PolicyError naming the key or the line."""
    try:
        raw = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise PolicyError(
            f"{source}: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"
        ) from None
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from None
    try:
        return _from_json(raw)
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from None


def _from_json(raw: Any) -> TrustPolicy:
    top = _object(raw, "the policy")
    _known(
        top,
        ("default_weight", "agents", "epoch_authority_min", "candidates_max", "lenses"),
        "",
    )
    d = DEFAULT_POLICY
    agents: dict[bytes, float] = {}
    for text, weight in _object(top.get("agents", {}), "agents").items():
        key = _agent_key(text)
        if key in agents:
            raise PolicyError(f"agents.{text}: the same key appears twice (hex case differs)")
        agents[key] = _number(weight, f"agents.{text}", 0.0, 1.0)
    lenses = _object(top.get("lenses", {}), "lenses")
    _known(lenses, LENS_NAMES, "lenses")
    consensus = _object(lenses.get("consensus", {}), "lenses.consensus")
    _known(consensus, ("contested_margin",), "lenses.consensus")
    skeptic = _object(lenses.get("skeptic", {}), "lenses.skeptic")
    _known(skeptic, ("min_supporters", "threshold"), "lenses.skeptic")
    _known(_object(lenses.get("recent", {}), "lenses.recent"), (), "lenses.recent")
    return TrustPolicy(
        default_weight=_number(top.get("default_weight", d.default_weight), "default_weight", 0, 1),
        agents=dict(sorted(agents.items())),
        epoch_authority_min=_number(
            top.get("epoch_authority_min", d.epoch_authority_min), "epoch_authority_min", 0, 1
        ),
        candidates_max=_integer(
            top.get("candidates_max", d.candidates_max), "candidates_max", 1, CANDIDATES_MAX_LIMIT
        ),
        contested_margin=_number(
            consensus.get("contested_margin", d.contested_margin),
            "lenses.consensus.contested_margin",
            0,
            1,
        ),
        min_supporters=_integer(
            skeptic.get("min_supporters", d.min_supporters),
            "lenses.skeptic.min_supporters",
            0,
            1_000_000,
        ),
        threshold=_number(skeptic.get("threshold", d.threshold), "lenses.skeptic.threshold", 0, 1),
    )


def load_policy(path: Path | str | None) -> TrustPolicy:
    """The policy in ``path``; the default policy for None or an empty path."""
    if path is None or str(path) == "":
        return DEFAULT_POLICY
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > POLICY_BYTES_MAX:
            raise PolicyError(f"{file}: {size} bytes, more than the limit of {POLICY_BYTES_MAX}")
        data = file.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{file}: cannot read the trust policy: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{file}: byte {exc.start} is not UTF-8") from None
    return parse_policy(text, str(file))
