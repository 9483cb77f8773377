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
