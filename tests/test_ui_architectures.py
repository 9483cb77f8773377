"""The Architectures tab's handlers: results in the session's language, the lesson panel gets the measured numbers."""
from cvdemo.ui.architectures import fc_vs_cnn, layer_table
from cvdemo.ui.session import Workspace


def test_a_korean_workspace_gets_korean_results_and_its_run_in_the_lesson():
    ws = Workspace()
    ws.lang = "ko"
    curve, table, text, lesson = fc_vs_cnn(0, 2, ws)
    assert list(table.columns) == ["이동 거리 (px)", "MLP", "CNN"] and table.iloc[-1, 0] == 8
    assert set(curve["model"]) == {"MLP (완전 연결)", "SmallCNN"}
    assert "1~8 px 이동에서" in text and "pooling" in text
    shifted = table.iloc[1:]  # the worst and the mean over every shifted test, not the last shift alone
    worst, mean = {m: f"{shifted[m].min():.0%}" for m in ("MLP", "CNN")}, {m: f"{shifted[m].mean():.0%}"
                                                                              for m in ("MLP", "CNN")}
    at = {m: int(shifted[shifted.columns[0]].iloc[int(shifted[m].to_numpy().argmin())]) for m in ("MLP", "CNN")}
    assert lesson.startswith("**내 실행 결과:**")
    assert f"평균 **{mean['MLP']}**, 최저 {worst['MLP']}({at['MLP']} px)" in lesson  # the measured numbers
    assert f"평균 **{mean['CNN']}**, 최저 {worst['CNN']}({at['CNN']} px)" in lesson and "부분적으로만 이동 불변" in lesson
    ws.lang = "en"  # switching the language re-renders the same run
    english = ws.shown("architectures")
    assert english.startswith("**Your run:**") and f"**{mean['CNN']}** on average, {worst['CNN']} at worst" in english
    assert "only partly shift-invariant" in english

    ws.lang = "ko"
    table, text = layer_table("paper_alexnet", 64, ws)
    assert list(table.columns[:2]) == ["층", "종류"] and table.iloc[-1, 0] == "합계"
    assert "파라미터 수 **62,378,344**" in text and "지연 시간" in text
