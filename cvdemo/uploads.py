"""A user's own images -> a `Dataset`. This runs as a public multi-user app, so every input here is
treated as hostile: this module is where uploads are limited, checked and reported on.

- from_class_files({"cat": [...], "dog": [...]}): uploads grouped by class.
- from_zip(zip): a zip of class folders ("cat/1.jpg"; one common root folder is stripped), read in
  memory after every member has been checked (names, links, sizes, compression ratio, encryption).
- from_folder(path): a directory of class folders (for the CLI); links out of it are not followed.
- export_zip(dataset, path): a dataset written back as a zip of class folders that from_zip reads.
A folder (or class) named "unlabeled" is not a class: its images go to `Dataset.unlabeled`.
Every image enters through `images.load_image` and is shrunk at once (`shrink`). Files that can't be
used are skipped and reported in the returned messages (`Note`s, at most MAX_MESSAGES); what makes
the whole input unusable raises `DatasetError` with a stable code. More than `max_images` usable
images is refused, not truncated. The limits are the constants below, and MAX_CLASSES, imported from
`cvdemo.datasets` (`check_trainable` applies it too).

What a dataset is, the built-in ones and `check_trainable` are in `cvdemo.datasets`.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import images as _images
from .datasets import MAX_CLASSES, Dataset, DatasetError
from .errors import ImageError, Note

MAX_IMAGES = 2000  # usable images per dataset (labeled + unlabeled); more is refused, not truncated
STORE_SIDE = 288  # stored images have the shorter side at most this (the model sees 224 crops)
STORE_LONG_SIDE = 2 * STORE_SIDE  # ... and the longer side at most this (caps panoramas' memory)
MAX_ZIP_MEMBERS = 5000
MAX_ZIP_TOTAL = 2**30  # 1 GiB: sum of the declared uncompressed sizes of all members
MAX_ZIP_RATIO = 100  # uncompressed / compressed, per member
ZIP_RATIO_FROM = 2**20  # the ratio is checked on members declaring more than this (1 MiB)
MAX_MEMBER_BYTES = _images.MAX_BYTES
MAX_CLASS_NAME = 60  # characters
MAX_MESSAGES = 200  # skip messages kept; the rest are counted in one last line
UNLABELED = "unlabeled"  # the folder / class name whose images have no label

_UNLABELED_NAMES = {"unlabeled", "unlabelled"}
_RESERVED_NAMES = {"__macosx"}
_JUNK_FILES = {".ds_store", "thumbs.db", "desktop.ini", "icon\r"}  # skipped without a message
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError,
                ValueError)


class _Skip(Exception):
    """One file is skipped; the message says why."""


def shrink(image: Image.Image) -> Image.Image:
    """`image` scaled down (aspect kept) so that its shorter side is at most STORE_SIDE and its longer
    side at most STORE_LONG_SIDE. Never upscales; an image already small enough is returned as is."""
    w, h = image.size
    scale = min(STORE_SIDE / max(min(w, h), 1), STORE_LONG_SIDE / max(w, h, 1))
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def clean_class_name(name: Any) -> str:
    """A class name as stored: NFC, no control/format characters, whitespace collapsed, path
    separators and ':' replaced by '-', no leading dots, at most MAX_CLASS_NAME characters.
    Returns '' when nothing is left."""
    text = unicodedata.normalize("NFC", str(name))
    text = "".join(" " if ch.isspace() else ch for ch in text)
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("C"))
    text = re.sub(r"[/\\:]", "-", text)
    text = " ".join(text.split()).lstrip(". ")
    return text[:MAX_CLASS_NAME].rstrip()


def file_stem(name: Any, limit: int = 48) -> str:
    """A name (a dataset's: a zip's or folder's, which may be long or all emoji) as a file-name stem that every file
    system takes: letters, digits, '.', '-' and '_' kept (Hangul too), the rest '-', at most `limit` bytes in
    UTF-8; "dataset" when nothing is left."""
    stem = re.sub(r"[^\w.-]+", "-", unicodedata.normalize("NFC", str(name))).strip("-.")
    while len(stem.encode()) > limit:
        stem = stem[:-1]
    return stem.rstrip("-.") or "dataset"


def class_key(name: Any) -> str:
    """What two class names must share to be the same class: cleaned, case ignored."""
    return clean_class_name(name).casefold()


def from_class_files(files: dict[str, list], *, max_images: int = MAX_IMAGES) -> tuple[Dataset, list[str]]:
    """Build a dataset from {class name: [file, ...]}; a file is anything `images.load_image` takes
    (path, bytes, binary file, PIL image, numpy array). A class named "unlabeled" is the unlabeled
    pool. Returns the dataset and messages about skipped files. Class names are cleaned
    (`clean_class_name`); empty or duplicate (case-insensitive) names raise DatasetError.
    Classes left with no usable image are dropped (with a message)."""
    names = _class_names(files)

    def items(raw: Any) -> Iterator[tuple[str, Callable[[], Image.Image]]]:
        for i, src in enumerate(_as_list(files[raw])):
            yield f"{names[raw] or UNLABELED}/{_source_name(src, i)}", lambda src=src: _images.load_image(src)

    builder = _Builder(max_images)
    for raw in files:
        builder.add_all(names[raw], items(raw))
    return builder.finish("custom", "uploaded images"), builder.messages()


def from_zip(path_or_bytes: Any, *, max_images: int = MAX_IMAGES) -> tuple[Dataset, list[str]]:
    """Build a dataset from a zip of class folders ("cat/1.jpg", or "pets/cat/1.jpg": one common root
    folder is stripped; "unlabeled/" holds images with no class). Nothing is extracted to disk.

    Every member is checked before anything is decompressed; an unsafe zip (a name with '..', an
    absolute or drive path, a link or special file, a member compressed more than MAX_ZIP_RATIO
    times, encryption, too many members or too many bytes in total) is refused as a whole.
    Oversized members, non-images, hidden files and files outside class folders are skipped with a
    message; macOS/Windows junk (__MACOSX/, .DS_Store, ._*, Thumbs.db) silently."""
    source, label = _zip_source(path_or_bytes)
    try:
        zf = _open_zip(source)
        with zf:
            infos = zf.infolist()
            _check_members(infos)
            notes = _Notes()
            entries = []
            for info in infos:
                parts = _member_parts(info.filename)
                if info.is_dir() or not parts or _junk(parts, notes, info.filename):
                    continue
                entries.append((parts, info))
            root, entries = _strip_root(entries)
            grouped = _group(entries, notes, lambda info: _display(info.filename))
            names = _class_names(grouped)

            def items(infos_: list[zipfile.ZipInfo]) -> Iterator[tuple[str, Callable[[], Image.Image]]]:
                for info in sorted(infos_, key=lambda i: i.filename):
                    if info.file_size > MAX_MEMBER_BYTES:
                        size, limit = _images._megabytes(info.file_size), _images._megabytes(MAX_MEMBER_BYTES)
                        notes.add(Note(f"{_display(info.filename)}: skipped, it is {size}; the limit is {limit}.",
                                       "dataset.skipped_too_big", file=_display(info.filename), size=size,
                                       limit=limit))
                        continue
                    yield _display(info.filename), lambda info=info: _images.load_image(
                        _read_member(zf, info), max_bytes=MAX_MEMBER_BYTES)

            builder = _Builder(max_images, notes)
            for raw in sorted(grouped, key=_sort_key):
                builder.add_all(names[raw], items(grouped[raw]))
            name = root or clean_class_name(Path(label).stem) or "upload"
            return builder.finish(name, f"from {_display(label)}"), builder.messages()
    finally:
        if source is not path_or_bytes and hasattr(source, "close"):
            source.close()


def from_folder(path: str | os.PathLike, *, max_images: int = MAX_IMAGES) -> tuple[Dataset, list[str]]:
    """Build a dataset from a directory of class folders ("unlabeled/" holds images with no class).
    Links are followed only when they stay inside the folder; linked sub-folders are not entered."""
    root = Path(path)
    try:
        info = root.stat()
    except OSError:
        raise DatasetError(f"No folder at {str(root)!r}. Check the path.", "dataset.not_found",
                           path=str(root)) from None
    if not stat.S_ISDIR(info.st_mode):
        raise DatasetError(f"{str(root)!r} is not a folder. Give a folder of class folders.",
                           "dataset.not_a_folder", path=str(root))
    real_root = root.resolve()
    notes = _Notes()
    entries: list[tuple[list[str], Path]] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if _junk([entry.name], notes, entry.name):
            continue
        if entry.is_dir(follow_symlinks=False):
            entries.append(([entry.name, ""], Path(entry.path)))  # a class folder, walked lazily
        elif entry.is_symlink():
            notes.add(Note(f"{_display(entry.name)}: a link, not followed.", "dataset.link_not_followed",
                           file=_display(entry.name)))
        else:
            notes.add(_outside_class_folder(_display(entry.name)))
    grouped = _group(entries, notes, str)
    names = _class_names(grouped)

    def items(folder: Path) -> Iterator[tuple[str, Callable[[], Image.Image]]]:
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
            here = Path(dirpath)
            rel = here.relative_to(root)
            for d in list(dirnames):
                if (here / d).is_symlink():
                    notes.add(Note(f"{_display(str(rel / d))}/: a linked folder, not followed.",
                                   "dataset.link_not_followed", file=f"{_display(str(rel / d))}/"))
                    dirnames.remove(d)
                elif _junk([d, ""], notes, str(rel / d) + "/", quiet_hidden=False):
                    dirnames.remove(d)
            dirnames.sort()
            for name in sorted(filenames):
                label = _display(str(rel / name))
                if _junk([name], notes, label):
                    continue
                file = here / name
                if file.is_symlink():
                    target = file.resolve()
                    if not target.is_relative_to(real_root):
                        notes.add(Note(f"{label}: a link to outside the folder, skipped.", "dataset.link_outside",
                                       file=label))
                        continue
                    file = target
                yield label, lambda file=file: _images.load_image(file)

    builder = _Builder(max_images, notes)
    for raw in sorted(grouped, key=_sort_key):
        for folder in grouped[raw]:
            builder.add_all(names[raw], items(folder))
    name = clean_class_name(real_root.name) or "folder"
    return builder.finish(name, f"from folder {_display(root.name)}"), builder.messages()


def export_zip(dataset: Dataset, path: str | os.PathLike) -> Path:
    """Write `dataset` as a zip of class folders ("cat/0001.png", unlabeled images in "unlabeled/")
    that `from_zip` reads back. Written to a temporary file next to `path`, then renamed over it."""
    path = Path(path)
    names = _class_names(dataset.classes, limit=False)
    folders = [names[c] for c in dataset.classes]
    if any(n is None for n in folders):
        raise DatasetError(f"A class can't be named '{UNLABELED}' in an exported dataset (that folder holds "
                           "the unlabeled images); rename it.", "dataset.bad_class_name", name=UNLABELED)
    groups = [(folders[label], [img for img, y in zip(dataset.images, dataset.labels) if y == label])
              for label in range(len(dataset.classes))]
    groups.append((UNLABELED, list(dataset.unlabeled)))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
                for folder, imgs in groups:
                    width = max(4, len(str(len(imgs))))
                    for i, img in enumerate(imgs, 1):
                        buf = io.BytesIO()
                        (img if img.mode in ("RGB", "L") else _images.to_rgb(img)).save(buf, "PNG")
                        member = zipfile.ZipInfo(f"{folder}/{i:0{width}d}.png")
                        member.external_attr = (stat.S_IFREG | 0o644) << 16
                        zf.writestr(member, buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --- helpers ---------------------------------------------------------------------------------

class _Notes:
    """Skip messages, at most MAX_MESSAGES of them plus a count of the rest."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.more = 0

    def add(self, message: str) -> None:
        if len(self.items) < MAX_MESSAGES:
            self.items.append(message)
        else:
            self.more += 1

    def list(self) -> list[str]:
        more = Note(f"... and {self.more} more files skipped.", "dataset.more_skipped", n=self.more)
        return self.items + ([more] if self.more else [])


class _Builder:
    """Decodes, shrinks and de-duplicates images one at a time; counts them against max_images."""

    def __init__(self, max_images: int, notes: _Notes | None = None) -> None:
        self.max_images = max_images
        self.notes = notes or _Notes()
        self.groups: dict[str | None, list[Image.Image]] = {}
        self.seen: dict[bytes, set[str | None]] = {}  # image digest -> classes holding it
        self.count = 0

    def add_all(self, cls: str | None, items: Iterable[tuple[str, Callable[[], Image.Image]]]) -> None:
        group = self.groups.setdefault(cls, [])
        for label, load in items:
            try:
                image = load()
            except (ImageError, _Skip) as err:
                # keep the message, not the frames: a traceback would keep the half-decoded image alive
                err.__traceback__ = err.__context__ = err.__cause__ = None
                self.notes.add(Note(f"{label}: skipped, {_lower_first(str(err))}", "dataset.skipped", file=label,
                                    reason=err if isinstance(err, ImageError) else str(err)))
                continue
            size = image.size
            image = shrink(image)
            digest = hashlib.blake2b(f"{size}{image.size}".encode() + image.tobytes(), digest_size=16).digest()
            holders = self.seen.setdefault(digest, set())
            if cls in holders:
                where = "the unlabeled images" if cls is None else repr(cls)
                self.notes.add(Note(f"{label}: skipped, the same image is already in {where}.",
                                    "dataset.duplicate", file=label, where=UNLABELED if cls is None else repr(cls)))
                continue
            if holders:
                others = ", ".join(sorted(repr(c) if c else UNLABELED for c in holders))
                self.notes.add(Note(f"{label}: the same image is also in {others}; kept in both (check the labels).",
                                    "dataset.duplicate_other_class", file=label, others=others))
            holders.add(cls)
            self.count += 1
            if self.count > self.max_images:
                raise DatasetError(f"More than {self.max_images} images: the limit is {self.max_images} per "
                                   "dataset. Remove some images (or split the dataset) and try again.",
                                   "dataset.too_many_images", limit=self.max_images)
            group.append(image)

    def finish(self, name: str, source: str) -> Dataset:
        classes, imgs, labels = [], [], []
        for cls, group in self.groups.items():
            if cls is None:
                continue
            if not group:
                self.notes.add(Note(f"{cls}: no usable images, class left out.", "dataset.class_left_out", name=cls))
                continue
            labels += [len(classes)] * len(group)
            classes.append(cls)
            imgs += group
        unlabeled = self.groups.get(None, [])
        if not imgs and not unlabeled:
            detail = " ".join(m for m in self.notes.items if ": skipped" in m or ": not in" in m)
            raise DatasetError("No usable images found. Put JPEG or PNG images in folders named after their class."
                               + (f" Skipped: {_display(detail, 400)}" if detail else ""), "dataset.empty",
                               messages=self.notes.list())
        description = (f"{_plural(len(imgs), 'image')} in {_plural(len(classes), 'class')}"
                       + (f" + {len(unlabeled)} unlabeled" if unlabeled else "")
                       + f", {source}; stored with the shorter side <= {STORE_SIDE} px")
        return Dataset(name, classes, imgs, np.array(labels, dtype=np.int64), description, list(unlabeled))

    def messages(self) -> list[str]:
        return self.notes.list()


def _class_names(raw_names: Iterable[Any], limit: bool = True) -> dict[Any, str | None]:
    """raw name -> cleaned class name (None for the unlabeled pool); refuses bad, duplicate or too many."""
    names: dict[Any, str | None] = {}
    seen: dict[str, Any] = {}
    for raw in raw_names:
        name, key = clean_class_name(raw), class_key(raw)
        if not name:
            raise DatasetError(f"The class name {_display(str(raw))!r} is empty once cleaned; give every class a "
                               "name.", "dataset.empty_class_name", name=_display(str(raw)))
        if key in _RESERVED_NAMES:
            raise DatasetError(f"'{name}' can't be a class name; rename it.", "dataset.bad_class_name", name=name)
        if key in seen:
            raise DatasetError(f"Two classes have the same name: {_display(str(seen[key]))!r} and "
                               f"{_display(str(raw))!r} (names are compared ignoring case and extra spaces). "
                               "Rename or merge them.", "dataset.duplicate_class", name=name,
                               first=_display(str(seen[key])), second=_display(str(raw)))
        seen[key] = raw
        names[raw] = None if key in _UNLABELED_NAMES else name
    classes = sum(1 for n in names.values() if n is not None)
    if limit and classes > MAX_CLASSES:
        raise DatasetError(f"{classes} classes; the limit is {MAX_CLASSES}. Merge or remove some classes.",
                           "dataset.too_many_classes", classes=classes, limit=MAX_CLASSES)
    return names


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]  # one file given on its own


