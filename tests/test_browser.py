"""The page in a real browser: Playwright driving Debian's headless chromium against the app.
Screenshots land in artifacts/screenshots/. Any browser console error fails the test."""
import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync"]

if not os.path.exists(CHROMIUM):
    if os.environ.get("CI"):
        raise RuntimeError("CI must run the browser tests: install Debian's chromium (see .ci/run)")
    pytest.skip("browser tests need Debian's chromium (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors
        page.goto(server)
        page.get_by_role("tab", name="Classify").wait_for(timeout=60_000)
        yield page
        browser.close()


def test_classify_an_example_in_the_page(page):
    page.get_by_text("Example photos").scroll_into_view_if_needed()
    page.locator(".gallery-item, [data-testid='examples'] button, button.example").nth(1).click()  # coffee
    label = page.locator("[data-testid='label-output-value'], .output-class").first
    label.wait_for(timeout=60_000)
    page.get_by_text("espresso").first.wait_for(timeout=60_000)
    page.get_by_text("model time").wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "classify.png"), full_page=True)
    page.get_by_role("button", name="Explain (Grad-CAM)").click()
    page.locator("img[alt]").last.wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(SHOTS / "gradcam.png"), full_page=True)
    assert page.errors == []


def test_a_bad_upload_shows_a_message_in_the_page(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    page.locator("input[type=file]").first.set_input_files(str(bad))
    page.get_by_text("isn't an image", exact=False).or_(page.get_by_text("not an image", exact=False)).first.wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "bad-upload.png"), full_page=True)
    page.errors.clear()  # the failed request logs to the console by design; nothing else may


def test_augment_draws_a_captioned_gallery(page):
    page.get_by_role("tab", name="Augment").click()
    page.get_by_role("button", name="Draw samples").click()
    page.get_by_text("The top-1 stayed").wait_for(timeout=60_000)
    page.get_by_text("of your 8", exact=False).wait_for(timeout=10_000)  # the lesson panel shows this run
    assert page.locator("[data-testid='gallery'] img, .gallery img, .grid-wrap img").count() >= 8
    page.screenshot(path=str(SHOTS / "augment.png"), full_page=True)
    assert page.errors == []


def test_transfer_trains_on_a_tiny_uploaded_dataset(page, tmp_path):
    from PIL import Image
    from skimage import data

    folders = {}
    for name, photo in (("cat", data.chelsea()), ("coffee", data.coffee())):
        paths = []
        for i in range(6):  # six different crops per class
            crop = Image.fromarray(photo).crop((i * 20, i * 10, i * 20 + 260, i * 10 + 260))
            paths.append(str(tmp_path / f"{name}{i}.jpg"))
            crop.save(paths[-1])
        folders[name] = paths
    page.get_by_role("tab", name="Transfer").click()
    page.get_by_label("Images per class").check()
    page.get_by_text("Images per class (upload several files").click()
    for i, (name, paths) in enumerate(folders.items()):
        page.locator(f"#class-name-{i} textarea, #class-name-{i} input").first.fill(name)
        page.locator(f"#class-files-{i} input[type=file]").set_input_files(paths)
    page.wait_for_timeout(1500)  # uploads finish
    page.get_by_role("button", name="Load dataset").click()
    page.get_by_text("12 images in 2 classes").wait_for(timeout=60_000)
    page.get_by_label("Also train from scratch").uncheck()
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("is now in the Classify tab").wait_for(timeout=120_000)
    page.get_by_text("validation accuracy").first.wait_for(timeout=10_000)
    page.locator("canvas, svg.marks").nth(1).wait_for(timeout=15_000)  # the loss and accuracy curves are drawn
    page.screenshot(path=str(SHOTS / "transfer.png"), full_page=True)
    page.get_by_role("tab", name="Classify").click()
    page.get_by_label("Model").first.click()
    page.get_by_text("my model 1", exact=False).first.wait_for(timeout=10_000)
    page.keyboard.press("Escape")
    assert page.errors == []


