"""Issue 14's new experiments in a real browser, in English and then in Korean: each runs from its button at its
smallest setting, shows its result, and its "your run" follows the language switch. A test per experiment, one
browser."""
# (the page fixtures: a newly loaded page per test; this module is skipped with test_browser when chromium is missing)
from test_browser import SHOTS, fresh, open_tab, page, set_slider  # noqa: F401

RUN = 180_000  # ms a run may take on a busy 2-core machine


TABS = {"Architectures": "아키텍처", "Distill": "지식 증류", "Self-train": "자기 학습", "Augment": "데이터 증강"}


def in_korean(page, tab: str, *texts: str) -> None:
    """Switch to Korean (the page reloads, the session's work kept): `tab`'s lesson panel says this run in Korean
    (`texts`). The choice is then forgotten, so that the next test's page is English again (the switch back and
    forth: tests/test_browser_i18n.py)."""
    from playwright.sync_api import expect

    before = len(page.errors)
    page.get_by_label("한국어").check()
    page.get_by_role("tab", name=TABS[tab]).click(timeout=60_000)
    panel = page.locator(".your-run:visible").first
    expect(panel).to_contain_text("내 실행 결과", timeout=30_000)
    for text in texts:
        expect(panel).to_contain_text(text, timeout=10_000)
    page.evaluate("localStorage.removeItem('cvdemo-lang')")
    # A reload aborts what the page still had in flight (the run's stream closing, when it ends just before the
    # switch): the browser logs that, and the reloaded page shows nothing of it. Any other error stays.
    page.errors[before:] = [e for e in page.errors[before:]
                            if not e.startswith("AbortError") and "Connection errored out" not in e]


def test_architectures_lenet_and_the_shift_fixes(page):
    from playwright.sync_api import expect

    open_tab(page, "Architectures")
    page.locator("#arch-model input").click()
    page.get_by_role("option", name="LeNet-5 (1998), 1x32x32").click()
    page.get_by_role("button", name="Show the layer table").click()
    page.get_by_text("60,850", exact=False).first.wait_for(timeout=RUN)
    page.get_by_text("takes only 1x32x32 inputs", exact=False).wait_for(timeout=10_000)

    set_slider(page, "shift-epochs", 1)
    page.get_by_role("button", name="Run with the fixes", exact=False).click()
    page.get_by_text("Worst / mean accuracy over shifts", exact=False).wait_for(timeout=RUN)
    expect(page.locator("#mlp-weights img")).to_be_visible(timeout=10_000)
    assert page.errors == []


def test_architectures_alexnets_pieces_and_knn(page):
    from playwright.sync_api import expect

    open_tab(page, "Architectures")
    set_slider(page, "pieces-seeds", 1)
    set_slider(page, "pieces-epochs", 1)
    page.get_by_label("ReLU vs tanh").check()
    page.get_by_role("button", name="Train both variants", exact=False).click()
    expect(page.locator("#pieces-table")).to_contain_text("tanh", timeout=RUN)
    expect(page.locator(".your-run:visible").first).to_contain_text("One seed shows no spread", timeout=10_000)

    page.get_by_role("button", name="Store and search", exact=False).click()
    expect(page.locator("#knn-table")).to_contain_text("1-NN on pixels: accuracy", timeout=RUN)
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "architectures-experiments.png"), full_page=True)
    in_korean(page, "Architectures", "원본 픽셀에서", "textures (벽돌, 잔디, 자갈 사진)")
    assert page.errors == []


def test_distill_inside_kd(page):
    from playwright.sync_api import expect

    open_tab(page, "Distill")
    page.get_by_role("button", name="Open up one KD run", exact=False).click()
    page.get_by_text("the soft term's gradient fell", exact=False).wait_for(timeout=RUN)
    expect(page.locator("#kd-outputs img")).to_be_visible(timeout=10_000)
    in_korean(page, "Distill", "소프트 예측")
    assert page.errors == []


def test_selftrain_ablation(page):
    from playwright.sync_api import expect

    open_tab(page, "Self-train")
    page.get_by_label("hard vs soft pseudo-labels").check()
    set_slider(page, "ablate-seeds", 1)
    set_slider(page, "ablate-epochs", 2)
    page.get_by_role("button", name="Run both variants", exact=False).click()
    expect(page.locator("#ablate-table")).to_contain_text("soft pseudo-labels", timeout=RUN)
    in_korean(page, "Self-train", "소프트 의사 레이블")
    assert page.errors == []


def test_augment_cutmix_and_mixup_up_close(page):
    from playwright.sync_api import expect

    open_tab(page, "Augment")
    page.get_by_role("button", name="CutMix and MixUp up close", exact=False).click()
    page.get_by_role("button", name="Mix the two images").click()
    expect(page.locator("#mix-table")).to_contain_text("λ after clipping", timeout=RUN)
    set_slider(page, "mix-epochs", 1)
    page.get_by_role("button", name="Train with and without", exact=False).click()
    page.get_by_text("with CutMix (", exact=False).first.wait_for(timeout=RUN)
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "augment-cutmix.png"), full_page=True)
    in_korean(page, "Augment", "CutMix 사용")
    assert page.errors == []
