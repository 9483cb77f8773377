"""scripts/gpu_check.py as a CPU dry run: every row but the CUDA-only ones runs on tiny data and passes,
and each skipped row is named (on a GPU machine the same script runs them all). The script's `main` runs in
this process (torch, timm and the model already loaded), a few rows per test, so that the two test workers
share them; the rows that start processes still start them: torchrun_nccl (fit under torchrun) and train_cli,
also the test of `torchrun -m cvdemo train` on a CPU: two gloo processes, rank 0 alone writes and reports."""
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def gpu_check(rows: str, monkeypatch, capsys) -> tuple[int, str]:
    """`python scripts/gpu_check.py --dry-run --compare --rows ROWS`, in-process: its exit code and stdout (a fresh
    module each time: the script keeps its rows' table in module globals)."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts the repository first on it
    spec = importlib.util.spec_from_file_location("gpu_check_dry_run", ROOT / "scripts" / "gpu_check.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--dry-run", "--compare", "--rows", rows])
    code = script.main()
    out, err = capsys.readouterr()
    assert code == 0, out[-3000:] + err[-3000:]
    return code, out


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CPU dry run; on a GPU run the script itself")
@pytest.mark.parametrize("rows, expected", [
    ("classify,onnx_export", {"classify": "skipped", "onnx_export": "ok", "throughput": "skipped"}),
    ("finetune,distill", {"finetune": "ok", "distill": "ok", "throughput": "skipped"}),
    ("selftrain", {"selftrain": "ok", "throughput": "skipped"}),
    ("torchrun_nccl", {"torchrun_nccl": "ok", "throughput": "skipped"}),
    ("train_cli", {"train_cli": "ok", "throughput": "skipped"})])
def test_gpu_check_dry_run_on_the_cpu(rows, expected, monkeypatch, capsys):
    _, out = gpu_check(rows, monkeypatch, capsys)
    table = {line.split()[0]: line.split()[1] for line in out.splitlines()[-len(expected):] if len(line.split()) > 1}
    assert table == expected, out[-2000:]
    assert "needs CUDA" in out
    if "torchrun_nccl" in rows:
        assert "BACKEND gloo DDP wrapped [True]" in out