def _source_name(src: Any, index: int) -> str:
    """A short name for messages: the file name of a path or named file, else '#<n>'."""
    name = src if isinstance(src, (str, os.PathLike)) else getattr(src, "name", None)
    if isinstance(name, (str, os.PathLike)) and not isinstance(src, Image.Image):
        return _display(Path(name).name)
    return f"#{index + 1}"


def _display(text: str, limit: int = 120) -> str:
    """A name safe to show: control characters as '?', long names cut."""
    text = "".join("?" if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}{'es' if word.endswith('s') else 's'}"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def _sort_key(raw: Any) -> tuple[str, str]:
    return (clean_class_name(raw).casefold(), str(raw))


def _junk(parts: list[str], notes: _Notes, label: str, quiet_hidden: bool = False) -> bool:
    """True if the file is to be skipped: OS junk silently, other hidden files with a message."""
    base = parts[-1] or (parts[-2] if len(parts) > 1 else "")
    if any(p.casefold() == "__macosx" for p in parts) or base.casefold() in _JUNK_FILES or base.startswith("._"):
        return True
    if any(p.startswith(".") for p in parts):
        if not quiet_hidden:
            notes.add(Note(f"{_display(label)}: hidden file, skipped.", "dataset.hidden_file", file=_display(label)))
        return True
    return False


