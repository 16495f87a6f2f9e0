"""The 64-bit perceptual hash of a source image (imagehash's pHash).

Stored in ``Assertion.visual_hash``. The 8x8 pHash bit matrix is read row by row, the first bit
as the most significant bit of the 64-bit integer (the same order as imagehash's hex string).
"""

from __future__ import annotations

import io

import imagehash
from PIL import Image, UnidentifiedImageError

from stemedb.errors import InvalidRecord

__all__ = ["hamming_distance", "visual_hash"]


def visual_hash(image_bytes: bytes) -> int:
    """The pHash of a PNG or JPEG image as an unsigned 64-bit integer."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as img:
            img.load()
            h = imagehash.phash(img, hash_size=8)
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidRecord("image", f"is not a readable PNG or JPEG image: {exc}") from exc
    return int(str(h), 16)


def hamming_distance(a: int, b: int) -> int:
    """How many of the 64 bits differ: small distances mean visually similar images."""
    return (a ^ b).bit_count()
