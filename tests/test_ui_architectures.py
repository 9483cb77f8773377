"""The Architectures tab's handlers: results in the session's language, the lesson panel gets the measured numbers."""
from cvdemo.ui.architectures import fc_vs_cnn, layer_table
from cvdemo.ui.session import Workspace


def last(generator):
    *_, final = generator
    return final


def test_a_korean_workspace_gets_korean_results_and_its_run_in_the_lesson():
    ws = Workspace()
    ws.lang = "ko"
    curve, table, text, lesson = last(fc_vs_cnn(0, 2, ws))
    assert list(table.columns) == ["이동 거리 (px)", "MLP", "CNN"] and table.iloc[-1, 0] == 8
    assert set(curve["model"]) == {"MLP (완전 연결)", "SmallCNN"}
    assert "8 px 이동에서" in text and "pooling" in text
    assert all(value.endswith("%") for value in table.iloc[:, 1:].values.ravel())  # percentages, as the text says
    mlp, cnn = (f"{float(value[:-1]) / 100:.0%}" for value in table.iloc[-1, 1:])
    assert lesson.startswith("**내 실행 결과:**")
    assert "8 px 옮겨" in lesson and f"→ **{mlp}**" in lesson and f"→ **{cnn}**" in lesson  # the measured numbers
    ws.lang = "en"  # switching the language re-renders the same run
    english = ws.shown("architectures")
    assert english.startswith("**Your run:**") and f"to **{mlp}**" in english and "by 8 px" in english

    ws.lang = "ko"
    table, text = last(layer_table("paper_alexnet", 64, ws))
    assert list(table.columns[:2]) == ["층", "종류"] and table.iloc[-1, 0] == "합계"
    assert table["파라미터 수"].iloc[-1] == "62,378,344"  # thousands separators, as in the text
    assert "파라미터 수 **62,378,344**" in text and "지연 시간" in text
