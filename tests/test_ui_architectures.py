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
    assert "**58,631,144**" in text and "**94%**" in text  # AlexNet's FC layers: where the parameters are

    styled, text = last(layer_table("lenet5", 224, ws))
    assert styled.data.iloc[-1, 4] == 60_850 and "1x32x32 입력만" in text


def test_alexnet_pieces_fill_a_session_table_that_grows():
    from cvdemo.ui.architectures import alexnet_pieces

    ws, rows = Workspace(), []
    ws.lang = "ko"
    *updates, (status, table, curve, lesson) = alexnet_pieces({}, rows, "activation", 1, 1, ws)
    assert status == "완료했습니다." and "tanh, 시드 1/1: 에폭 1/1" in updates[-1][0]
    assert list(table["변형"]) == ["ReLU", "tanh"] and table.iloc[0, 1] == "시드 1개 × 1 에폭, 이미지 500장"
    assert set(curve["variant"]) == {"ReLU", "tanh"} and len(curve) == 2
    relu = f"{rows[0]['val_mean']:.1%} ± 0.0%"
    assert table.iloc[0, 2] == relu and lesson.startswith("**내 실행 결과:**") and f"ReLU **{relu}**" in lesson
    ws.lang = "en"
    assert "One seed shows no spread" in ws.shown("architectures")
    *_, (_, table, _, _) = alexnet_pieces({}, rows, "dropout", 1, 1, ws)
    assert list(table["variant"]) == ["ReLU", "tanh", "dropout 0.5", "no dropout"]  # earlier runs stay, side by side


def test_shift_fixes_show_weights_and_the_four_curves_in_korean():
    from cvdemo.ui.architectures import shift_fixes

    ws = Workspace()
    ws.lang = "ko"
    curve, image, text, lesson = shift_fixes(0, 1, ws)
    assert set(curve["model"]) == {"MLP (완전 연결)", "MLP + 이동 증강", "SmallCNN", "SmallCNN + anti-aliased pooling"}
    assert image.size[0] > 8 * 32 and "최저 / 평균 정확도" in text
    worst = f"{curve[curve['model'] == 'MLP + 이동 증강']['accuracy'].min():.0%}"
    assert lesson.startswith("**내 실행 결과:**") and f"**{worst}** 수준" in lesson
    ws.lang = "en"
    assert f"to **{worst}**" in ws.shown("architectures")


def test_knn_store_and_search_in_korean():
    from cvdemo.ui.architectures import knn

    ws = Workspace()
    ws.lang = "ko"
    curve, table, text, lesson = knn("textures", 1, ws)
    assert set(curve["method"]) == {"픽셀 1-NN", "특징 1-NN", "특징 위 linear probe"}
    assert list(table.columns[:2]) == ["저장한 이미지 수", "픽셀 1-NN: 정확도"] and table.iloc[-1, 0] == 111
    assert "픽셀 값 16,384개" in text and lesson.startswith("**내 실행 결과:**")
    assert f"원본 픽셀에서 {table.iloc[-1, 1]}" in lesson
    ws.lang = "en"
    english = ws.shown("architectures")
    assert f"{table.iloc[-1, 1]} on raw pixels" in english and "textures (photos of" in english
