"""The cache folder: atomic writes, and a size bound on exported runtimes."""
import os
import time

from cvdemo import cache


def test_bound_deletes_the_least_recently_used_runtimes_first(tmp_path, monkeypatch):
    monkeypatch.setenv("CVDEMO_CACHE", str(tmp_path))
    now = time.time()
    for age, name in enumerate(["new", "mid", "old", "oldest"]):
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(b"x" * 100)
        os.utime(path, (now - age * 60, now - age * 60))
    (tmp_path / "weights.safetensors").write_bytes(b"w" * 1000)  # other files are not runtimes: kept
    deleted = cache.bound("*.onnx", max_bytes=250, keep=tmp_path / "oldest.onnx")
    assert sorted(p.name for p in deleted) == ["mid.onnx", "old.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.onnx", "oldest.onnx", "weights.safetensors"]


def test_atomic_write_leaves_no_half_file(tmp_path):
    target = tmp_path / "f.txt"

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    try:
        cache.atomic_write(target, broken)
    except RuntimeError:
        pass
    assert not target.exists() and list(tmp_path.iterdir()) == []
    cache.atomic_write(target, lambda tmp: tmp.write_text("whole"))
    assert target.read_text() == "whole"


def test_a_file_two_makers_want_at_once_is_made_once(tmp_path):
    """Two makers of the same runtime at once (two servers or test workers sharing a cache): the second waits for
    the first's lock, then finds the file made."""
    import threading

    path, made = tmp_path / "model-fp32.onnx", []

    def make():
        with cache.building(path):
            if not path.exists():
                made.append(threading.current_thread().name)
                time.sleep(0.3)
                path.write_bytes(b"onnx")

    makers = [threading.Thread(target=make, name=f"maker {i}") for i in range(2)]
    for maker in makers:
        maker.start()
    for maker in makers:
        maker.join()
    assert len(made) == 1 and path.read_bytes() == b"onnx"
