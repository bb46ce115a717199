"""Opening untrusted images: limits, bombs, damaged files and non-images all get clear errors."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from PIL import Image

from vicas.images import ImageError, ImageLimits, decode_base64, open_image, read_image_file


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _huge_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG header claiming a huge size, with a tiny compressed body: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * (1 + width // 8) * 16)  # a few rows; decoding the rest would take memory
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_a_normal_image_opens_as_rgb():
    img = open_image(_png(Image.new("L", (40, 30), 128)))
    assert img.mode == "RGB" and img.size == (40, 30)


def test_transparency_is_composited_on_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert open_image(_png(rgba)).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (60, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    assert open_image(buf.getvalue()).size == (20, 60)


def test_too_many_bytes_is_413():
    with pytest.raises(ImageError) as e:
        open_image(_png(Image.new("RGB", (64, 64))), ImageLimits(max_bytes=50))
    assert e.value.status == 413 and "limit" in str(e.value)


def test_too_many_pixels_is_413_without_decoding():
    with pytest.raises(ImageError) as e:
        open_image(_png(Image.new("RGB", (200, 200))), ImageLimits(max_pixels=10_000))
    assert e.value.status == 413 and "200x200" in str(e.value)


def test_a_decompression_bomb_is_refused():
    bomb = _huge_png(100_000, 100_000)  # 10 gigapixels in a few hundred bytes
    assert len(bomb) < 2000
    with pytest.raises(ImageError) as e:
        open_image(bomb)
    assert e.value.status == 413


def test_non_images_and_damaged_images_are_422():
    for data in (b"%PDF-1.4 not an image", b"hello world", b"<svg></svg>"):
        with pytest.raises(ImageError) as e:
            open_image(data)
        assert e.value.status == 422 and "not an image" in str(e.value)
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buf, "JPEG")
    with pytest.raises(ImageError) as e:
        open_image(buf.getvalue()[:200])
    assert e.value.status == 422
    with pytest.raises(ImageError):
        open_image(b"")


def test_base64_and_data_uris():
    raw = _png(Image.new("RGB", (3, 3)))
    assert decode_base64(base64.b64encode(raw).decode()) == raw
    assert decode_base64("data:image/png;base64," + base64.b64encode(raw).decode()) == raw
    with pytest.raises(ImageError, match="base64"):
        decode_base64("not base64 !!")


def test_files_are_checked_before_reading(tmp_path):
    p = tmp_path / "a.png"
    p.write_bytes(_png(Image.new("RGB", (10, 10))))
    assert read_image_file(p).size == (10, 10)
    with pytest.raises(ImageError, match="limit"):
        read_image_file(p, ImageLimits(max_bytes=10))
    with pytest.raises(ImageError, match="cannot read"):
        read_image_file(tmp_path / "missing.png")
