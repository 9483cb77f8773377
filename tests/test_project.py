"""Set-up promises: CI runs the README's test command; torch and torchvision are pinned exactly."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -q -r requirements-dev.txt && .venv/bin/python -m pytest"


def test_ci_runs_the_readme_test_command():
    assert TEST_COMMAND in (ROOT / "README.md").read_text()
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text()


def test_torch_pins_are_exact_and_everything_is_pinned():
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert "torch==2.14.1" in lines and "torchvision==0.29.1" in lines
    assert all("==" in line for line in lines), [line for line in lines if "==" not in line]
