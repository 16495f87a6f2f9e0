"""The trust policy: parsing, clear errors, defaults, and the JCS policy hash."""

from __future__ import annotations

from pathlib import Path

import blake3
import pytest
from stemedb.ingestor._policy import DEFAULT_POLICY, PolicyError, load_policy, parse_policy

KEY_A = "ab" * 32
KEY_B = "CD" * 32


def test_default_policy_canonical_form_and_hash() -> None:
    expected = (
        b'{"agents":{},"candidates_max":10,"default_weight":1,"epoch_authority_min":1,'
        b'"lenses":{"consensus":{"contested_margin":0.1},"recent":{},'
        b'"skeptic":{"min_supporters":2,"threshold":0.6}}}'
    )
    assert DEFAULT_POLICY.canonical() == expected
    assert DEFAULT_POLICY.policy_hash == blake3.blake3(expected).digest()
    assert load_policy(None) is DEFAULT_POLICY
    assert load_policy("") is DEFAULT_POLICY


def test_an_explicit_default_file_has_the_default_hash() -> None:
    text = (
        '{"default_weight": 1.0, "epoch_authority_min": 1, "candidates_max": 10.0,'
        ' "lenses": {"skeptic": {"threshold": 0.60}}}'
    )
    assert parse_policy(text).policy_hash == DEFAULT_POLICY.policy_hash


def test_agents_and_parameters() -> None:
    policy = parse_policy(
        f'{{"default_weight": 0.5, "agents": {{"{KEY_A}": 0.25, "{KEY_B}": 0}},'
        ' "lenses": {"consensus": {"contested_margin": 0.2},'
        ' "skeptic": {"min_supporters": 3, "threshold": 0.7}}}'
    )
    assert policy.weight(bytes.fromhex(KEY_A)) == 0.25
    assert policy.weight(bytes.fromhex(KEY_B)) == 0.0
    assert policy.weight(bytes(32)) == 0.5
    assert (policy.contested_margin, policy.min_supporters, policy.threshold) == (0.2, 3, 0.7)
    # Public keys are lowercased in the effective form, so case does not change the hash.
    assert KEY_B.lower() in policy.canonical().decode()
    same = parse_policy(
        f'{{"agents": {{"{KEY_B.lower()}": 0, "{KEY_A}": 0.25}}, "default_weight": 0.5,'
        ' "lenses": {"consensus": {"contested_margin": 0.2},'
        ' "skeptic": {"threshold": 0.7, "min_supporters": 3}}}'
    )
    assert same.policy_hash == policy.policy_hash
    assert policy.policy_hash != DEFAULT_POLICY.policy_hash


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"default_weight": 1.0,\n "agents": {"x": }}', r"line 2 column 18: invalid JSON"),
        ('{"default_weight": 2}', r"default_weight must be in \[0, 1\]"),
        ('{"default_weight": "1"}', r"default_weight must be a number"),
        ('{"default_wieght": 1}', r"unknown key default_wieght"),
        ('{"agents": {"abc": 1}}', r"agents\.abc: a key must be a public key of 64 hex digits"),
        (f'{{"agents": {{"{KEY_A}": -0.1}}}}', rf"agents\.{KEY_A} must be in \[0, 1\]"),
        (f'{{"agents": {{"{KEY_A}": 1, "{KEY_A.upper()}": 1}}}}', r"appears twice"),
        ('{"lenses": {"skeptik": {}}}', r"unknown key lenses\.skeptik"),
        ('{"lenses": {"skeptic": {"threshold": 1.5}}}', r"lenses\.skeptic\.threshold"),
        ('{"lenses": {"skeptic": {"min_supporters": 1.5}}}', r"min_supporters must be an int"),
        ('{"lenses": {"recent": {"x": 1}}}', r"unknown key lenses\.recent\.x"),
        ('{"candidates_max": 0}', r"candidates_max must be in \[1, 1000\]"),
        ('{"default_weight": 1, "default_weight": 0}', r"duplicate key 'default_weight'"),
        ("[]", r"the policy must be a JSON object"),
    ],
)
def test_malformed_policies_name_the_key_or_line(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(text)


def test_load_policy_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text('{"epoch_authority_min": 0.5}')
    assert load_policy(path).epoch_authority_min == 0.5
    path.write_bytes(b'{"default_weight": \xff}')
    with pytest.raises(PolicyError, match=rf"{path}: byte 19 is not UTF-8"):
        load_policy(path)
    with pytest.raises(PolicyError, match="cannot read the trust policy"):
        load_policy(tmp_path / "missing.json")
