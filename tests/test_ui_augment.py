"""The Augment tab's handlers: results in the session's language, the lesson panel gets the measured numbers."""
import re

from cvdemo.ui.augment import augment, your_run
from cvdemo.ui.session import Workspace


def test_a_korean_workspace_gets_korean_results_and_its_run_in_the_lesson(examples):
    ws = Workspace()
    ws.lang = "ko"
    gallery, rows, summary = augment(examples["cat"], '{"ops": [{"op": "rotation", "degrees": 90}]}', 3, 5, None, ws)
    assert len(gallery) == len(rows) == 3 and all(" → 1순위: " in caption for _, caption in gallery)
    kept = re.search(r"샘플 \*\*3개 중 (\d)개\*\*에서 1순위가 그대로", summary).group(1)
    lesson = your_run(ws)
    assert lesson.startswith("**내 실행 결과:**")
    assert f"샘플 **3개 중 {kept}개**" in lesson  # the measured numbers
    assert re.search(r"평균 \d+%였습니다", lesson)
    ws.lang = "en"  # switching the language re-renders the same run
    assert your_run(ws).startswith("**Your run:**") and f"**{kept} of your 3**" in your_run(ws)


def test_the_bias_experiment_says_its_augmentation_range_is_the_best_case(monkeypatch):
    """The range was drawn knowing the test darkness: the lesson says so, with the measured figures."""
    from cvdemo.ui import augment as ui

    result = {"train": 150, "val": 50, "dark_factor": 0.06, "seconds": 12.0,
              "spec": {"ops": [{"op": "brightness", "brightness": [0.036, 1.0]}]},
              "without_augmentation": {"normal": 0.98, "dark": 0.56}, "with_augmentation": {"normal": 0.98, "dark": 0.9}}
    monkeypatch.setattr(ui, "bias_experiment", lambda seed: result)
    ws = Workspace()
    table = ui.run_bias_experiment(0, ws)
    assert "**56%**" in table and "**90%**" in table
    lesson = ws.shown("augment")
    assert "+34 percentage points" in lesson and "best case" in lesson and "×0.06" in lesson
    ws.lang = "ko"
    assert "가장 좋은 경우" in ws.shown("augment") and "×0.06" in ws.shown("augment")
