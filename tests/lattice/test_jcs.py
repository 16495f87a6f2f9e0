"""RFC 8785 (JCS) serialization: the RFC's own number and string vectors."""

from __future__ import annotations

import json
import struct

import pytest
from stemedb.ingestor._jcs import JcsError, canonical_json, format_number

# RFC 8785 appendix B: IEEE-754 bit patterns and their ECMAScript text.
NUMBER_VECTORS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "text"), NUMBER_VECTORS)
def test_number_formatting(bits: str, text: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    assert format_number(value) == text


def test_small_numbers_and_integers() -> None:
    assert format_number(1.0) == "1"
    assert format_number(10) == "10"
    assert format_number(0.1) == "0.1"
    assert format_number(0.25) == "0.25"
    assert format_number(1.645) == "1.645"
    assert format_number(1e-7) == "1e-7"
    assert format_number(123e-20) == "1.23e-18"


def test_rfc_example_object() -> None:
    source = (
        '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],'
        '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        '"literals":[null,true,false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(json.loads(source)) == expected.encode("utf-8")


def test_keys_sort_by_utf16_code_units() -> None:
    # U+1F600 (a surrogate pair, D83D DE00) sorts before U+FB33 in UTF-16, after it in UTF-32.
    value = {"\ufb33": 1, "\U0001f600": 2, "a": 3, "B": 4}
    assert canonical_json(value) == '{"B":4,"a":3,"😀":2,"שּׁ":1}'.replace("שּׁ", "\ufb33").encode(
        "utf-8"
    )


def test_refuses_what_json_cannot_hold() -> None:
    for bad in (float("nan"), float("inf"), {1: 2}, b"bytes"):
        with pytest.raises(JcsError):
            canonical_json(bad)
