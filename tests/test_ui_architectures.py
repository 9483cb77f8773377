"""The Architectures tab's handlers: results in the session's language, the lesson panel gets the measured numbers."""
from cvdemo.ui.architectures import fc_vs_cnn, layer_table
from cvdemo.ui.session import Workspace


def last(generator):
    *_, final = generator
    return final


def shown(styled):
    """What the page's table shows for a styled table (its display values), as an array of rows."""
    import gradio as gr
    import numpy as np

    return np.array([[cell["display_value"] if isinstance(cell, dict) else cell for cell in row]
                     for row in gr.Dataframe(interactive=False).postprocess(styled).metadata["display_value"]])


def test_a_korean_workspace_gets_korean_results_and_its_run_in_the_lesson():
    ws = Workspace()
    ws.lang = "ko"
    curve, styled, text, lesson = last(fc_vs_cnn(0, 2, ws))
    table = styled.data
    assert list(table.columns) == ["이동 거리 (px)", "MLP", "CNN"] and table.iloc[-1, 0] == 8
    assert set(curve["model"]) == {"MLP (완전 연결)", "SmallCNN"}
    assert "1~8 px 이동에서" in text and "pooling" in text
    shifted = table.iloc[1:]  # the worst and the mean over every shifted test, not the last shift alone
    worst, mean = {m: f"{shifted[m].min():.0%}" for m in ("MLP", "CNN")}, {m: f"{shifted[m].mean():.0%}"
                                                                              for m in ("MLP", "CNN")}
    at = {m: int(shifted[shifted.columns[0]].iloc[int(shifted[m].to_numpy().argmin())]) for m in ("MLP", "CNN")}
    assert all(text.endswith("%") for text in shown(styled)[:, 1:].ravel())  # percentages, as the text says
    assert lesson.startswith("**내 실행 결과:**")
    assert f"평균 **{mean['MLP']}**, 최저 {worst['MLP']}({at['MLP']} px)" in lesson  # the measured numbers
    assert f"평균 **{mean['CNN']}**, 최저 {worst['CNN']}({at['CNN']} px)" in lesson and "부분적으로만 이동 불변" in lesson
    ws.lang = "en"  # switching the language re-renders the same run
    english = ws.shown("architectures")
    assert english.startswith("**Your run:**") and f"**{mean['CNN']}** on average, {worst['CNN']} at worst" in english
    assert "only partly shift-invariant" in english

    ws.lang = "ko"
    styled, text = last(layer_table("paper_alexnet", 64, ws))
    table = styled.data
    assert list(table.columns[:2]) == ["층", "종류"] and table.iloc[-1, 0] == "합계"
    assert table["파라미터 수"].iloc[-1] == 62_378_344 and shown(styled)[-1, 4] == "62,378,344"  # as in the text
    assert "파라미터 수 **62,378,344**" in text and "지연 시간" in text
