"""AIP-158 pagination: page sizes and opaque page tokens bound to the listing they came from.

A token is URL-safe base64 (unpadded) of::

    version (1 byte, = 1) | tag (8 bytes) | start key of the next page

where ``tag`` is BLAKE3(scope, 0x00, prefix) truncated to 8 bytes, ``scope`` naming the RPC
(``scan``, ``subject``, ``votes``). A token presented with another prefix or to another RPC
fails the tag check and is INVALID_ARGUMENT. The token is not a secret: a client that forges
one can only choose where, under the same prefix, its next page starts.
"""

from __future__ import annotations

import base64
import binascii

from blake3 import blake3

from stemedb.ingestor._errors import InvalidRequest

__all__ = [
    "PAGE_SIZE_DEFAULT",
    "PAGE_SIZE_MAX",
    "PAGE_TOKEN_CHARS_MAX",
    "decode_page_token",
    "encode_page_token",
    "page_size_of",
]

PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 1000
PAGE_TOKEN_CHARS_MAX = 8192  # far above the longest key (an S: key of a 1 KiB subject)
_VERSION = 1
_TAG_BYTES = 8


def page_size_of(requested: int) -> int:
    """0 -> the default; above the maximum -> the maximum; negative -> INVALID_ARGUMENT."""
    if requested < 0:
        raise InvalidRequest(f"page_size must be >= 0, got {requested}")
    if requested == 0:
        return PAGE_SIZE_DEFAULT
    return min(requested, PAGE_SIZE_MAX)


def _tag(scope: bytes, prefix: bytes) -> bytes:
    return blake3(scope + b"\x00" + prefix).digest(_TAG_BYTES)


def encode_page_token(scope: bytes, prefix: bytes, next_key: bytes) -> str:
    raw = bytes((_VERSION,)) + _tag(scope, prefix) + next_key
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_page_token(token: str, scope: bytes, prefix: bytes) -> bytes:
    """The start key a token names; '' means the start of the prefix."""
    if not token:
        return prefix
    if len(token) > PAGE_TOKEN_CHARS_MAX:
        raise InvalidRequest(f"page_token is longer than {PAGE_TOKEN_CHARS_MAX} characters")
    try:
        padded = token + "=" * (-len(token) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidRequest("page_token is malformed") from None
    if len(raw) < 1 + _TAG_BYTES or raw[0] != _VERSION:
        raise InvalidRequest("page_token is malformed")
    if raw[1 : 1 + _TAG_BYTES] != _tag(scope, prefix):
        raise InvalidRequest("page_token was issued for a different prefix or request")
    start = raw[1 + _TAG_BYTES :]
    if not start.startswith(prefix):
        raise InvalidRequest("page_token is malformed")
    return start
