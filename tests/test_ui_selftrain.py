"""The Self-train tab's handlers, as the page calls them."""
import re

import pytest

from cvdemo.ui.selftrain import rethreshold, run
from cvdemo.ui.session import Workspace

HANGUL = re.compile(r"[\uac00-\ud7a3]")


def last(generator):
    *_, final = generator
    return final


def test_a_digits_run_plots_each_round_against_the_baseline_and_shows_the_pseudo_labels():
    ws = Workspace()
    status, plot, table, curve, line, accepted, rejected, lesson = last(
        run("builtin", "digits", 0.05, None, 0.9, False, False, 1, 0, ws))
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


def test_the_tab_speaks_korean_and_grows_the_student_when_asked():
    ws = Workspace()
    ws.lang = "ko"
    status, _, table, *_, lesson = last(run("builtin", "textures", 0.05, None, 0.9, False, True, 1, 0, ws))
    assert HANGUL.search(status) and HANGUL.search(lesson) and "textures" in lesson
    assert "파라미터 수" in table.columns
    params = [int(p.replace(",", "")) for p in table["파라미터 수"]]
    assert params[1] > params[0]  # a larger student than its teacher: the next bigger pretrained backbone
    assert list(table["학생 입력"]) == ["tf_efficientnet_lite0", "tf_efficientnet_lite1"]
    assert "tf_efficientnet_lite0 → tf_efficientnet_lite1" in lesson and f"{params[1]:,}" in lesson


def test_a_zip_is_required_for_the_zip_source():
    with pytest.raises(Exception) as err:
        last(run("zip", "digits", 0.05, None, 0.9, False, False, 1, 0, Workspace()))
    assert "zip" in str(err.value)
    with pytest.raises(Exception):
        last(run("builtin", "imagenet", 0.05, None, 0.9, False, False, 1, 0, Workspace()))


def test_the_selftrain_endpoint_streams_rounds_and_ends_with_the_galleries(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    status, plot, table, curve, line, accepted, rejected, lesson = client.predict(
        "builtin", "digits", 0.05, None, 0.9, False, False, 1, 0, api_name="/selftrain")
    assert "Done" in status and len(table["data"]) == 2
    assert len(accepted) > 0 and "Your run" in lesson


def test_a_users_zip_with_an_unlabeled_folder(tmp_path):
    import io
    import zipfile

    from cvdemo.datasets import load_builtin

    faces = load_builtin("faces")
    archive = tmp_path / "mine.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i, (image, label) in enumerate(zip(faces.images, faces.labels)):
            folder = "unlabeled" if i % 4 == 0 else faces.classes[label]
            png = io.BytesIO()
            image.save(png, "PNG")
            z.writestr(f"{folder}/{i}.png", png.getvalue())
    ws = Workspace()
    status, plot, table, curve, line, accepted, rejected, lesson = last(
        run("zip", "digits", 0.05, str(archive), 0.9, False, False, 1, 0, ws))
    assert "50 unlabeled" in status and len(table) == 2
    assert curve is None and "no hidden labels" in line  # nothing to measure precision against
    assert "correct is unknown" in lesson and "- of them" not in lesson
    assert len(accepted) + len(rejected) > 0
    assert all("✓" not in caption and "✗" not in caption for _, caption in accepted + rejected)


def test_ablation_compares_two_variants_in_korean():
    from cvdemo.ui.selftrain import ablate
    from cvdemo.ui.session import Workspace

    ws = Workspace()
    ws.lang = "ko"
    *updates, (status, curve, table, lesson) = ablate("labels", 1, ws)
    assert "소프트 의사 레이블, 시드 1/1: 라운드 1" in updates[-1][0] and "초 만에 끝났습니다" in status
    assert set(curve["variant"]) == {"하드 의사 레이블", "소프트 의사 레이블"} and list(curve["round"]) == [0, 1, 0, 1]
    assert list(table["변형"]) == ["하드 의사 레이블", "소프트 의사 레이블"]
    assert table.iloc[0]["라운드 0 (레이블만)"] == table.iloc[1]["라운드 0 (레이블만)"]  # the same first teacher
    final = table.iloc[1]["마지막 라운드"].split(" ± ")[0]
    assert lesson.startswith("**내 실행 결과:**") and f"**{final}**" in lesson and "시드가 하나뿐이라" in lesson
    ws.lang = "en"
    english = ws.shown("selftrain")
    assert f"to **{final}**" in english and "run more seeds" in english and "soft pseudo-labels from" in english
