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
    for tab in ("분류", "데이터 증강", "전이 학습", "지식 증류", "자기 학습", "아키텍처"):
        assert ko_page.get_by_role("tab", name=tab).count() >= 1, tab
    assert ko_page.get_by_role("button", name="분류하기").is_visible()
    assert ko_page.get_by_text("강의 노트").first.is_visible()
    assert ko_page.get_by_text("사전학습된 CNN으로 이미지 분류하기").is_visible()  # the Classify lesson
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


def test_the_switch_changes_the_page_and_the_servers_texts(ko_page, examples):
    ko_page.get_by_label("English").check()
    ko_page.get_by_role("tab", name="Classify").first.wait_for(timeout=10_000)
    assert ko_page.get_by_role("button", name="Classify").is_visible()
    # a run's numbers in the lesson panel, in English; then switched back, in Korean
    from playwright.sync_api import expect

    ko_page.locator("input[type=file]").first.set_input_files(examples["coffee"])
    panel = ko_page.locator(".your-run").first
    expect(panel).to_contain_text("espresso", timeout=60_000)
    expect(panel).to_contain_text("the runner-up")
    ko_page.get_by_label("한국어").check()
    expect(panel).to_contain_text("2순위", timeout=10_000)  # the same run's numbers, now in Korean
    assert "espresso" in panel.inner_text()
    assert ko_page.get_by_role("tab", name="분류").count() >= 1
    # the choice is remembered for the next visit, over the browser's locale
    ko_page.get_by_label("English").check()
    ko_page.get_by_role("tab", name="Classify").first.wait_for(timeout=10_000)
    ko_page.reload()
    ko_page.get_by_role("tab", name="Classify").first.wait_for(timeout=60_000)
    ko_page.get_by_text("Image classification with a pretrained CNN").wait_for(timeout=10_000)
