"""scripts/gpu_check.py as a CPU dry run: every row but the CUDA-only ones runs on tiny data and passes,
and each skipped row is named (on a GPU machine the same script runs them all). The script's `main` runs in
this process (torch, timm and the model already loaded), a few rows per test, so that the two test workers
share them; the rows that start processes still start them: torchrun_nccl (fit under torchrun) and train_cli,
also the test of `torchrun -m cvdemo train` on a CPU: two gloo processes, rank 0 alone writes and reports. The
throughput rows run on tiny data here (their mechanics); the ones whose tool is missing (lightning, a checkout of
timm's repository) are skipped, named."""
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def gpu_check(rows: str, monkeypatch, capsys) -> tuple[int, str]:
    """`python scripts/gpu_check.py --dry-run --compare --epochs 1 --rows ROWS`, in-process: its exit code and stdout
    (a fresh module each time: the script keeps its rows' table in module globals)."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts the repository first on it
    spec = importlib.util.spec_from_file_location("gpu_check_dry_run", ROOT / "scripts" / "gpu_check.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--dry-run", "--compare", "--epochs", "1", "--rows", rows])
    code = script.main()
    out, err = capsys.readouterr()
    assert code == 0, out[-3000:] + err[-3000:]
    return code, out


LIGHTNING = "ok" if importlib.util.find_spec("lightning") else "skipped"


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CPU dry run; on a GPU run the script itself")
@pytest.mark.parametrize("rows, expected", [
    ("classify,onnx_export", {"classify": "skipped", "onnx_export": "ok"}),
    ("finetune,distill", {"finetune": "ok", "distill": "ok"}),
    ("selftrain", {"selftrain": "ok"}),
    ("torchrun_nccl", {"torchrun_nccl": "ok"}),
    ("train_cli", {"train_cli": "ok"}),
    ("thr_cvdemo,thr_lightning,thr_timm_train_py",
     {"thr_cvdemo": "ok", "thr_lightning": LIGHTNING, "thr_timm_train_py": "skipped"})])
def test_gpu_check_dry_run_on_the_cpu(rows, expected, monkeypatch, capsys):
    _, out = gpu_check(rows, monkeypatch, capsys)
    table = {line.split()[0]: line.split()[1] for line in out.splitlines()[-len(expected):] if len(line.split()) > 1}
    assert table == expected, out[-2000:]
    if "classify" in rows:
        assert "needs CUDA" in out  # a CUDA-only row is named, with why, not silently left out
    if "thr_cvdemo" in rows:
        assert "images/s" in out and "on the CPU: the mechanics, not the goal" in out
        assert "needs --timm-repo DIR" in out
    if "torchrun_nccl" in rows:
        assert "BACKEND gloo DDP wrapped [True]" in out
