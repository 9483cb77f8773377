"""The command line: `python -m cvdemo classify IMG...` as a real process; its other commands through `main` in
this process (the same code after the imports)."""
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


def test_cli_unknown_model_is_a_clear_error(examples, capsys):
    from cvdemo.__main__ import main

    assert main(["classify", examples["cat"], "--model", "nope"]) == 2
    err = capsys.readouterr().err
    assert "Unknown model 'nope'" in err and "Traceback" not in err


def test_cli_selftrain_prints_each_round_against_the_baseline(tmp_path, capsys):
    from cvdemo.__main__ import main

    assert main(["selftrain", "digits", "--seeds", "1", "--rounds", "1", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "mean over 1 seeds, round 0" in out and "mean over 1 seeds, round 1" in out
    assert main(["selftrain", str(tmp_path / "none.zip")]) == 2
    assert capsys.readouterr().err.startswith("error:")


def test_cli_train_and_the_transfer_tab_read_one_table_of_defaults(monkeypatch):
    """Per-mode training defaults live in transfer.DEFAULTS: the CLI's config, the tab's starting values and
    its values on a mode change all come from it; flags given on the command line win."""
    import cvdemo.datasets
    import cvdemo.transfer
    from cvdemo.__main__ import main
    from cvdemo.transfer import DEFAULTS, default_config
    from cvdemo.ui.transfer import mode_defaults

    seen = []
    monkeypatch.setattr(cvdemo.datasets, "load", lambda spec: (spec, []))
    monkeypatch.setattr(cvdemo.transfer, "transfer", lambda data, **kw: iter(seen.append((data, kw)) or ()))
    for mode in ("probe", "finetune", "full", "scratch"):
        assert main(["train", "--data", "builtin:textures", "--mode", mode]) == 0
        config = seen[-1][1]["config"]
        assert [getattr(config, k) for k in DEFAULTS[mode]] == list(DEFAULTS[mode].values())
        assert config == default_config(mode)
        assert mode_defaults(mode) == tuple(DEFAULTS[mode][k] for k in ("epochs", "batch_size", "lr", "weight_decay"))
    assert DEFAULTS["probe"]["batch_size"] == 128 and seen[0][0] == "builtin:textures"
    main(["train", "--data", "x.zip", "--mode", "probe", "--batch-size", "32", "--weight-decay", "0", "--seed", "3"])
    config = seen[-1][1]["config"]
    assert (config.batch_size, config.weight_decay, config.seed) == (32, 0, 3)  # given: they win
    assert (config.epochs, config.lr) == (DEFAULTS["probe"]["epochs"], DEFAULTS["probe"]["lr"])

