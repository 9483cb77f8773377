"""Screenshots of every tab in English and Korean, for the README and a Space's card.

    python -m scripts.screenshots [--out docs/screenshots] [--width 640]

Starts `python app.py` offline on a free 127.0.0.1 port (scripts/load.py's start_server), opens it in Debian's
headless chromium (Playwright) with the browser's language set to each language, classifies the coffee example
in the Classify tab, and saves what a 1280 x 900 window shows of each tab as <out>/<tab>.<lang>.png: shrunk to
--width pixels and reduced to 32 colours (about 35 KB each, 400 KB in all).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from PIL import Image

from scripts.load import ROOT, start_server, stop_server

TABS = ("classify", "augment", "transfer", "distill", "selftrain", "architectures")
LOCALES = {"en": "en-US", "ko": "ko-KR"}
VIEWPORT = {"width": 1280, "height": 900}
COLOURS = 32  # a palette this small keeps a screenshot near 35 KB


def shoot(url: str, lang: str, out: Path, width: int) -> list[Path]:
    """Each tab of the page in `lang`, saved small; returns the files."""
    from playwright.sync_api import sync_playwright

    from cvdemo.ui.i18n import tables

    names, saved = tables()[lang], []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu", f"--lang={LOCALES[lang]}"])
        page = browser.new_page(locale=LOCALES[lang], viewport=VIEWPORT)
        page.goto(url)
        page.get_by_role("tab", name=names["app.tab_classify"], exact=True).wait_for(timeout=60_000)
        page.locator(".gallery-item, [data-testid='examples'] button, button.example").nth(1).click()  # coffee
        page.locator("#classify-top [data-testid='label-output-value']").wait_for(timeout=60_000)
        for tab in TABS:
            page.get_by_role("tab", name=names[f"app.tab_{tab}"], exact=True).click()
            page.wait_for_timeout(1500)  # the tab's images and plots drawn
            raw = Path(tmp) / f"{tab}.png"
            page.screenshot(path=str(raw))
            image = Image.open(raw).convert("RGB")
            image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
            saved.append(out / f"{tab}.{lang}.png")
            image.quantize(COLOURS).save(saved[-1], optimize=True)
        browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--width", type=int, default=640)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp) / "app.log")
        try:
            files = [path for lang in LOCALES for path in shoot(url, lang, args.out, args.width)]
        finally:
            stop_server(proc)
    for path in files:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {path.stat().st_size / 1024:.0f} KB")
    print(f"total {sum(path.stat().st_size for path in files) / 1024:.0f} KB")


if __name__ == "__main__":
    main()
