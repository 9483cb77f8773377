"""The one door through which every user-supplied image enters the app.

`load_image` accepts a path, bytes, a binary file, a PIL image or a numpy array and returns a fully
loaded RGB `PIL.Image.Image` with no open file behind it. Everything a user can get wrong (missing
file, empty or huge file, not an image, decompression bomb, corrupt data, odd array) becomes an
`ImageError` with a stable `code`; no raw PIL or OS exception escapes. `sample_photos` lists the
photos that come with the install (scikit-image's), for examples, benchmarks and tests.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from cvdemo.errors import ImageError

MAX_BYTES = 20 * 1024 * 1024  # default byte limit
MAX_PIXELS = 40_000_000  # default pixel limit (width * height)
# A progressive JPEG decodes the whole image once per scan: libjpeg writes 10, mozjpeg about 15. A file that
# repeats scans thousands of times costs seconds to minutes for a few KB, so scans are counted before decoding.
MAX_JPEG_SCANS = 100
# Only these decoders may ever run: no EPS (Ghostscript), no PSD, ICO, ... on user input.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "MPO")
# What Image.open is given: MPO has no opener of its own, the JPEG one returns MPO files.
_OPEN_FORMATS = tuple(f for f in ALLOWED_FORMATS if f != "MPO")
_ACCEPTED_NAMES = ("JPEG", "PNG", "GIF", "WebP", "BMP", "TIFF")  # as users know them
_ACCEPTED = ", ".join(_ACCEPTED_NAMES[:-1]) + " or " + _ACCEPTED_NAMES[-1]
# What broken data makes Pillow's decoders raise. ImageError is a ValueError: never raise it
# inside a `try` that catches these.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError,
                  struct.error, ZeroDivisionError)


SAMPLE_PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg")  # a cat, a cup, an astronaut, a rocket


def sample_photos() -> list[str]:
    """Paths of real photos that ship inside scikit-image (no network needed), in SAMPLE_PHOTOS' order: the
    app's example images, and what the benchmarks and tests classify."""
    import skimage

    data = Path(skimage.__file__).parent / "data"
    return [str(data / name) for name in SAMPLE_PHOTOS]


