"""Where cvdemo keeps the files it makes (converted weights, exported runtimes), and how it writes them."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no lock between processes
    fcntl = None

MAX_RUNTIME_BYTES = 2 * 2**30  # exported ONNX runtimes kept in the cache (least recently used go first)


def cache_dir() -> Path:
    """Where converted weights and exported runtimes live (`CVDEMO_CACHE`, else ~/.cache/cvdemo)."""
    path = Path(os.environ.get("CVDEMO_CACHE") or Path.home() / ".cache" / "cvdemo")
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Write a file through `write(tmp)` then rename it into place, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


@contextmanager
def building(path: Path) -> Iterator[None]:
    """Held while `path` is made: another process (or thread) making the same file waits, then finds it made
    (two servers, or test workers, sharing a cache export each runtime once). A lock file beside it, kept."""
    try:
        lock = open(path.with_name(path.name + ".lock"), "a") if fcntl is not None else None
    except OSError:  # a read-only cache: its files can still be read
        lock = None
    if lock is None:
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def bound(pattern: str = "*.onnx", max_bytes: int = MAX_RUNTIME_BYTES, keep: Path | None = None) -> list[Path]:
    """Delete the least recently used cache files matching `pattern` (by modification time: users touch
    what they reuse) until the rest fit in `max_bytes`; never `keep`. Returns what was deleted."""
    files = []
    for path in cache_dir().glob(pattern):
        try:
            files.append((path.stat().st_mtime, path.stat().st_size, path))
        except OSError:  # deleted meanwhile by another process
            continue
    total, deleted = sum(size for _, size, _ in files), []
    for _, size, path in sorted(files):
        if total <= max_bytes:
            break
        if keep is not None and path == keep:
            continue
        try:
            path.unlink()
            total -= size
            deleted.append(path)
        except OSError:
            continue
    return deleted
