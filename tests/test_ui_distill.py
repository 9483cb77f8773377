"""The Distill tab's handlers (cvdemo.ui.distill): the Transfer run's own split, the three-way and sweep texts in
the session's language with the measured numbers, an exportable student, the temperature figure."""
import html
import json
import re
from pathlib import Path

import numpy as np
import pytest


def test_the_distill_tab_takes_the_transfer_runs_own_split():
    """The tab's teacher "this session's Transfer-tab model" (or that model picked by its name) brings the run's
    training and validation images, whatever dataset is loaded now; another model gets the loaded dataset."""
    from types import SimpleNamespace

    from cvdemo.datasets import load_builtin
    from cvdemo.ui import distill as ui
    from cvdemo.ui.session import Workspace

    ws = Workspace()
    with pytest.raises(Exception, match="Train a model in the Transfer tab first"):
        ui.pick_teacher(ws, ui.TRANSFER)
    teacher, other, train, val = object(), object(), object(), object()
    ws.result = SimpleNamespace(classifier=teacher, train_data=train, val_data=val)
    ws.dataset = load_builtin("faces")  # loaded after training
    ws.models = {"my model 1: mine": teacher, "my model 2: other": other}
    assert ui.pick_teacher(ws, ui.TRANSFER) == (teacher, train, val)
    assert ui.pick_teacher(ws, "my model 1: mine") == (teacher, train, val)
    assert ui.pick_teacher(ws, "my model 2: other") == (other, ws.dataset, None)


def test_three_way_handler_speaks_korean_and_shows_the_measured_numbers():
    """The app's three-way handler in a Korean session: live curves, then the table and the verdict in
    Korean, and the lesson panel's "your run" quoting the measured accuracies."""
    from cvdemo.ui import distill as ui
    from cvdemo.ui.session import Workspace

    ws = Workspace()
    ws.lang = "ko"
    updates = list(ui.three_way(100, 4, 0.9, 1, "mlp", True, ws))
    status, plot, table, lesson = updates[-1]
    assert status.endswith("초 만에 끝났습니다.") and len(updates) >= 3
    epochs, _, runs = zip(*plot.value["data"])
    assert set(runs) == {"교사", "학생, 레이블만", "KD 학생"} and max(epochs) == 30
    assert plot.colors_in_legend == ["교사", "학생, 레이블만", "KD 학생"]  # all lines drawn
    assert "테스트 정확도" in table and "KD가 도움이 되었습니다" in table and "시드 [0]" in table
    kd = re.search(r"KD 학생\*\*: .*? \| (\d+\.\d%)", table).group(1)
    assert lesson.startswith("**내 실행 결과:**") and kd in lesson
    ws.lang = "en"  # the language switch re-renders the same numbers in English
    assert ws.shown("distill").startswith("**Your run:**") and kd in ws.shown("distill")


def test_the_sweep_says_plainly_whether_kd_helped():
    from cvdemo.ui.distill import sweep_verdict
    from cvdemo.ui.session import Workspace

    ws = Workspace()
    grid = np.array([[0.900, 0.900], [0.904, 0.893]])  # alpha 0 (T plays no part), then alpha 0.9 at two T
    assert sweep_verdict(grid, [0.0, 0.9], ws).startswith("KD did not help here") and "+0.4 points" in \
        sweep_verdict(grid, [0.0, 0.9], ws)
    assert sweep_verdict(grid + [[0, 0], [0.05, 0]], [0.0, 0.9], ws).startswith("KD helped")
    assert "alpha = 0" in sweep_verdict(grid, [0.5, 0.9], ws)  # nothing to compare with
    ws.lang = "ko"
    assert sweep_verdict(grid, [0.0, 0.9], ws).startswith("여기서는 KD가 도움이 되지 않았습니다")


