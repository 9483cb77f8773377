"""The Architectures tab's handlers: results in the session's language, the lesson panel gets the measured numbers."""
from cvdemo.ui.architectures import fc_vs_cnn, layer_table
from cvdemo.ui.session import Workspace


def test_a_korean_workspace_gets_korean_results_and_its_run_in_the_lesson():
    ws = Workspace()
    ws.lang = "ko"
    curve, table, text, lesson = fc_vs_cnn(0, 2, ws)
    assert list(table.columns) == ["이동 거리 (px)", "MLP", "CNN"] and table.iloc[-1, 0] == 8
    assert set(curve["model"]) == {"MLP (완전 연결)", "SmallCNN"}
    assert "8 px 이동에서" in text and "pooling" in text
    mlp, cnn = (f"{value:.0%}" for value in table.iloc[-1, 1:])
    assert lesson.startswith("**내 실행 결과:**")
    assert "8 px 옮겨" in lesson and f"→ **{mlp}**" in lesson and f"→ **{cnn}**" in lesson  # the measured numbers
    ws.lang = "en"  # switching the language re-renders the same run
    english = ws.shown("architectures")
    assert english.startswith("**Your run:**") and f"to **{mlp}**" in english and "by 8 px" in english

    ws.lang = "ko"
    table, text = layer_table("paper_alexnet", 64, ws)
    assert list(table.columns[:2]) == ["층", "종류"] and table.iloc[-1, 0] == "합계"
    assert "파라미터 수 **62,378,344**" in text and "지연 시간" in text
    assert "**58,631,144**" in text and "**94%**" in text  # AlexNet's FC layers: where the parameters are

    table, text = layer_table("lenet5", 224, ws)
    assert table.iloc[-1, 4] == 60_850 and "1x32x32 입력만" in text


def test_alexnet_pieces_fill_a_session_table_that_grows():
    from cvdemo.ui.architectures import alexnet_pieces

    ws, rows = Workspace(), []
    ws.lang = "ko"
    *updates, (status, table, curve, lesson) = alexnet_pieces({}, rows, "activation", 1, 1, ws)
    assert status == "완료." and "tanh, 시드 1/1: 에폭 1/1" in updates[-1][0]
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
