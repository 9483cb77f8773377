"""Korean and English in a real browser: a Korean browser locale gets the Korean page, the switch at the top
changes it, and the server's own texts (errors, what a run showed) follow the chosen language."""
import re

import pytest

from test_browser import BROWSER_ARGS, CHROMIUM, SHOTS  # (skips this module too when chromium is missing)

HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def ko_page(server):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*BROWSER_ARGS, "--lang=ko-KR"])
        page = browser.new_page(locale="ko-KR", viewport={"width": 1280, "height": 900})
        page.goto(server)
        page.get_by_role("tab", name="분류").first.wait_for(timeout=60_000)
        yield page
        browser.close()


def test_a_korean_browser_gets_korean_labels_and_lessons(ko_page):
    from playwright.sync_api import expect  # (waits for what the page draws after its tabs; is_visible did not)

    for tab in ("분류", "데이터 증강", "전이 학습", "지식 증류", "자기 학습", "아키텍처"):
        assert ko_page.get_by_role("tab", name=tab).count() >= 1, tab
    expect(ko_page.get_by_role("button", name="분류하기")).to_be_visible()
    expect(ko_page.get_by_text("강의 노트").first).to_be_visible()
    expect(ko_page.get_by_text("사전학습된 CNN으로 이미지 분류하기")).to_be_visible()  # the lesson
    ko_page.screenshot(path=str(SHOTS / "korean.png"), full_page=True)


def test_a_library_error_appears_in_korean(ko_page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    ko_page.locator("input[type=file]").first.set_input_files(str(bad))
    toast = ko_page.locator(".toast-body").first
    toast.wait_for(timeout=30_000)
    text = toast.inner_text()
    assert HANGUL.search(text), text
    assert "not an image" not in text and "isn't an image" not in text
    ko_page.screenshot(path=str(SHOTS / "korean-error.png"), full_page=True)
    for close in ko_page.locator(".toast-close").all():
        close.click()


TABS = ("classify", "augment", "transfer", "distill", "selftrain", "architectures")
GRADIO_DROP = {"en": "Drop Image Here", "ko": "이미지를 여기에 드롭"}  # Gradio's own text in the upload box


def assert_page_in(page, lang: str):
    """Every tab header, a button, a label, the lesson and Gradio's own upload box text in `lang`."""
    from playwright.sync_api import expect

    from cvdemo.ui.i18n import tables

    table = tables()[lang]
    expect(page.get_by_role("tab", name=table["app.tab_classify"], exact=True)).to_be_visible(timeout=60_000)
    assert [tab.inner_text() for tab in page.get_by_role("tab").all()] == [table[f"app.tab_{t}"] for t in TABS]
    expect(page.get_by_role("button", name=table["classify.run"], exact=True)).to_be_visible()
    expect(page.get_by_text(table["app.model"], exact=True).first).to_be_visible()
    expect(page.get_by_text(table["lesson.classify"].strip("*").split(".")[0]).first).to_be_visible()
    expect(page.get_by_text(GRADIO_DROP[lang]).first).to_be_visible()


def test_the_switch_changes_the_whole_page_keeps_the_work_and_survives_a_reload(ko_page, examples, server):
    from playwright.sync_api import expect

    ko_page.goto(server)  # a new page (the last test's refused upload left its image box in that state)
    expect(ko_page.get_by_role("button", name="분류하기")).to_be_visible(timeout=60_000)
    ko_page.locator("input[type=file]").first.set_input_files(examples["coffee"])
    panel = ko_page.locator(".your-run").first
    expect(panel).to_contain_text("2순위", timeout=60_000)  # a run's numbers in the lesson panel, in Korean
    ko_page.get_by_label("English").check()  # the page reloads in English
    assert_page_in(ko_page, "en")
    expect(ko_page.locator(".your-run").first).to_contain_text("the runner-up", timeout=10_000)  # the same run,
    assert "espresso" in ko_page.locator(".your-run").first.inner_text()                         # kept, in English
    ko_page.reload()  # the choice is kept, over the browser's locale
    assert_page_in(ko_page, "en")
    ko_page.get_by_label("한국어").check()
    assert_page_in(ko_page, "ko")
