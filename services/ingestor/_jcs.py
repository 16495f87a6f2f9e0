"""RFC 8785 JSON Canonicalization Scheme (JCS) for the JSON values a trust policy holds.

The policy hash (DESIGN section 9.2) is BLAKE3 over these bytes, so any language with a JCS
implementation computes the same hash. Covered: objects (keys sorted by their UTF-16 code
units), arrays, strings (escaped as ECMAScript's JSON.stringify does: ``\\b \\f \\n \\r \\t``,
other controls as ``\\u00xx`` in lowercase hex, ``"`` and ``\\``; everything else raw UTF-8),
finite numbers (formatted as ECMAScript's Number.prototype.toString), booleans and null. No
whitespace is emitted. ``int`` values are treated as the binary64 numbers they denote.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["JcsError", "canonical_json", "format_number"]

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


class JcsError(ValueError):
    """A value that JCS cannot represent (NaN, infinities, an unsupported type)."""


def format_number(value: float) -> str:
    """A finite binary64 number as ECMAScript's Number.prototype.toString writes it."""
    x = float(value)
    if not math.isfinite(x):
        raise JcsError(f"{value!r} is not a finite number")
    if x == 0:
        return "0"  # -0 too
    if x < 0:
        return "-" + format_number(-x)
    # repr gives the shortest digit string that round-trips, the digits ECMAScript requires.
    mantissa, _, exp_text = repr(x).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    n = len(whole) + (int(exp_text) if exp_text else 0)  # value = 0.digits * 10^n
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    sign = "+" if e >= 0 else "-"
    head = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{head}e{sign}{abs(e)}"


def _string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _emit(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int | float):
        out.append(format_number(float(value)))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise JcsError(f"object key {key!r} is not a string")
        out.append("{")
        for i, key in enumerate(sorted(value, key=_utf16_key)):
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _emit(value[key], out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _emit(item, out)
        out.append("]")
    else:
        raise JcsError(f"{type(value).__name__} is not a JSON value")


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON value."""
    out: list[str] = []
    _emit(value, out)
    return "".join(out).encode("utf-8")
