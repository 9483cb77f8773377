"""scripts/gpu_check.py as a CPU dry run: every row but the CUDA-only ones runs on tiny data and passes,
and each skipped row is named (on a GPU machine the same script runs them all). Three runs of a few rows each,
so that the two test workers share them. The train_cli row is also the test of `torchrun -m cvdemo train` on a
CPU: two gloo processes, rank 0 alone writes and reports."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CPU dry run; on a GPU run the script itself")
@pytest.mark.parametrize("rows, expected", [
    ("classify,finetune,onnx_export,distill",
     {"classify": "skipped", "finetune": "ok", "onnx_export": "ok", "distill": "ok", "throughput": "skipped"}),
    ("selftrain,torchrun_nccl", {"selftrain": "ok", "torchrun_nccl": "ok", "throughput": "skipped"}),
    ("train_cli", {"train_cli": "ok", "throughput": "skipped"})])
def test_gpu_check_dry_run_on_the_cpu(rows, expected):
    out = subprocess.run([sys.executable, "scripts/gpu_check.py", "--dry-run", "--compare", "--rows", rows],
                         cwd=ROOT, text=True, capture_output=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    table = {line.split()[0]: line.split()[1] for line in out.stdout.splitlines()[-len(expected):]
             if len(line.split()) > 1}
    assert table == expected, out.stdout[-2000:]
    assert "needs CUDA" in out.stdout
    if "torchrun_nccl" in rows:
        assert "BACKEND gloo DDP wrapped [True]" in out.stdout