def load_image(
    src: Any, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """Return `src` as a new, fully loaded RGB image (first frame, EXIF orientation applied).

    `src` may be a path (str or Path), bytes/bytearray, a binary file-like object, a PIL image
    (its first frame is selected with seek(0)) or a numpy array. Byte and pixel limits are
    checked before anything is decoded, so a tiny file claiming a huge size costs nothing.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit decides
        warnings.simplefilter("ignore", UserWarning)  # Pillow's chatter about odd metadata
        return _load(src, max_bytes, max_pixels)


def _load(src: Any, max_bytes: int, max_pixels: int) -> Image.Image:
    if isinstance(src, Image.Image):
        return _decode(src, max_pixels)
    if isinstance(src, np.ndarray):
        return _array_to_rgb(src, max_pixels)
    data = _read_bytes(src, max_bytes)
    try:
        img = Image.open(io.BytesIO(data), formats=_OPEN_FORMATS)
    except Image.UnidentifiedImageError:
        raise _not_an_image(data) from None
    except Image.DecompressionBombError as err:  # over Pillow's hard limit, before our check
        raise _too_many_pixels(None, None, max_pixels, _pixels_in(err)) from None
    except _DECODE_ERRORS as err:
        raise _corrupt(err) from None
    with img:
        if img.format in ("JPEG", "MPO"):
            _check_scans(data)
        return _decode(img, max_pixels)


def _check_scans(data: bytes) -> None:
    """Refuse a JPEG with more than MAX_JPEG_SCANS scans. Start-of-scan markers (FF DA) can't occur inside
    entropy-coded data (a data byte FF is written FF 00), so counting them bounds the scans from above
    (an embedded EXIF thumbnail adds its own one or few)."""
    scans = data.count(b"\xff\xda")
    if scans > MAX_JPEG_SCANS:
        raise ImageError(f"This JPEG has {scans:,} scans (a normal one has about 10; the limit is {MAX_JPEG_SCANS}): "
                         "decoding it would take very long. Re-save it as a baseline JPEG or PNG.",
                         "image.too_many_scans", scans=scans, limit=MAX_JPEG_SCANS)


def to_rgb(img: Image.Image) -> Image.Image:
    """Return a new RGB copy of a loaded image of any mode; alpha is composited on white."""
    if img.mode.startswith("I") or img.mode == "F":  # 16/32-bit and float: scale to 8 bit
        return _array_to_rgb(np.asarray(img), max_pixels=None)
    try:
        if img.mode == "La":  # premultiplied; Pillow only converts it to LA
            img = img.convert("LA")
        if img.has_transparency_data:
            white = Image.new("RGBA", img.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, img.convert("RGBA")).convert("RGB")
        return img.convert("RGB")
    except ValueError:
        raise ImageError(f"Images in colour mode {img.mode!r} are not supported; "
                         "convert it to RGB and try again.", "image.unsupported_mode",
                         mode=img.mode) from None


def _read_bytes(src: Any, max_bytes: int) -> bytes:
    """The raw bytes of a path, bytes or file-like, never reading more than max_bytes + 1."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) > max_bytes:
            raise _too_large(len(src), max_bytes)
        data = bytes(src)
    elif isinstance(src, (str, os.PathLike)):
        data = _read_path(Path(src), max_bytes)
    elif callable(getattr(src, "read", None)):
        try:
            data = src.read(max_bytes + 1)
        except OSError as err:
            raise ImageError(f"The file could not be read ({err}).", "image.unreadable", reason=str(err)) from None
        if not isinstance(data, (bytes, bytearray)):
            raise ImageError("The file was opened in text mode; open it in binary mode ('rb').",
                             "image.text_mode", type=type(src).__name__)
    else:
        raise ImageError(f"Can't read an image from a {type(src).__name__!r} object; pass a "
                         "path, bytes, a binary file, a PIL image or a numpy array.",
                         "image.bad_type",
                         type=type(src).__name__)
    if not data:
        raise ImageError("The file is empty (0 bytes). Choose another file.", "image.empty")
    if len(data) > max_bytes:
        raise _too_large(None, max_bytes)
    return bytes(data)


def _read_path(path: Path, max_bytes: int) -> bytes:
    """Read a regular file after checking its size with os.stat, so a huge file is never read."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError, ValueError):
        raise ImageError(f"No file at {str(path)!r}. Check the path.", "image.not_found",
                         path=str(path)) from None
    except OSError as err:
        raise ImageError(f"{str(path)!r} could not be read ({err.strerror}).", "image.unreadable",
                         path=str(path), reason=err.strerror) from None
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(f"{str(path)!r} is not a file (a folder?). Choose an image file.",
                         "image.not_a_file", path=str(path))
    if info.st_size > max_bytes:
        raise _too_large(info.st_size, max_bytes)
    try:
        with open(path, "rb") as f:
            return f.read(max_bytes + 1)
    except OSError as err:
        raise ImageError(f"{str(path)!r} could not be read ({err.strerror}).", "image.unreadable",
                         path=str(path), reason=err.strerror) from None


def _decode(img: Image.Image, max_pixels: int) -> Image.Image:
    """Check the size from the header, then decode the first frame and convert it to RGB."""
    _check_pixels(img.width, img.height, max_pixels)
    try:
        img.seek(0)
        img.load()
    except Image.DecompressionBombError:
        raise _too_many_pixels(img.width, img.height, max_pixels) from None
    except _DECODE_ERRORS as err:
        raise _corrupt(err) from None
    with contextlib.suppress(Exception):  # a broken EXIF block must not kill a valid image
        img = ImageOps.exif_transpose(img)
    return to_rgb(img)


def _array_to_rgb(arr: np.ndarray, max_pixels: int | None) -> Image.Image:
    """(H,W), (H,W,1), (H,W,3) or (H,W,4) array of bool/int/float -> RGB image."""
    shape_ok = arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3, 4))
    if not shape_ok or arr.size == 0 or arr.dtype.kind not in "buif":
        raise ImageError(f"Can't use an array of shape {arr.shape} and dtype {arr.dtype} as an "
                         "image; expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of bool, "
                         "int or float.", "image.bad_array", shape=arr.shape, dtype=str(arr.dtype))
    if max_pixels is not None:
        _check_pixels(arr.shape[1], arr.shape[0], max_pixels)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] == 4:  # scale colour and alpha separately
        arr = np.concatenate([_to_uint8(arr[:, :, :3]), _to_uint8(arr[:, :, 3:])], axis=2)
    return to_rgb(Image.fromarray(_to_uint8(arr)))


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """Scale any bool/int/float array to uint8: 16-bit /257, float [0,1] *255, else min-max."""
    if a.dtype.kind == "b":
        return a.astype(np.uint8) * 255
    if a.dtype.kind == "u" and a.dtype.itemsize == 1:
        return a
    if a.dtype.kind == "u" and a.dtype.itemsize == 2:
        return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if a.dtype.kind == "f":  # falls through to min-max unless it is in [0, 1]
        a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        if a.min() >= 0 and a.max() <= 1:
            return np.round(a * 255).astype(np.uint8)
    elif a.min() >= 0 and a.max() <= 255:  # other integers, e.g. 32-bit mode "I"
        return a.astype(np.uint8)
    elif a.min() >= 0 and a.max() <= 65535:
        return ((a.astype(np.int64) + 128) // 257).astype(np.uint8)
    a = a.astype(np.float64)
    lo, hi = a.min(), a.max()
    if hi == lo:
        return np.zeros(a.shape, np.uint8)
    return np.round((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width == 0 or height == 0:
        raise ImageError(f"The image is {width}x{height}: it has no pixels.", "image.no_pixels",
                         width=width, height=height)
    if width * height > max_pixels:
        raise _too_many_pixels(width, height, max_pixels)


def _too_many_pixels(width: int | None, height: int | None, limit: int,
                     pixels: int | None = None) -> ImageError:
    if width is not None and height is not None:
        pixels = width * height
    # rounded to megapixels a size just over the limit would read as the limit itself: then say exact counts
    exact = pixels is not None and _megapixels(pixels) == _megapixels(limit)
    amount = (lambda n: f"{n:,} pixels") if exact else _megapixels
    if width is not None and height is not None:
        size = f"{width}x{height} = {amount(pixels)}"
    else:
        size = amount(pixels) if pixels else "too large"
    mp, limit_mp = _apart(pixels, limit, 1e6)
    return ImageError(f"The image is {size}; the limit is {amount(limit)}. "
                      "Downscale it and try again.", "image.too_many_pixels",
                      width=width, height=height, pixels=pixels, limit=limit, mp=mp, limit_mp=limit_mp)


def _apart(n: int | None, limit: int, unit: float) -> tuple[str, str]:
    """n and limit in `unit`s (1e6: megapixels, 2**20: MB), with the fewest decimals (at least one, a trailing
    ".0" dropped) at which a number over the limit no longer reads as the limit: for translated messages."""
    if n is None:  # known only to be over the limit
        shown = f"{limit / unit:,.1f}".removesuffix(".0")
        return f"> {shown}", shown
    for decimals in range(1, 10):
        a, b = (f"{v / unit:,.{decimals}f}" for v in (n, limit))
        if a != b or n == limit:
            break
    return ((a, b) if decimals > 1 else (a.removesuffix(".0"), b.removesuffix(".0")))


def _pixels_in(err: Image.DecompressionBombError) -> int | None:
    """The pixel count in Pillow's message "Image size (N pixels) exceeds limit ..."."""
    match = re.search(r"\((\d+) pixels\)", str(err))
    return int(match.group(1)) if match else None


def _megapixels(n: int) -> str:
    return f"{n / 1e6:,.1f}".removesuffix(".0") + " megapixels" if n >= 100_000 else f"{n} pixels"


def _megabytes(n: int) -> str:
    return f"{n / 2**20:,.1f}".removesuffix(".0") + " MB" if n >= 100_000 else f"{n:,} bytes"


def _too_large(size: int | None, limit: int) -> ImageError:
    size_text = _megabytes(size) if size is not None else f"over {_megabytes(limit)}"
    mb, limit_mb = _apart(size, limit, 2**20)
    return ImageError(f"The file is {size_text}; the limit is {_megabytes(limit)}. "
                      "Compress or downscale it and try again.", "image.too_large_bytes",
                      size=size, limit=limit, mb=mb, limit_mb=limit_mb)


def _corrupt(err: BaseException) -> ImageError:
    return ImageError(f"The image is damaged or incomplete and can't be decoded ({err}). "
                      "Re-export or re-download it and try again.", "image.corrupt", reason=str(err))


def _not_an_image(data: bytes) -> ImageError:
    """Name the format when the bytes look like a common image/document Pillow must not read."""
    head = data[:512]
    kind = None
    brands = head[8:64] if head[4:8] == b"ftyp" else b""  # ISO-BMFF: HEIC, AVIF (and video)
    if b"avif" in brands or b"avis" in brands:
        kind = "AVIF"
    elif any(b in brands for b in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1")):
        kind = "HEIC"
    elif head.startswith(b"%PDF"):
        kind = "PDF"
    elif head.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")):
        kind = "EPS/PostScript"
    elif head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") and b"<svg" in head.lower():
        kind = "SVG"
    if kind:
        return ImageError(f"{kind} is not supported: convert it to JPEG or PNG and try again.",
                          "image.unsupported_format", kind=kind)
    return ImageError(f"This file is not an image in a supported format ({_ACCEPTED}). Choose another file.",
                      "image.not_an_image", formats=", ".join(_ACCEPTED_NAMES))
