"""Tests of the image door, cvdemo.images.load_image. Every fixture is generated here."""
from __future__ import annotations

import io
import os
import random
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image, ImageOps

from cvdemo import images
from cvdemo.errors import ImageError
from cvdemo.images import ALLOWED_FORMATS, load_image

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


# ---------------------------------------------------------------- helpers

def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def noise(size: tuple[int, int] = (64, 48), seed: int = 0) -> Image.Image:
    """An RGB image of random pixels, so that compressed data is spread over the whole file."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, valid-looking RGB PNG whose header claims width x height pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def refused(src: object, code: str, **kwargs: object) -> ImageError:
    with pytest.raises(ImageError) as info:
        load_image(src, **kwargs)
    assert info.value.code == code, str(info.value)
    assert str(info.value)  # a message a user can read
    return info.value


def pixel(img: Image.Image, xy: tuple[int, int] = (0, 0)) -> tuple[int, int, int]:
    assert img.mode == "RGB"
    return img.getpixel(xy)


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tol: int = 3) -> bool:
    return all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True))


# ---------------------------------------------------------------- modes

def p_image(transparent: bool) -> Image.Image:
    img = Image.new("P", (4, 3), 1)
    img.putpalette([*RED, *BLUE] + [0] * 762)
    if transparent:
        img.info["transparency"] = 1
    return img


def image_of(mode: str, values: list) -> Image.Image:
    """A 1-row image of `mode` whose pixels are `values`."""
    img = Image.new(mode, (len(values), 1))
    for x, v in enumerate(values):
        img.putpixel((x, 0), v)
    return img


MODE_CASES = [
    ("1 white", Image.new("1", (4, 3), 1), WHITE),
    ("1 black", Image.new("1", (4, 3), 0), BLACK),
    ("L", Image.new("L", (4, 3), 128), (128, 128, 128)),
    ("LA opaque", Image.new("LA", (4, 3), (10, 255)), (10, 10, 10)),
    ("LA transparent", Image.new("LA", (4, 3), (10, 0)), WHITE),
    ("La", Image.new("LA", (4, 3), (10, 255)).convert("La"), (10, 10, 10)),
    ("P", p_image(transparent=False), BLUE),
    ("P transparent", p_image(transparent=True), WHITE),
    ("PA transparent", Image.new("PA", (4, 3), (0, 0)), WHITE),
    ("RGB", Image.new("RGB", (4, 3), (1, 2, 3)), (1, 2, 3)),
    ("RGBA opaque", Image.new("RGBA", (4, 3), (*RED, 255)), RED),
    ("RGBA transparent", Image.new("RGBA", (4, 3), (*RED, 0)), WHITE),
    ("RGBA half black", Image.new("RGBA", (4, 3), (0, 0, 0, 128)), (127, 127, 127)),
    ("CMYK white", Image.new("CMYK", (4, 3), (0, 0, 0, 0)), WHITE),
    ("CMYK red", Image.new("CMYK", (4, 3), (0, 255, 255, 0)), RED),
    ("YCbCr white", Image.new("YCbCr", (4, 3), (255, 128, 128)), WHITE),
    ("I;16 max", Image.new("I;16", (4, 3), 65535), WHITE),
    ("I;16 257", Image.new("I;16", (4, 3), 257), (1, 1, 1)),
    ("I;16 low", Image.new("I;16", (4, 3), 200), (1, 1, 1)),  # scaled, not clipped
    ("I;16B max", Image.new("I;16B", (4, 3), 65535), WHITE),
    ("I;16L max", Image.new("I;16L", (4, 3), 65535), WHITE),
    ("I 8-bit range", Image.new("I", (4, 3), 200), (200, 200, 200)),
    ("I 16-bit range", Image.new("I", (4, 3), 65535), WHITE),
    ("F half", Image.new("F", (4, 3), 0.5), (128, 128, 128)),
    ("F one", Image.new("F", (4, 3), 1.0), WHITE),
    ("F constant", Image.new("F", (4, 3), 7.5), BLACK),
    ("HSV", Image.new("HSV", (4, 3), (0, 255, 255)), RED),
]


@pytest.mark.parametrize(("img", "expected"), [c[1:] for c in MODE_CASES],
                         ids=[c[0] for c in MODE_CASES])
def test_every_mode_becomes_rgb(img: Image.Image, expected: tuple[int, int, int]) -> None:
    out = load_image(img)
    assert out.mode == "RGB"
    assert out.size == img.size
    assert close_to(pixel(out), expected, tol=2), pixel(out)


def test_32bit_int_beyond_16_bits_is_min_max_scaled() -> None:
    out = load_image(image_of("I", [-1000, 0, 100_000]))
    assert [pixel(out, (x, 0))[0] for x in range(3)] == [0, 3, 255]  # 1000 / 101000 * 255 = 2.5


def test_float_beyond_unit_range_is_min_max_scaled() -> None:
    out = load_image(image_of("F", [-2.0, 0.0, 2.0]))
    assert [pixel(out, (x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_float_nan_and_inf_count_as_zero() -> None:
    out = load_image(image_of("F", [float("nan"), float("inf"), float("-inf"), 1.0]))
    assert [pixel(out, (x, 0))[0] for x in range(4)] == [0, 0, 0, 255]


@pytest.mark.parametrize(("img", "fmt", "expected"), [
    (Image.new("I;16", (5, 4), 65535), "PNG", WHITE),
    (Image.new("CMYK", (5, 4), (0, 255, 255, 0)), "JPEG", RED),
    (Image.new("CMYK", (5, 4), (0, 0, 0, 0)), "TIFF", WHITE),
    (Image.new("F", (5, 4), 1.0), "TIFF", WHITE),
    (Image.new("I", (5, 4), 200), "TIFF", (200, 200, 200)),
    (Image.new("LA", (5, 4), (10, 0)), "PNG", WHITE),
    (Image.new("RGBA", (5, 4), (*RED, 0)), "PNG", WHITE),
    (Image.new("RGBA", (5, 4), (*RED, 0)), "WEBP", WHITE),
    (p_image(transparent=True), "PNG", WHITE),
    (p_image(transparent=True), "GIF", WHITE),
    (Image.new("1", (5, 4), 1), "BMP", WHITE),
    (Image.new("L", (5, 4), 0), "BMP", BLACK),
], ids=lambda v: v if isinstance(v, str) else None)
def test_modes_survive_a_file_round_trip(tmp_path: Path, img: Image.Image, fmt: str,
                                         expected: tuple[int, int, int]) -> None:
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    path = write(tmp_path, f"img.{fmt.lower()}", encode(img, fmt, **kwargs))
    out = load_image(path)
    assert out.mode == "RGB"
    assert out.size == img.size
    assert close_to(pixel(out), expected), pixel(out)


# ---------------------------------------------------------------- EXIF, frames, pages

def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), RED)
    img.paste(BLUE, (20, 0, 40, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = write(tmp_path, "rotated.jpg", encode(img, "JPEG", exif=exif, quality=95))
    out = load_image(path)
    assert out.size == (20, 40)
    assert close_to(pixel(out, (10, 5)), RED, tol=10)  # the left half is now on top
    assert close_to(pixel(out, (10, 35)), BLUE, tol=10)


def test_broken_exif_does_not_kill_a_valid_image(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(img: Image.Image) -> Image.Image:
        raise SyntaxError("bad EXIF")

    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    out = load_image(encode(Image.new("RGB", (6, 4), GREEN), "PNG"))
    assert out.size == (6, 4)
    assert pixel(out) == GREEN


def test_garbage_exif_block_in_a_jpeg_still_loads() -> None:
    data = encode(Image.new("RGB", (6, 4), GREEN), "JPEG", exif=b"Exif\x00\x00MM\x00*garbage!")
    out = load_image(data)
    assert out.size == (6, 4)
    assert close_to(pixel(out), GREEN, tol=10)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (8, 6), c) for c in (RED, GREEN, BLUE)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def test_animated_gif_gives_its_first_frame() -> None:
    data = animated_gif()
    assert Image.open(io.BytesIO(data)).n_frames == 3
    assert pixel(load_image(data)) == RED


def test_pil_animation_on_a_later_frame_gives_its_first_frame() -> None:
    img = Image.open(io.BytesIO(animated_gif()))
    img.seek(2)
    assert pixel(load_image(img)) == RED


def test_multi_page_tiff_gives_its_first_page() -> None:
    pages = [Image.new("RGB", (8, 6), RED), Image.new("RGB", (16, 12), BLUE)]
    data = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    out = load_image(data)
    assert out.size == (8, 6)
    assert pixel(out) == RED


def test_mpo_gives_its_first_image() -> None:
    frames = [Image.new("RGB", (8, 6), RED), Image.new("RGB", (8, 6), BLUE)]
    data = encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    assert close_to(pixel(load_image(data)), RED, tol=10)


# ---------------------------------------------------------------- valid inputs

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_every_allowed_format_loads(fmt: str) -> None:
    out = load_image(encode(Image.new("RGB", (7, 5), BLUE), fmt))
    assert out.mode == "RGB"
    assert out.size == (7, 5)
    assert close_to(pixel(out), BLUE, tol=10)


@pytest.fixture
def png_path(tmp_path: Path) -> Path:
    return write(tmp_path, "ok.png", encode(Image.new("RGB", (7, 5), GREEN), "PNG"))


@pytest.mark.parametrize("kind", ["str", "Path", "bytes", "bytearray", "memoryview",
                                  "BytesIO", "open file"])
def test_byte_sources_all_work(png_path: Path, kind: str) -> None:
    data = png_path.read_bytes()
    if kind == "open file":
        with open(png_path, "rb") as f:
            out = load_image(f)
    else:
        src = {"str": str(png_path), "Path": png_path, "bytes": data,
               "bytearray": bytearray(data), "memoryview": memoryview(data),
               "BytesIO": io.BytesIO(data)}[kind]
        out = load_image(src)
    assert out.mode == "RGB"
    assert out.size == (7, 5)
    assert pixel(out) == GREEN


def test_result_is_detached_from_any_file(png_path: Path) -> None:
    out = load_image(png_path)
    assert type(out) is Image.Image  # not an ImageFile holding a file pointer
    assert getattr(out, "fp", None) is None


def test_pil_input_is_returned_as_a_copy() -> None:
    src = Image.new("RGB", (4, 4), RED)
    out = load_image(src)
    assert out is not src
    out.putpixel((0, 0), BLUE)
    assert src.getpixel((0, 0)) == RED


@pytest.mark.parametrize(("arr", "expected"), [
    (np.full((5, 7, 3), (1, 2, 3), np.uint8), (1, 2, 3)),
    (np.full((5, 7), 9, np.uint8), (9, 9, 9)),
    (np.full((5, 7, 1), 9, np.uint8), (9, 9, 9)),
    (np.full((5, 7, 4), (255, 0, 0, 0), np.uint8), WHITE),
    (np.full((5, 7, 4), (255, 0, 0, 255), np.uint8), RED),
    (np.full((5, 7, 4), (1.0, 0.0, 0.0, 1.0), np.float32), RED),
    (np.full((5, 7, 3), (1.0, 0.5, 0.0), np.float64), (255, 128, 0)),
    (np.full((5, 7), 65535, np.uint16), WHITE),
    (np.full((5, 7), 65535, ">u2"), WHITE),
    (np.full((5, 7), 200, np.int32), (200, 200, 200)),
    (np.full((5, 7), -56, np.int8), BLACK),  # negative and constant: min-max gives zeros
    (np.ones((5, 7), bool), WHITE),
    (np.zeros((5, 7), np.float16), BLACK),
], ids=lambda v: f"{v.dtype}{v.shape}" if isinstance(v, np.ndarray) else None)
def test_numpy_arrays_work(arr: np.ndarray, expected: tuple[int, int, int]) -> None:
    out = load_image(arr)
    assert out.mode == "RGB"
    assert out.size == (7, 5)  # (width, height) from an (H, W) array
    assert pixel(out) == expected


def test_numpy_float_outside_unit_range_is_min_max_scaled() -> None:
    out = load_image(np.array([[-5.0, 0.0, 5.0]]))
    assert [pixel(out, (x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_non_contiguous_array_works() -> None:
    arr = np.zeros((10, 14, 3), np.uint8)
    arr[::2, ::2] = RED
    out = load_image(arr[::2, ::2])
    assert out.size == (7, 5)
    assert pixel(out, (3, 3)) == RED


# ---------------------------------------------------------------- refusals

def test_zero_byte_file(tmp_path: Path) -> None:
    refused(write(tmp_path, "empty.jpg", b""), "image.empty")
    refused(b"", "image.empty")
    refused(io.BytesIO(), "image.empty")


def test_image_without_pixels() -> None:
    refused(Image.new("RGB", (0, 5)), "image.no_pixels")


def test_text_file_renamed_jpg(tmp_path: Path) -> None:
    err = refused(write(tmp_path, "notes.jpg", b"just some notes\n" * 20), "image.not_an_image")
    assert "JPEG" in str(err) and "PNG" in str(err)  # says what is accepted


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file_is_corrupt(tmp_path: Path, fmt: str) -> None:
    data = encode(noise(), fmt)
    refused(write(tmp_path, "cut." + fmt.lower(), data[: len(data) // 2]), "image.corrupt")


def test_random_garbage_is_not_an_image() -> None:
    refused(random.Random(0).randbytes(2000), "image.not_an_image")


def test_too_many_bytes(tmp_path: Path, png_path: Path) -> None:
    data = png_path.read_bytes()
    limit = len(data) - 1
    err = refused(png_path, "image.too_large_bytes", max_bytes=limit)
    assert (err.params["size"], err.params["limit"]) == (len(data), limit)
    assert err.params["mb"] != err.params["limit_mb"]  # one byte over still reads as over, in any language
    refused(data, "image.too_large_bytes", max_bytes=limit)
    refused(io.BytesIO(data), "image.too_large_bytes", max_bytes=limit)
    assert load_image(png_path, max_bytes=len(data)).size == (7, 5)  # exactly at the limit


def test_huge_file_is_refused_without_reading_it(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "huge.png"
    with open(path, "wb") as f:  # a sparse file: big on stat, nothing on disk
        f.truncate(images.MAX_BYTES + 1)

    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened")

    monkeypatch.setattr("builtins.open", no_open)
    refused(path, "image.too_large_bytes")


@pytest.mark.timeout(10)
def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = png_claiming(100_000, 100_000)
    assert len(bomb) < 500
    start = time.perf_counter()
    err = refused(bomb, "image.too_many_pixels")
    # Even a caller allowing more pixels than Pillow's own hard limit gets our typed error.
    refused(bomb, "image.too_many_pixels", max_pixels=10**12)
    assert time.perf_counter() - start < 2
    assert err.params["pixels"] == 10**10
    assert "10,000 megapixels; the limit is 40 megapixels. Downscale it" in str(err)


@pytest.mark.timeout(10)
def test_header_is_checked_before_decoding() -> None:
    # 4000 x 3000 is below Pillow's own limits: only our check stands in the way.
    err = refused(png_claiming(4000, 3000), "image.too_many_pixels", max_pixels=1_000_000)
    assert err.params == {"width": 4000, "height": 3000, "pixels": 12_000_000,
                          "limit": 1_000_000, "mp": "12", "limit_mp": "1"}
    assert "4000x3000 = 12 megapixels; the limit is 1 megapixels" in str(err)


def test_just_over_a_small_pixel_limit() -> None:
    data = encode(Image.new("RGB", (11, 10)), "PNG")
    err = refused(data, "image.too_many_pixels", max_pixels=109)
    assert {k: err.params[k] for k in ("width", "height", "pixels", "limit")} == {"width": 11, "height": 10,
                                                                                "pixels": 110, "limit": 109}
    assert load_image(data, max_pixels=110).size == (11, 10)
    refused(Image.new("RGB", (11, 10)), "image.too_many_pixels", max_pixels=109)
    refused(np.zeros((10, 11, 3), np.uint8), "image.too_many_pixels", max_pixels=109)


SVG = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" '
       b'height="10"><rect width="10" height="10"/></svg>')


@pytest.mark.parametrize(("name", "data", "named"), [
    ("drawing.svg", SVG, "SVG"),
    ("doc.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n", "PDF"),
    ("photo.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "HEIC"),
    ("photo.avif", b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 64,
     "AVIF"),
])
def test_documents_and_unsupported_formats_say_what_they_are(
        tmp_path: Path, name: str, data: bytes, named: str) -> None:
    err = refused(write(tmp_path, name, data), "image.unsupported_format")
    assert f"{named} is not supported" in str(err)


def test_eps_never_reaches_ghostscript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    eps = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\n"
           b"newpath 0 0 moveto 10 10 lineto stroke\nshowpage\n%%EOF\n")
    assert Image.open(io.BytesIO(eps)).format == "EPS"  # Pillow would take it, unfiltered

    def no_ghostscript(*args: object, **kwargs: object) -> None:
        raise AssertionError("Ghostscript was called")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", no_ghostscript)
    assert "EPS" not in ALLOWED_FORMATS
    refused(write(tmp_path, "figure.eps", eps), "image.unsupported_format")


def test_missing_path(tmp_path: Path) -> None:
    err = refused(tmp_path / "nope.jpg", "image.not_found")
    assert "nope.jpg" in str(err)
    refused(str(tmp_path / "nope.jpg"), "image.not_found")
    refused(str(tmp_path / "nope.jpg" / "deeper.jpg"), "image.not_found")
    refused("bad\0name.jpg", "image.not_found")


def test_directory(tmp_path: Path) -> None:
    refused(tmp_path, "image.not_a_file")


@pytest.mark.parametrize("src", [42, 3.5, None, ["a.png"], {"path": "a.png"}])
def test_wrong_python_type(src: object) -> None:
    refused(src, "image.bad_type")


def test_text_mode_file(png_path: Path) -> None:
    with open(png_path, encoding="latin-1") as f:
        refused(f, "image.text_mode")


@pytest.mark.parametrize("arr", [
    np.zeros(10, np.uint8),
    np.zeros((4, 4, 5), np.uint8),
    np.zeros((4, 4, 2), np.uint8),
    np.zeros((2, 4, 4, 3), np.uint8),
    np.zeros((0, 4, 3), np.uint8),
    np.zeros((4, 4), np.complex64),
    np.full((4, 4), None, object),
    np.full((4, 4), "a"),
    np.array(5),
], ids=lambda a: f"{a.dtype}{a.shape}")
def test_bad_arrays(arr: np.ndarray) -> None:
    err = refused(arr, "image.bad_array")
    assert str(arr.shape) in str(err)


def test_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        load_image(b"not an image")


FUZZ_FORMATS = ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"]


@pytest.mark.timeout(60)
@pytest.mark.filterwarnings("error")  # not even a warning may escape
@pytest.mark.parametrize("fmt", FUZZ_FORMATS)
def test_damaged_files_never_raise_raw_exceptions(fmt: str) -> None:
    """Truncate and flip bytes of a valid file: load_image returns RGB or raises ImageError."""
    data = encode(noise((24, 16)), fmt)
    rng = random.Random(fmt)
    variants = [data[:cut] for cut in range(1, len(data), max(1, len(data) // 25))]
    for _ in range(40):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        variants.append(bytes(damaged))
    for variant in variants:
        try:
            out = load_image(variant, max_pixels=1_000_000)
        except ImageError:
            continue
        assert out.mode == "RGB"


# ---------------------------------------------------------------- no file handle left open

def open_paths() -> list[str]:
    fd_dir = "/proc/self/fd"
    paths = []
    for fd in os.listdir(fd_dir):
        try:
            paths.append(os.readlink(os.path.join(fd_dir, fd)))
        except OSError:
            pass
    return paths


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize("name", ["ok.png", "anim.gif", "cut.jpg", "notes.jpg"])
def test_no_file_handle_left_open(tmp_path: Path, name: str) -> None:
    data = {"ok.png": encode(noise(), "PNG"), "anim.gif": animated_gif(),
            "cut.jpg": encode(noise(), "JPEG")[:500], "notes.jpg": b"hello"}[name]
    path = write(tmp_path, name, data)
    try:
        load_image(path)
    except ImageError:
        pass
    assert str(path) not in open_paths()
    path.rename(tmp_path / "moved")  # and the file can be moved away at once


def repeated_scans(times: int) -> bytes:
    """A progressive JPEG whose last scan is repeated `times` times: valid, small, and (without the scan
    count) decoded once per scan: the "few KB that take minutes" attack."""
    data = encode(noise((96, 96)), "JPEG", progressive=True)
    last, end = data.rfind(b"\xff\xda"), data.rfind(b"\xff\xd9")
    return data[:end] + data[last:end] * times + data[end:]


def test_progressive_jpegs_decode_and_repeated_scans_are_refused_before_decoding(monkeypatch) -> None:
    normal = encode(noise((96, 96)), "JPEG", progressive=True)
    assert 5 <= normal.count(b"\xff\xda") <= 20 and load_image(normal).size == (96, 96)
    assert load_image(repeated_scans(80)).size == (96, 96)  # 90 scans: odd but allowed
    bomb, decoded, load = repeated_scans(2000), [], Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self) or load(self))
    with pytest.raises(ImageError) as err:
        load_image(bomb)
    assert err.value.code == "image.too_many_scans" and err.value.params["scans"] == 2010
    assert "2,010 scans" in str(err.value) and not decoded  # refused from the bytes alone


def test_a_size_just_over_the_limit_says_exact_counts() -> None:
    """40,000,001 pixels rounded to megapixels would read "40 megapixels; the limit is 40 megapixels"."""
    err = images._too_many_pixels(40_000_001, 1, images.MAX_PIXELS)
    assert "40000001x1 = 40,000,001 pixels; the limit is 40,000,000 pixels" in str(err)
    assert "= 50 megapixels; the limit is 40 megapixels" in str(images._too_many_pixels(10_000, 5_000, 40_000_000))


def test_korean_refusals_carry_the_same_figures_in_megapixels_and_mb() -> None:
    from cvdemo.ui.i18n import message_text

    assert "(48메가픽셀; 한도는 40메가픽셀)" in message_text(images._too_many_pixels(8000, 6000, 40_000_000), "ko")
    assert "(40.000001메가픽셀; 한도는 40.000000메가픽셀)" in message_text(
        images._too_many_pixels(40_000_001, 1, 40_000_000), "ko")  # just over: still apart
    assert "(60 MB; 한도는 50 MB)" in message_text(images._too_large(60 * 2**20, 50 * 2**20), "ko")
    assert "(> 50 MB; 한도는 50 MB)" in message_text(images._too_large(None, 50 * 2**20), "ko")
