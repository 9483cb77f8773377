"""The Classify tab's handlers, as the page calls them: the three offline sizes side by side."""
import re

from cvdemo.ui.classify import compare_sizes, what_bigger_bought
from cvdemo.ui.session import Workspace

HANGUL = re.compile(r"[\uac00-\ud7a3]")


def test_compare_shows_the_sizes_side_by_side_and_says_what_the_bigger_one_bought(examples):
    ws = Workspace()
    table, bought, lesson = compare_sizes(examples["cat"], ws)
    assert list(table.columns) == ["model", "tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"]
    assert list(table["model"]) == ["input (px)", "parameters", "size (float32 weights)", "model time (ms)",
                                    "#1", "#2", "#3", "#4", "#5"]
    assert list(table.iloc[0, 1:]) == ["224 × 224", "240 × 240", "260 × 260"]
    small, big = table.iloc[4, 1].rsplit(" ", 1)[0], table.iloc[4, 3].rsplit(" ", 1)[0]
    if small == big:
        assert bought.startswith("tf_efficientnet_lite0 and tf_efficientnet_lite2 both put")
    else:
        assert bought.startswith("The bigger network changed the answer") and small in bought and big in bought
    assert "× the parameters" in bought and "true label" in bought
    assert lesson.startswith("**Your run:**") and "260 px" in lesson and big in lesson
    ws.lang = "ko"
    table, bought, lesson = compare_sizes(examples["cat"], ws)
    assert list(table.iloc[:, 0]) == ["입력 (px)", "파라미터 수", "크기 (float32 가중치)", "추론 시간 (ms)",
                                      "1위", "2위", "3위", "4위", "5위"]
    assert HANGUL.search(bought) and "파라미터는" in bought and lesson.startswith("**내 실행 결과:**")
    ws.lang = "en"  # the switch re-renders the panel from the same numbers
    assert ws.shown("classify").startswith("**Your run:**")


def test_the_sentence_covers_a_kept_answer_more_or_less_sure_and_a_changed_one():
    def row(name, top, params, ms):
        return {"name": name, "top": top, "params": params, "ms": ms, "input_size": (224, 224), "mb": 1.0}

    ws = Workspace()
    small = row("s", [("cat", 0.5), ("dog", 0.3)], 100, 10.0)
    sure = what_bigger_bought([small, row("b", [("cat", 0.7), ("dog", 0.1)], 130, 25.0)], ws)
    assert "more confident: 50.0% → 70.0% (+20.0 points)" in sure and "1.3× the parameters and 2.5×" in sure
    less = what_bigger_bought([small, row("b", [("cat", 0.4), ("dog", 0.3)], 130, 25.0)], ws)
    assert "*less* confident" in less and "(-10.0 points)" in less
    changed = what_bigger_bought([small, row("b", [("dog", 0.6), ("cat", 0.2)], 130, 25.0)], ws)
    assert "*cat* first (50.0%)" in changed and "**dog** first (60.0%)" in changed and "gives *cat* 20.0%" in changed
    gone = what_bigger_bought([small, row("b", [("dog", 0.6), ("fox", 0.2)], 130, 25.0)], ws)
    assert "gives *cat* less than its top-2" in gone
    ws.lang = "ko"
    assert "덜 확신합니다" in what_bigger_bought([small, row("b", [("cat", 0.4), ("dog", 0.3)], 130, 25.0)], ws)


def test_the_heading_and_lesson_follow_the_model_in_use_and_show_what_it_saw(examples):
    """A Transfer-tab model has its own few classes: the result's heading and the lesson say so (not ImageNet's
    1000), and the crop the model saw is shown with its size in the photo."""
    from cvdemo.inference import Classifier
    from cvdemo.models import create_model
    from cvdemo.ui.classify import classify_image, describe

    ws = Workspace()
    own = ws.add_model(Classifier("x", create_model(num_classes=3), labels=["brick", "grass", "gravel"],
                                  runtime="torch"), "probe")
    for model, heading, classes in ((None, "Top 5 of 1,000 classes · tf_efficientnet_lite0", "1,000 classes"),
                                    (own, f"Top 3 of 3 classes · {own}", "3 classes")):
        payload, info = classify_image(examples["cat"], model, ws)
        line, lesson, label, seen = describe(info, ws)
        assert label.label == heading and f"over all {classes} of" in lesson
        assert len(payload) == min(5, info["classes"])
        assert seen.label.startswith("What the model saw: the centre 263 × 262 px of your 451 × 300 image")
        assert seen.value is not None
    ws.lang = "ko"
    assert "클래스 3개 중" in describe(info, ws)[2].label
