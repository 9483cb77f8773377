"""`python -m cvdemo classify IMG...`."""
import subprocess
import sys


def test_cli_prints_top5_per_file_and_reports_bad_files(examples, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    result = subprocess.run([sys.executable, "-m", "cvdemo", "classify", examples["cat"], str(bad), examples["coffee"]],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1  # one file failed, the others were still classified
    blocks = result.stdout.strip().split("\n")
    assert len(blocks) == 2 * 6
    assert blocks[0].startswith(examples["cat"]) and "tabby" in result.stdout
    assert blocks[6].startswith(examples["coffee"]) and "espresso" in blocks[7]
    assert "notes.jpg" in result.stderr and "error" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_unknown_model_is_a_clear_error(examples):
    result = subprocess.run([sys.executable, "-m", "cvdemo", "classify", examples["cat"], "--model", "nope"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "Unknown model 'nope'" in result.stderr and "Traceback" not in result.stderr


def test_cli_selftrain_prints_each_round_against_the_baseline(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cvdemo", "selftrain", "digits", "--seeds", "1", "--rounds", "1",
                             "--epochs", "5"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "mean over 1 seeds, round 0" in result.stdout and "mean over 1 seeds, round 1" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "cvdemo", "selftrain", str(tmp_path / "none.zip")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.startswith("error:")
