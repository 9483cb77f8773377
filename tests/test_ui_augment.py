"""The Augment tab's handlers: results in the session's language, the lesson panel gets the measured numbers."""
import re

from cvdemo.ui.augment import augment, your_run
from cvdemo.ui.session import Workspace


def test_a_korean_workspace_gets_korean_results_and_its_run_in_the_lesson(examples):
    ws = Workspace()
    ws.lang = "ko"
    gallery, rows, summary = augment(examples["cat"], '{"ops": [{"op": "rotation", "degrees": 90}]}', 3, 5, None, ws)
    assert len(gallery) == len(rows) == 3 and all(caption.startswith("1순위: ") for _, caption in gallery)
    kept = re.search(r"샘플 \*\*3개 중 (\d)개\*\*에서 1순위가 그대로", summary).group(1)
    lesson = your_run(ws)
    assert lesson.startswith("**내 실행 결과:**")
    assert f"샘플 **3개 중 {kept}개**" in lesson  # the measured numbers
    assert re.search(r"평균 \d+%였습니다", lesson)
    ws.lang = "en"  # switching the language re-renders the same run
    assert your_run(ws).startswith("**Your run:**") and f"**{kept} of your 3**" in your_run(ws)


def test_a_preset_sets_the_controls_and_a_control_edits_the_pipeline_it_set():
    """One source of truth: "strong" puts its 7 ops in the ops box and its values in the sliders; moving a slider
    then changes that one field of the pipeline and keeps the rest (its 7 ops, the saturation no slider shows)."""
    import json

    from cvdemo.augment import PRESETS
    from cvdemo.ui.augment import CONTROLS, controls_from_spec, spec_from_controls

    strong = json.dumps(PRESETS["strong"])
    order, *values = controls_from_spec(strong)
    values = [1 if isinstance(v, dict) else v for v in values]  # (gr.skip(): an unused control keeps its value)
    assert order == [op["op"] for op in PRESETS["strong"]["ops"]] and len(order) == 7
    shown = dict(zip(CONTROLS, values))
    assert shown[("crop", "scale", 0)] == 0.3 and shown[("rotation", "degrees", None)] == 20
    assert json.loads(spec_from_controls(strong, order, *values)) == PRESETS["strong"]  # the JSON is what runs
    values[CONTROLS.index(("rotation", "degrees", None))] = 45
    edited = json.loads(spec_from_controls(strong, order, *values))["ops"]
    assert [op["op"] for op in edited] == order
    assert edited[2] == {"op": "rotation", "degrees": 45} and edited[4]["saturation"] == [0.6, 1.4]
    assert [op["op"] for op in json.loads(spec_from_controls(strong, ["mixup", "hflip"], *values))["ops"]] == [
        "hflip", "mixup"]  # batch ops last


def test_the_bias_experiment_says_how_long_so_far_and_then_how_long_is_left(monkeypatch):
    """The 30-second experiment shows live progress; the second run knows how long the first took."""
    import time

    import cvdemo.ui.augment as tab

    def experiment(seed=0):
        time.sleep(1.3)
        scores = {"normal": 0.9, "dark": 0.5}
        return {"without_augmentation": scores, "with_augmentation": scores, "seconds": 9.0, "train": 3, "val": 1,
                "dark_factor": 0.3, "spec": {"ops": [{"op": "brightness"}]}}

    monkeypatch.setattr(tab.jobs, "bias_experiment", experiment)
    monkeypatch.setattr(tab, "BIAS_TOOK", {})
    first = list(tab.run_bias_experiment(0, Workspace()))
    assert "s so far" in first[0] and "left" not in first[0] and "90%" in first[-1]
    second = list(tab.run_bias_experiment(0, Workspace()))
    assert "about 8 s left" in second[0]  # 9 s last time, 1 s in


def test_the_bias_experiment_says_its_augmentation_range_is_the_best_case(monkeypatch):
    """The range was drawn knowing the test darkness: the lesson says so, with the measured figures."""
    from cvdemo.ui import augment as ui

    result = {"train": 150, "val": 50, "dark_factor": 0.06, "seconds": 12.0,
              "spec": {"ops": [{"op": "brightness", "brightness": [0.036, 1.0]}]},
              "without_augmentation": {"normal": 0.98, "dark": 0.56}, "with_augmentation": {"normal": 0.98, "dark": 0.9}}
    monkeypatch.setattr(ui.jobs, "bias_experiment", lambda seed: result)
    ws = Workspace()
    *_, table = ui.run_bias_experiment(0, ws)
    assert "**56%**" in table and "**90%**" in table
    lesson = ws.shown("augment")
    assert "+34 percentage points" in lesson and "best case" in lesson and "×0.06" in lesson
    ws.lang = "ko"
    assert "가장 좋은 경우" in ws.shown("augment") and "×0.06" in ws.shown("augment")


def test_cutmix_up_close_and_the_training_run_in_korean(examples):
    from cvdemo.ui.augment import mix_close, mix_train
    from cvdemo.ui.session import Workspace

    ws = Workspace()
    ws.lang = "ko"
    gallery, table = mix_close(examples["cat"], None, "cutmix", 1.0, 0, ws)
    assert len(gallery) == 4 and table.startswith("| 섞기 | 뽑은 λ | 잘라 낸 뒤 λ |") and "espresso" in table
    assert "잘라 낸 뒤의 λ" in table and gallery[0][1].endswith("espresso")
    *updates, (status, curve, result, lesson) = mix_train("cutmix", 1.0, 1, 0, ws)
    assert "섞기 없음: 에폭 1/1" in updates[1][0] and set(curve["run"]) == {"섞기 없음", "CutMix 사용"}
    assert status.endswith("초 만에 끝났습니다.") and "CutMix 사용 **" in result
    mixed = f"{curve[curve['run'] == 'CutMix 사용']['accuracy'].max():.1%}"
    assert lesson.startswith("**내 실행 결과:**") and f"**{mixed}**" in lesson
    ws.lang = "en"
    assert f"**{mixed}** with CutMix" in ws.shown("augment")