def _outside_class_folder(file: str) -> Note:
    return Note(f"{file}: not in a class folder, skipped (put images in folders named after their class).",
                "dataset.outside_class_folder", file=file)


def _group(entries: list[tuple[list[str], Any]], notes: _Notes, label: Callable[[Any], str]) -> dict[str, list]:
    """{top folder: [item, ...]}; files outside any folder are reported and dropped."""
    grouped: dict[str, list] = {}
    for parts, item in entries:
        if len(parts) < 2:
            notes.add(_outside_class_folder(label(item)))
            continue
        grouped.setdefault(parts[0], []).append(item)
    return grouped


def _strip_root(entries: list[tuple[list[str], Any]]) -> tuple[str | None, list[tuple[list[str], Any]]]:
    """Drop one folder that holds everything ("pets/cat/1.jpg" -> "cat/1.jpg") when it has sub-folders."""
    roots = {parts[0] for parts, _ in entries}
    if len(roots) != 1 or not any(len(parts) >= 3 for parts, _ in entries):
        return None, entries
    root = roots.pop()
    if root.casefold() in _UNLABELED_NAMES:
        return None, entries
    return clean_class_name(root) or None, [(parts[1:], item) for parts, item in entries]


# --- zip safety: every member checked before anything is decompressed ----------------------------

