"""Where cvdemo keeps the files it makes (converted weights, exported runtimes), and how it writes them."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


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
