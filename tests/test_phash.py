"""The perceptual hash of real PNG and JPEG bytes."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from stemedb.errors import InvalidRecord
from stemedb.phash import hamming_distance, visual_hash


def _image(fmt: str, shift: int = 0, size: int = 128) -> bytes:
    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    for i in range(0, size, 16):
        draw.rectangle((i + shift, 0, i + 7 + shift, size // 2), fill=255)
    draw.ellipse((20, 70, 100, 120), fill=180)
    buf = io.BytesIO()
    img.save(buf, format=fmt, quality=90) if fmt == "JPEG" else img.save(buf, format=fmt)
    return buf.getvalue()


def test_png_and_jpeg_of_same_picture_are_close() -> None:
    png = visual_hash(_image("PNG"))
    jpg = visual_hash(_image("JPEG"))
    assert 0 <= png < 2**64
    assert hamming_distance(png, jpg) <= 6


def test_different_pictures_are_far() -> None:
    a = visual_hash(_image("PNG"))
    noise = Image.effect_noise((128, 128), 100)
    buf = io.BytesIO()
    noise.save(buf, format="PNG")
    b = visual_hash(buf.getvalue())
    assert hamming_distance(a, b) >= 12


def test_deterministic() -> None:
    data = _image("PNG", shift=3)
    assert visual_hash(data) == visual_hash(data)


def test_not_an_image() -> None:
    with pytest.raises(InvalidRecord, match="image"):
        visual_hash(b"definitely not a png")