def _unsafe(message: str, member: str, reason: str, **params: object) -> DatasetError:
    return DatasetError(f"This zip is refused: member {_display(member)!r} {message}.", f"dataset.zip_{reason}",
                        member=_display(member), reason=reason, **params)


def _member_parts(name: str) -> list[str]:
    """The path components of a member name ('\\' read as '/', '.' and empty ones dropped); raises
    DatasetError for names that point outside the archive."""
    if "\0" in name:
        raise _unsafe("has a NUL character in its name", name, "nul")
    path = name.replace("\\", "/")
    if path.startswith("/") or re.match(r"[A-Za-z]:", path):
        raise _unsafe("has an absolute path", name, "absolute")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(".." in p and not p.strip(". ") for p in parts):
        raise _unsafe("points outside the archive ('..')", name, "parent")
    return parts


def _check_members(infos: list[zipfile.ZipInfo]) -> None:
    """Refuse the zip unless every member is safe to read; nothing is decompressed here."""
    if len(infos) > MAX_ZIP_MEMBERS:
        raise DatasetError(f"This zip has {len(infos)} files; the limit is {MAX_ZIP_MEMBERS}.",
                           "dataset.zip_too_many_files", members=len(infos), limit=MAX_ZIP_MEMBERS)
    total = 0
    for info in infos:
        _member_parts(info.orig_filename)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise _unsafe("is a symbolic link", info.filename, "symlink")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise _unsafe("is not a regular file", info.filename, "special")
        if info.flag_bits & 0x41:  # 0x1: encrypted, 0x40: strong encryption
            raise DatasetError(f"This zip is encrypted ({_display(info.filename)!r} needs a password); "
                               "zip it again without a password.", "dataset.zip_encrypted",
                               member=_display(info.filename))
        if info.file_size > ZIP_RATIO_FROM and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise _unsafe(f"expands {ratio:,.0f} times (a zip bomb?); the limit is {MAX_ZIP_RATIO}", info.filename,
                          "ratio", ratio=round(ratio), limit=MAX_ZIP_RATIO)
        total += info.file_size
    if total > MAX_ZIP_TOTAL:
        raise DatasetError(f"This zip holds {_images._megabytes(total)} once unpacked; the limit is "
                           f"{_images._megabytes(MAX_ZIP_TOTAL)}.", "dataset.zip_too_large",
                           size=total, limit=MAX_ZIP_TOTAL, size_text=_images._megabytes(total),
                           limit_text=_images._megabytes(MAX_ZIP_TOTAL))


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, never more than its declared size + 1 (a member that inflates past what it
    declares refuses the whole zip); damaged data skips the member."""
    limit = min(info.file_size, MAX_MEMBER_BYTES)
    try:
        with zf.open(info) as f:
            data = f.read(limit + 1)
    except _READ_ERRORS as err:
        raise _Skip(f"it is damaged inside the zip ({err}).") from None
    if len(data) > limit:
        raise _unsafe("holds more data than it declares", info.filename, "size_mismatch")
    return data


def _zip_source(src: Any) -> tuple[Any, str]:
    """An open binary file for a path, bytes or file-like, and a name for the dataset."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        return io.BytesIO(src), "upload.zip"
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        try:
            info = path.stat()
        except OSError:
            raise DatasetError(f"No file at {str(path)!r}. Check the path.", "dataset.not_found",
                               path=str(path)) from None
        if not stat.S_ISREG(info.st_mode):
            raise DatasetError(f"{str(path)!r} is not a file; give a .zip file.", "dataset.not_a_zip",
                               path=str(path))
        try:
            return open(path, "rb"), path.name
        except OSError as err:
            raise DatasetError(f"{str(path)!r} could not be read ({err.strerror}).", "dataset.unreadable",
                               path=str(path), reason=err.strerror) from None
    if callable(getattr(src, "read", None)) and callable(getattr(src, "seek", None)):
        return src, Path(str(getattr(src, "name", "upload.zip"))).name
    raise DatasetError(f"Can't read a zip from a {type(src).__name__!r}; give a path, bytes or a binary file.",
                       "dataset.bad_type", type=type(src).__name__)


def _open_zip(fp: Any) -> zipfile.ZipFile:
    """ZipFile over `fp` after checking the end record: zipfile reads the whole central directory
    into memory, so its declared size and member count are checked first."""
    not_a_zip = DatasetError("This file is not a zip archive (or it is damaged). Zip the class folders and try "
                             "again.", "dataset.not_a_zip")
    end_record = getattr(zipfile, "_EndRecData", None)  # private but stable since Python 2
    try:
        if end_record is not None:
            end = end_record(fp)
            if end is None:
                raise not_a_zip
            entries, cd_size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
            if entries > MAX_ZIP_MEMBERS:
                raise DatasetError(f"This zip has {entries} files; the limit is {MAX_ZIP_MEMBERS}.",
                                   "dataset.zip_too_many_files", members=entries, limit=MAX_ZIP_MEMBERS)
            if cd_size > max(2**20, MAX_ZIP_MEMBERS * 1024):
                raise DatasetError("This zip's table of contents is too large.", "dataset.zip_toc_too_large",
                                   size=cd_size)
            fp.seek(0)
        return zipfile.ZipFile(fp)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, IndexError) as err:
        if isinstance(err, DatasetError):
            raise
        raise not_a_zip from None
