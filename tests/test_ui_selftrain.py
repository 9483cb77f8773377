"""The Self-train tab's handlers, as the page calls them. The tests that check what the handlers show train for
fewer epochs than the tab's defaults (the "Epochs per model" sliders: 30, and the ablation's 10); what the full
budget achieves is tests/test_selftrain.py's part."""
import re

import pytest

from cvdemo import selftrain, uploads
from cvdemo.ui.selftrain import rethreshold, run
from cvdemo.ui.session import Workspace

HANGUL = re.compile(r"[\uac00-\ud7a3]")


def last(generator):
    *_, final = generator
    return final


def zip_of(dataset, path, unlabeled_every: int) -> int:
    """`dataset` written as a user's zip to `path` (`uploads.export_zip`: class folders and unlabeled/), every
    `unlabeled_every`-th image in unlabeled/ instead of its class. Returns how many are unlabeled."""
    unlabeled = range(0, len(dataset), unlabeled_every)
    mine = dataset.subset([i for i in range(len(dataset)) if i % unlabeled_every])
    mine.unlabeled = [dataset.images[i] for i in unlabeled]
    uploads.export_zip(mine, path)
    return len(unlabeled)


def test_a_digits_run_plots_each_round_against_the_baseline_and_shows_the_pseudo_labels():
    ws = Workspace()  # 3 epochs: ~300 of the 1138 unlabeled digits at 0.9 or above, so both galleries fill
    status, plot, table, curve, line, accepted, rejected, lesson = last(
        run("builtin", "digits", 0.05, None, 0.9, False, False, 1, 3, 0, ws))
    assert "digits" in status and "60 labelled" in status
    assert sorted(plot["round"].unique()) == [0, 1] and plot["run"].nunique() == 2
    assert len(table) == 2 and list(table["student reads"]) == ["pixels (CNN)"] * 2
    assert curve["coverage"].is_monotonic_decreasing  # higher threshold, fewer accepted
    assert 0 < len(accepted) <= 24 and len(rejected) > 0
    assert all(caption.endswith(("✓", ")")) for _, caption in accepted)  # right, or wrong with the true label
    base, final = table.iloc[0, 1], table.iloc[1, 1]
    assert base in lesson and final in lesson  # the panel quotes this run's numbers
    # moving the threshold after the run changes what is accepted, without training
    _, line_low, more, _ = rethreshold(0.5, ws)
    assert "0.50" in line_low and len(more) >= len(accepted)


def test_the_tab_speaks_korean_and_grows_the_student_when_asked(monkeypatch, few_textures):
    """The built-in textures, here every fifth of them (30: the pretrained features of each image, its RandAugment
    views and each backbone are what a photo run spends its time on)."""
    real = selftrain.load_builtin
    monkeypatch.setattr(selftrain, "load_builtin", lambda name: few_textures if name == "textures" else real(name))
    ws = Workspace()
    ws.lang = "ko"
    status, _, table, *_, lesson = last(run("builtin", "textures", 0.05, None, 0.9, False, True, 1, 30, 0, ws))
    assert HANGUL.search(status) and HANGUL.search(lesson) and "textures" in lesson
    assert "레이블 있는 이미지 3장과 레이블 없는 이미지 18장" in lesson  # of the 21 training images: one per class
    assert "파라미터 수" in table.columns
    params = [int(p.replace(",", "")) for p in table["파라미터 수"]]
    assert params[1] > params[0]  # a larger student than its teacher: the next bigger pretrained backbone
    assert list(table["학생 입력"]) == ["tf_efficientnet_lite0", "tf_efficientnet_lite1"]
    assert "tf_efficientnet_lite0 → tf_efficientnet_lite1" in lesson and f"{params[1]:,}" in lesson


def test_a_zip_is_required_for_the_zip_source():
    with pytest.raises(Exception) as err:
        last(run("zip", "digits", 0.05, None, 0.9, False, False, 1, 30, 0, Workspace()))
    assert "zip" in str(err.value)
    with pytest.raises(Exception):
        last(run("builtin", "imagenet", 0.05, None, 0.9, False, False, 1, 30, 0, Workspace()))


def test_the_selftrain_endpoint_streams_rounds_and_ends_with_the_galleries(server, few_textures, tmp_path):
    """The endpoint as an API client calls it, with a user's zip uploaded (a small one: 24 labelled textures, 6
    unlabeled); the built-in digits through the page: tests/test_browser.py."""
    from gradio_client import Client, handle_file

    archive = tmp_path / "mine.zip"
    zip_of(few_textures, archive, 5)
    client = Client(server, verbose=False)
    status, plot, table, curve, line, accepted, rejected, lesson = client.predict(
        "zip", "digits", 0.05, handle_file(str(archive)), 0.9, False, False, 1, 30, 0, api_name="/selftrain")
    assert "Done" in status and "6 unlabeled" in status and len(table["data"]) == 2
    assert len(accepted) > 0 and "Your run" in lesson


def test_a_users_zip_with_an_unlabeled_folder(tmp_path):
    from cvdemo.datasets import load_builtin

    faces = load_builtin("faces")
    archive = tmp_path / "mine.zip"
    unlabeled = zip_of(faces.subset(range(0, len(faces), 4)), archive, 4)  # 50 faces and non-faces, 13 unlabeled
    ws = Workspace()
    status, plot, table, curve, line, accepted, rejected, lesson = last(
        run("zip", "digits", 0.05, str(archive), 0.9, False, False, 1, 30, 0, ws))
    assert unlabeled == 13 and "13 unlabeled" in status and len(table) == 2
    assert curve is None and "no hidden labels" in line  # nothing to measure precision against
    assert "correct is unknown" in lesson and "- of them" not in lesson
    assert len(accepted) + len(rejected) > 0
    assert all("✓" not in caption and "✗" not in caption for _, caption in accepted + rejected)


def test_ablation_compares_two_variants_in_korean():
    from cvdemo.ui.selftrain import ablate

    ws = Workspace()
    ws.lang = "ko"
    *updates, (status, curve, table, lesson) = ablate("labels", 1, 2, ws)
    assert "소프트 의사 레이블, 시드 1/1: 라운드 1" in updates[-1][0] and "초 만에 끝났습니다" in status
    assert set(curve["variant"]) == {"하드 의사 레이블", "소프트 의사 레이블"} and list(curve["round"]) == [0, 1, 0, 1]
    assert list(table["변형"]) == ["하드 의사 레이블", "소프트 의사 레이블"]
    assert table.iloc[0]["라운드 0 (레이블만)"] == table.iloc[1]["라운드 0 (레이블만)"]  # the same first teacher
    final = table.iloc[1]["마지막 라운드"].split(" ± ")[0]
    assert lesson.startswith("**내 실행 결과:**") and f"**{final}**" in lesson and "시드가 하나뿐이라" in lesson
    ws.lang = "en"
    english = ws.shown("selftrain")
    assert f"to **{final}**" in english and "run more seeds" in english and "soft pseudo-labels from" in english
