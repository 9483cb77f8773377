"""The app's API through gradio_client against a real server on 127.0.0.1 (offline)."""
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from conftest import ROOT


@pytest.fixture(scope="module")
def client(server):
    return Client(server, verbose=False)


def test_classify_endpoint_returns_the_label_payload(client, examples):
    result = client.predict(handle_file(examples["coffee"]), api_name="/classify")
    assert result["label"] == "espresso"
    confidences = result["confidences"]
    assert len(confidences) == 5 and confidences[0]["label"] == "espresso"
    assert confidences[0]["confidence"] > 0.8


def test_classify_takes_the_model_as_second_input(client, examples):
    result = client.predict(handle_file(examples["cat"]), "tf_efficientnet_lite0", api_name="/classify")
    assert "cat" in result["label"]


def test_compare_endpoint_puts_one_image_through_the_three_sizes(client, examples):
    table, bought, lesson = client.predict(handle_file(examples["cat"]), api_name="/compare")
    assert table["headers"] == ["model", "tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"]
    assert table["data"][0][1:] == ["224 × 224", "240 × 240", "260 × 260"] and len(table["data"]) == 9
    assert "tf_efficientnet_lite2" in bought and "Your run" in lesson


def test_hub_model_offline_is_a_clear_message(client, examples):
    with pytest.raises(AppError, match="can't be reached.*tf_efficientnet_lite0"):
        client.predict(handle_file(examples["cat"]), "resnet50.a1_in1k", api_name="/classify")


@pytest.mark.parametrize("name", ["paper_alexnet", "fc_mlp"])
def test_lesson_models_are_refused_as_classifiers(client, examples, name):
    """A lesson model has random weights: /classify says so instead of answering "hare 0.001"."""
    with pytest.raises(AppError, match="no ImageNet weights.*tf_efficientnet_lite0"):
        client.predict(handle_file(examples["cat"]), name, api_name="/classify")


