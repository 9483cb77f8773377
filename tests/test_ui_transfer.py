"""The Transfer tab's handlers: a dataset from images per class (slots), in the session's language."""
import re

import pytest
from PIL import Image

from cvdemo.ui.session import Workspace
from cvdemo.ui.transfer import SOURCES, load_dataset


@pytest.fixture
def pictures(tmp_path):
    """Six different small PNG files."""
    paths = []
    for i in range(6):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (32, 24), (40 * i, 255 - 30 * i, 7 * i)).save(path)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("third", ["cat", " Cat  "])
def test_slots_with_the_same_class_name_are_merged_and_it_says_so(pictures, third):
    ws = Workspace()
    names = ["cat", "dog", third, ""]
    files = [pictures[0:2], pictures[2:4], pictures[4:6], None]
    text = load_dataset(ws, SOURCES[2], "textures", None, *names, *files)
    assert ws.dataset.classes == ["cat", "dog"] and ws.dataset.counts() == {"cat": 4, "dog": 2}
    assert "Slots 1 and 3 are both named 'cat'" in text and "put together in one class" in text
    ws.lang = "ko"
    text = load_dataset(ws, SOURCES[2], "textures", None, *names, *files)
    assert re.search(r"1번과 3번 칸의 이름이 모두 'cat'입니다.*한 클래스로 합쳤습니다", text)


def test_slots_with_different_names_say_nothing_about_merging(pictures):
    ws = Workspace()
    text = load_dataset(ws, SOURCES[2], "textures", None, "cat", "dog", "", "", pictures[0:3], pictures[3:6], None,
                        None)
    assert ws.dataset.counts() == {"cat": 3, "dog": 3} and "Slots" not in text


def test_a_slot_with_images_but_no_name_is_named_in_the_error(pictures):
    import gradio as gr

    ws = Workspace()
    with pytest.raises(gr.Error, match="Slot 2 has 3 images but no class name"):
        load_dataset(ws, SOURCES[2], "textures", None, "cat", "  ", "", "", pictures[0:3], pictures[3:6], None, None)
    ws.lang = "ko"
    with pytest.raises(gr.Error, match="2번 칸에 이미지가 3장"):
        load_dataset(ws, SOURCES[2], "textures", None, "cat", "", "", "", pictures[0:3], pictures[3:6], None, None)


def test_the_page_starts_from_the_probes_defaults():
    """The settings the tab shows first are transfer.DEFAULTS["probe"] (the mode it starts in)."""
    from cvdemo.transfer import DEFAULTS
    from cvdemo.ui import build_demo

    blocks = list(build_demo().blocks.values())

    def start(key: str):
        (value,) = [b.value for b in blocks if f'"key": "transfer.{key}"' in str(getattr(b, "label", ""))]
        return value

    assert {key: start(key) for key in ("batch_size", "lr", "weight_decay")} == \
        {key: DEFAULTS["probe"][key] for key in ("batch_size", "lr", "weight_decay")}


def test_live_updates_come_at_most_twice_a_second_of_the_run_and_always_at_the_last_epoch():
    """The tabs' one throttle (ui.common.throttle), on the run's own clock (Event.elapsed), not the wall's."""
    from cvdemo.train import Event
    from cvdemo.ui.common import throttle

    due = throttle()
    shown = [due(Event("epoch", epoch, 5, 0, 0, elapsed=t)) for epoch, t in
             [(1, 0.1), (2, 0.6), (3, 0.8), (4, 1.0), (5, 1.05)]]
    assert shown == [False, True, False, False, True]


MARKUP_NAMES = ["<img src=x onerror=alert(1)>", "<b>bold", "a|b *c* [l](x) $$x$$"]


def rendered(markdown: str) -> str:
    """Markdown as a CommonMark renderer with tables makes it HTML (the page's own renderer reads the same)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(markdown)


def test_markup_in_class_names_is_shown_as_text_not_rendered(tmp_path):
    """Issue 18.7: a zip's folder names are the classes; wherever the page shows them as Markdown (the counts, the
    result's table, the lesson panel, the confusion plot's ticks) they come out as the text itself: no tag, no
    emphasis, no extra table cell. The misclassified gallery's captions are drawn as plain text: kept as is."""
    import html
    import zipfile

    from cvdemo.ui.transfer import confusion_plot, train

    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for c, name in enumerate(MARKUP_NAMES):
            for i in range(5):
                image = tmp_path / "x.png"
                Image.new("RGB", (32, 32), (80 * c + 9 * i, 200 - 60 * c, 11 * i)).save(image)
                zf.write(image, f"{name}/{i}.png")
    ws = Workspace()
    counts = load_dataset(ws, SOURCES[1], "textures", str(archive), *[""] * 4, *[None] * 4)
    assert sorted(ws.dataset.classes) == sorted(MARKUP_NAMES)
    *_, last = train(ws, "tf_efficientnet_lite0", "probe", False, 3, 8, 0.01, 0.0, 0.3, 0, False, "")
    status, _, _, report, _, gallery, _, lesson = last
    for markdown in (counts, report):
        page = rendered(markdown)
        assert not set(re.findall(r"<(\w+)", page)) - {"p", "strong", "em", "table", "thead", "tbody", "tr", "th",
                                                       "td", "br"}, page
        assert all(html.escape(name, quote=False) in page for name in MARKUP_NAMES), page
    assert rendered(report).count("<td>") == 2 * len(MARKUP_NAMES)  # a row per class, no cell split by '|'
    assert "<" not in status + lesson
    captions = [item["caption"] for item in gallery.value]  # plain text (no entities needed there)
    assert all(caption.split(" ")[0] and "&#" not in caption for caption in captions)
    confusion_plot(ws.result).canvas.draw()  # '$$x$$' drawn as written (no TeX parse error)


def test_confusion_counts_are_readable_on_dark_and_light_cells():
    """Counts on the darkest cells are drawn in white, the rest in black (black on navy can't be read)."""
    from types import SimpleNamespace

    import numpy as np

    from cvdemo.ui.transfer import confusion_plot

    result = SimpleNamespace(classes=["cat", "dog"], confusion=np.array([[9, 1], [0, 8]]))
    colours = {text.get_text(): text.get_color() for text in confusion_plot(result).axes[0].texts}
    assert colours == {"9": "white", "1": "black", "0": "black", "8": "white"}