def test_distill_temperature_explorer_draws_the_soft_targets(page):
    for close in page.get_by_test_id("toast-close").all():  # earlier tests' messages
        close.click()
    page.get_by_role("tab", name="Distill").click()
    page.get_by_text("Temperature: the teacher's dark knowledge").wait_for(timeout=10_000)
    page.get_by_role("button", name="Show the softened predictions").click()
    page.get_by_text("relative to the top class", exact=False).wait_for(timeout=60_000)
    plot = page.locator("[data-testid='matplotlib'] img:visible").first  # (other tabs keep their plots hidden)
    plot.wait_for(timeout=10_000)
    assert plot.evaluate("img => img.naturalWidth") > 1000  # the five temperatures side by side
    assert page.locator("#distill-teacher input").input_value() == "Your Transfer-tab model"  # a translated choice
    page.get_by_role("button", name="Run teacher vs student vs KD student").click()
    page.get_by_text("held-out accuracy", exact=False).first.wait_for(timeout=60_000)  # live, while it trains
    page.get_by_text("Done in", exact=False).wait_for(timeout=120_000)
    page.get_by_text("KD helped", exact=False).or_(page.get_by_text("KD hurt", exact=False)).or_(
        page.get_by_text("KD made no clear difference", exact=False)).first.wait_for(timeout=10_000)
    page.get_by_text("held-out digits", exact=False).wait_for(timeout=10_000)  # the lesson panel: this run
    assert page.locator("#distill-curves canvas, #distill-curves svg.marks").count() >= 1
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "distill.png"), full_page=True)
    assert page.errors == []


def test_architectures_shows_the_vgg16_layer_table(page):
    page.get_by_role("tab", name="Architectures").click()
    page.get_by_text("Why stacked 3x3 convolutions").wait_for(timeout=10_000)
    page.locator("#arch-model input").click()
    page.get_by_role("option", name="VGG16", exact=True).click()
    page.get_by_role("button", name="Show the layer table").click()
    page.get_by_text("138,357,544").wait_for(timeout=120_000)
    page.get_by_text("features.28", exact=True).first.wait_for(timeout=10_000)  # VGG16's last conv, in the table
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "architectures.png"), full_page=True)
    assert page.errors == []


def test_selftrain_plots_rounds_and_shows_accepted_and_rejected_pseudo_labels(page):
    page.get_by_role("tab", name="Self-train").click()
    page.get_by_label("Rounds").first.fill("1")
    page.get_by_label("Rounds").first.press("Enter")
    page.get_by_role("button", name="Run self-training").click()
    page.get_by_text("held-out test images", exact=False).wait_for(timeout=120_000)
    page.get_by_text("Accepted (most confident first)").wait_for(timeout=10_000)
    thumbnails = page.get_by_role("button", name=re.compile(r"^Thumbnail \d+ of \d+$"))
    thumbnails.nth(9).wait_for(timeout=10_000)
    assert page.get_by_role("img", name=re.compile("✗")).count() >= 1  # a wrong pseudo-label, marked as such
    page.get_by_text("of them are right", exact=False).wait_for(timeout=10_000)  # the precision at the threshold
    page.get_by_text("supervised-only baseline reached", exact=False).wait_for(timeout=10_000)  # the lesson panel
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "selftrain.png"), full_page=True)
    assert page.errors == []


def test_markup_in_a_zips_class_names_is_shown_as_text(page, tmp_path):
    """Issue 18.7 in the page: folder names with a tag, an unclosed <b> and TeX show as written (no image fetched,
    nothing bold, no formula)."""
    import zipfile

    from PIL import Image

    names = ["<img src=x onerror=alert(1)>", "<b>bold", "$$x$$"]
    archive = tmp_path / "markup.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for c, name in enumerate(names):
            for i in range(3):
                Image.new("RGB", (32, 32), (90 * c, 30 * i, 60)).save(tmp_path / "x.png")
                zf.write(tmp_path / "x.png", f"{name}/{i}.png")
    page.get_by_role("tab", name="Transfer").click()
    page.get_by_label("Zip of class folders", exact=True).check()
    page.locator("#transfer-zip input[type=file]").set_input_files(str(archive))
    page.wait_for_timeout(1500)  # the upload finishes
    page.get_by_role("button", name="Load dataset").click()
    counts = page.locator("#transfer-counts")
    counts.get_by_text("9 images in 3 classes", exact=False).wait_for(timeout=60_000)
    text = counts.inner_text()
    assert all(name in text for name in names), text
    assert counts.locator("img, b, .katex").count() == 0
    assert page.errors == []