def test_distill_handler_with_an_imagenet_teacher_adds_an_exportable_student(few_textures):
    from cvdemo.ui import distill as ui
    from cvdemo.ui.session import Workspace

    ws = Workspace()
    ws.lang = "ko"
    ws.dataset = few_textures  # the user's images, but no Transfer model: the teacher is tf_efficientnet_lite0
    *_, last = ui.distill_model(ws, 4, 0.9, 1, 0, "kd_student_cnn", "tf_efficientnet_lite0")
    status, _, report, lesson, name, dropdown = last
    assert name == "my model 1: kd_student_cnn student of tf_efficientnet_lite0" and name in ws.models
    assert "교사의 1,000개 클래스에 대한 레이블이 없으므로" in report and "내 데이터셋" in report
    shown = html.unescape(report)  # names reach the Markdown escaped (kd&#95;student...), the page shows them as is
    agreement = re.search(r"\| 학생: kd_student_cnn \(처음부터 학습, 64 px\) \| (\d+\.\d%)", shown).group(1)
    assert lesson.startswith("**내 실행 결과:**") and agreement in lesson
    files = ui.export_student(ws, name)
    config = json.loads(Path(files[1]).read_text())
    assert len(config["label_names"]) == 1000 and all(Path(f).stat().st_size > 0 for f in files)
    ws.close()


def test_the_temperature_figure_is_drawn_in_the_sessions_language(examples):
    """Korean words in the figure where a Korean font is installed (CI and the Space install one); else
    English, never boxes."""
    import os

    from cvdemo.ui import distill as ui
    from cvdemo.ui.common import pyplot
    from cvdemo.ui.session import Workspace

    hangul = len(pyplot().rcParams["font.family"]) > 1
    if os.environ.get("CI"):
        assert hangul, "CI must install a Korean font (fonts-nanum, see .ci/run)"
    ws = Workspace()
    ws.lang = "ko"
    fig, line = ui.explore(examples["cat"], None, ws)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("T = 1") and len(titles) == 5
    assert ("엔트로피" if hangul else "entropy") in titles[0]
    ws.lang = "en"
    fig, line = ui.explore(examples["cat"], None, ws)
    assert "entropy" in fig.axes[0].get_title()


def test_the_temperature_explorer_shares_one_scale_and_says_what_rises(examples):
    """Ts fitted to the ImageNet teacher's logits (not 1..20, where it is uniform by T = 5), one x scale with the
    uniform line, and a line whose figures are the soft targets' own."""
    from cvdemo import distill
    from cvdemo.images import load_image
    from cvdemo.inference import get_classifier
    from cvdemo.ui import distill as ui
    from cvdemo.ui.session import Workspace

    fig, line = ui.explore(examples["coffee"], None, Workspace())
    clf = get_classifier()
    z = clf.logits(clf.preprocess(load_image(examples["coffee"])))[0]
    Ts = distill.temperatures_for(z)
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == [f"T = {T:g}" for T in Ts] and Ts[-1] < 5
    assert len({ax.get_xlim() for ax in fig.axes}) == 1  # one scale
    assert all(any(abs(x - 1 / 1000) < 1e-9 for x in ln.get_xdata()) for ax in fig.axes for ln in ax.get_lines())
    p = distill.soft_targets(z, Ts)
    a, b = np.argsort(-p[1])[:2]
    assert f"{p[Ts[-1]][a]:.1%}" in line and f"{p[Ts[-1]][b] / p[Ts[-1]][a]:.2f}" in line
    assert p[Ts[-1]][b] / p[Ts[-1]][a] > p[1][b] / p[1][a]  # the runner-up closes in on the top class
    assert "relative to the top class" in line


def test_inside_kd_streams_the_two_terms_and_explains_t_squared_in_korean():
    from cvdemo.ui.distill import inside_kd
    from cvdemo.ui.session import Workspace

    ws = Workspace()
    ws.lang = "ko"
    updates = list(inside_kd(100, 4, 0.9, ws))
    assert updates[0][0] == "KD 학생 하나를 학습하는 중입니다(시드 0)…" and "에폭 1/20 · 소프트 항" in updates[1][0]
    status, plot, text, figure, lesson = updates[-1]
    assert "| 16 |" in text and "T² 없는 소프트 항 기울기" in text and figure is not None
    fall = text.split("T² 없는 소프트 항의 기울기는 ")[1].split("분의 1")[0]
    assert int(fall) > 50 and lesson.startswith("**내 실행 결과:**") and f"{fall}분의 1" in lesson
    ws.lang = "en"
    assert f"{fall}× smaller at T = 16" in ws.shown("distill")