def test_bad_files_get_a_message_and_the_server_keeps_serving(client, examples, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "half.png"
    truncated.write_bytes(Path(examples["cat"]).read_bytes()[:5000])
    for bad, words in ((text, "not an image|isn't an image|not a supported"), (empty, "empty"),
                       (truncated, "damaged|incomplete|corrupt")):
        with pytest.raises(AppError, match=f"(?i){words}"):
            client.predict(handle_file(str(bad)), api_name="/classify")
    assert client.predict(handle_file(examples["coffee"]), api_name="/classify")["label"] == "espresso"


def test_explain_returns_a_heatmap_image(client, examples):
    path = client.predict(handle_file(examples["cat"]), api_name="/explain")
    from PIL import Image

    with Image.open(path) as heat:
        assert heat.size == (224, 224)


def test_augment_endpoint_is_reproducible_and_labels_each_sample(client, examples):
    spec = '{"ops": [{"op": "randaugment", "num_ops": 2, "magnitude": 9}, {"op": "cutmix"}]}'
    gallery, rows, summary = client.predict(handle_file(examples["cat"]), spec, 4, 7, None, api_name="/augment")
    assert len(gallery) == len(rows) == 4
    assert all(row["caption"].count("RandAugment") == 2 and len(row["mix"]) == 2 for row in rows)
    assert all(abs(sum(w for _, w in row["mix"]) - 1) < 1e-6 for row in rows)
    assert "of 4" in summary
    again = client.predict(handle_file(examples["cat"]), spec, 4, 7, None, api_name="/augment")[1]
    assert again == rows
    other = client.predict(handle_file(examples["cat"]), spec, 4, 8, None, api_name="/augment")[1]
    assert other != rows


def test_augment_bad_spec_names_the_field(client, examples):
    with pytest.raises(AppError, match=r"ops\[0\]\.degrees"):
        client.predict(handle_file(examples["cat"]), '{"ops": [{"op": "rotation", "degrees": 400}]}', 4, 0, None,
                       api_name="/augment")
    with pytest.raises(AppError, match="16"):  # Gradio checks the slider range first
        client.predict(handle_file(examples["cat"]), '{"ops": []}', 99, 0, None, api_name="/augment")


def test_a_fine_tuned_model_belongs_to_its_session_only(server, examples):
    mine, other = Client(server, verbose=False), Client(server, verbose=False)
    counts = mine.predict("builtin", "textures", None, "", "", "", "", None, None, None, None,
                          api_name="/load_dataset")
    assert "147 images in 3 classes" in counts
    outputs = mine.predict("tf_efficientnet_lite0", "probe", False, 30, 32, 0.01, 1e-4, 0.2, 0, False, "{}",
                           api_name="/train")
    models, lesson = outputs[-2], outputs[-1]  # the Classify tab's model list, then the lesson panel
    name = [v for _shown, v in models["choices"] if v.startswith("my model")][-1]  # offered, not chosen for the user (the list keeps its value)
    assert name.startswith("my model 1") and "textures" not in name and "value" not in models
    assert lesson.startswith("**Your run:**") and "validation accuracy" in lesson
    brick = mine.predict(handle_file(examples["coffee"]), name, api_name="/classify")
    assert {c["label"] for c in brick["confidences"]} == {"brick", "grass", "gravel"}
    with pytest.raises(AppError, match="Unknown model"):  # another session can't use it
        other.predict(handle_file(examples["coffee"]), name, api_name="/classify")
    with pytest.raises(AppError, match="Load a dataset first"):  # nor sees this session's dataset
        other.predict("tf_efficientnet_lite0", "probe", False, 5, 32, 0.01, 1e-4, 0.2, 0, False, "{}", api_name="/train")
    with pytest.raises(AppError, match="minimum"):  # a refused run ...
        mine.predict("tf_efficientnet_lite0", "probe", False, 5, 32, 0.0, 1e-4, 0.2, 0, False, "{}", api_name="/train")
    again = mine.predict(handle_file(examples["coffee"]), name, api_name="/classify")  # ... keeps earlier work
    assert again == brick


def test_soft_targets_endpoint_plots_the_cat_at_five_temperatures(client, examples):
    plot, line = client.predict(handle_file(examples["cat"]), "tf_efficientnet_lite0", api_name="/soft_targets")
    assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/")
    assert any(cat in line for cat in ("tabby", "tiger cat", "Egyptian cat")) and "at T = 2.1 they get" in line


def test_distill_endpoint_compares_teacher_student_and_kd_student(client):
    status, curves, table, lesson = client.predict(100, 4, 0.9, 1, "mlp", True, api_name="/distill")
    assert status.startswith("Done in")
    assert "| Teacher" in table and "KD student" in table and "seeds [0]" in table
    assert "**KD helped" in table or "**KD hurt" in table or "**KD made no clear difference" in table
    plot = curves["value"]  # the live curves' last state: every epoch of every run
    assert plot["columns"] == ["epoch", "accuracy", "run"] and max(row[0] for row in plot["data"]) == 30
    assert curves["colors_in_legend"] == ["Teacher", "Student, labels only", "KD student"] == \
        list(dict.fromkeys(row[2] for row in plot["data"]))
    assert lesson.startswith("**Your run:**") and "held-out digits" in lesson


def test_distill_transfer_without_a_trained_model_says_what_to_do(server):
    fresh = Client(server, verbose=False)  # a new session: nothing trained in its Transfer tab
    with pytest.raises(AppError, match="Train a model in the Transfer tab first"):
        fresh.predict(4, 0.9, 12, 2, api_name="/distill_transfer")
    with pytest.raises(AppError, match="can't be reached.*tf_efficientnet_lite0"):  # a Hub teacher offline
        fresh.predict(4, 0.9, 12, 2, "kd_student_cnn", "resnet50.a1_in1k", api_name="/distill_transfer")


def test_layer_table_endpoint_counts_alexnet_and_times_it(client):
    table, text = client.predict("paper_alexnet", 224, api_name="/layer_table")
    rows = [dict(zip(table["headers"], row)) for row in table["data"]]
    assert rows[0]["type"] == "Conv2d" and rows[0]["kernel"] == "11x11 /4 pad 2" and rows[0]["output shape"] == "96x55x55"
    assert rows[-1]["layer"] == "total" and rows[-1]["params"] == 62_378_344
    assert sum(row["params"] for row in rows[:-1]) == 62_378_344
    assert "62,378,344" in text and "latency" in text and " ms" in text


def test_fc_vs_cnn_endpoint_the_cnn_survives_the_largest_shift(client):
    plot, table, text, lesson = client.predict(0, 6, api_name="/fc_vs_cnn")  # 6 epochs: ~4 s on a quiet 2-core CPU
    assert plot["columns"] == ["shift", "accuracy", "model"] and len(plot["data"]) == 2 * 9  # two curves
    rows = [dict(zip(table["headers"], row)) for row in table["data"]]
    assert rows[-1]["shift (px)"] == 8
    assert rows[-1]["CNN"] > rows[-1]["MLP"] + 0.3 and rows[0]["MLP"] > 0.7
    assert "pool" in text
    cnn_mean = sum(row["CNN"] for row in rows[1:]) / (len(rows) - 1)
    assert lesson.startswith("**Your run:**") and f"**{cnn_mean:.0%}** on average" in lesson


def test_feature_maps_endpoint_returns_a_grid_per_layer_in_order(client, examples):
    layers = ["blocks.6", "conv_stem", "blocks.3"]
    gallery = client.predict(handle_file(examples["cat"]), layers, api_name="/feature_maps")
    assert len(gallery) >= 3
    assert [item["caption"].split(" ·")[0] for item in gallery] == ["conv_stem", "blocks.3", "blocks.6"]
    assert gallery[0]["caption"].endswith("32x112x112")


def test_distill_the_transfer_model_and_classify_with_the_student(server, examples):
    client = Client(server, verbose=False)
    client.predict("builtin", "textures", None, "", "", "", "", [], [], [], [], api_name="/load_dataset")
    client.predict("tf_efficientnet_lite0", "probe", False, 20, 128, 0.01, 1e-4, 0.2, 0, False, "{}", api_name="/train")
    outputs = client.predict(4, 0.9, 3, 0, "kd_student_cnn", api_name="/distill_transfer")  # no extra copies
    student = [v for _shown, v in outputs[-1]["choices"] if v.startswith("my model")][-1]
    assert student.startswith("my model 2: kd_student_cnn student of")
    assert "smaller" in outputs[2]  # the report says how much smaller and what it kept
    assert outputs[3].startswith("**Your run:**") and "validation accuracy" in outputs[3]
    result = client.predict(handle_file(examples["coffee"]), student, api_name="/classify")
    assert {c["label"] for c in result["confidences"]} == {"brick", "grass", "gravel"}


def test_distill_an_imagenet_teacher_without_labels_and_classify_with_the_student(server, examples):
    client = Client(server, verbose=False)  # no dataset, no Transfer model: the built-in textures are the images
    outputs = client.predict(4, 0.9, 1, 0, "kd_student_cnn", "tf_efficientnet_lite0", api_name="/distill_transfer")
    student = [v for _shown, v in outputs[-1]["choices"] if v.startswith("my model")][-1]
    assert student == "my model 1: kd_student_cnn student of tf_efficientnet_lite0"
    assert "No labels exist for the teacher's 1,000 classes" in outputs[2] and "built-in textures" in outputs[2]
    assert "agrees with the teacher's top-1" in outputs[3]
    result = client.predict(handle_file(examples["coffee"]), student, api_name="/classify")
    assert len(result["confidences"]) == 5  # ImageNet classes, from a 1000-way student


def test_a_script_that_builds_the_app_and_exits_ends_cleanly():
    """Building the demo starts the default model's warm-up in a thread; a process that ends while it runs (a
    script that imports app.py, a server stopped in its first seconds) exits 0, not an abort inside torch."""
    result = subprocess.run([sys.executable, "-c", "import app"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
