"""Korean and English: every string a user sees, in both languages.

Where the strings live (a test checks both languages have every key, and no English left in Korean):
- `locales/<name>.json`: {"en": {key: text}, "ko": {key: text}}; the key used in code is "<name>.<key>"
  (e.g. locales/classify.json's "model" is `_("classify.model")`). Texts may hold {placeholders}.
- `lessons/<tab>.en.md` and `lessons/<tab>.ko.md`: the lesson panel that opens a tab (key "lesson.<tab>").
- `locales/errors.json` and `locales/notes.json`: the library's errors (cvdemo.errors.CvdemoError) and
  notes (cvdemo.errors.Note: a file skipped, a setting lowered) by their stable `code`, keys "error.<code>"
  and "note.<code>"; "en" is empty because the library's own message is the English text, "ko" has a
  template per code.

Two ways a text reaches the page:
- static (labels, buttons, headings, lessons): `_(key)` gives a gr.I18n key; the browser translates
  it (the language switch's choice, else the browser's locale).
- made by a handler (results, status lines, errors, "what your run showed"): `tr(lang, key, **params)`
  on the server, with `lang` = the session's `Workspace.lang` (set by the switch and on page load).
"""
from __future__ import annotations

import json
import string
from functools import lru_cache
from pathlib import Path

import gradio as gr

from ..errors import CvdemoError, Note

LANGS = ("en", "ko")
HERE = Path(__file__).parent
LOCALES = HERE / "locales"
LESSONS = HERE / "lessons"
LIBRARY = {"errors": "error", "notes": "note"}  # locale files of the library's messages -> their key prefix


@lru_cache(maxsize=1)
def tables() -> dict[str, dict[str, str]]:
    """{"en": {key: text}, "ko": {key: text}} from every locale and lesson file."""
    out: dict[str, dict[str, str]] = {lang: {} for lang in LANGS}
    for path in sorted(LOCALES.glob("*.json")):
        prefix = LIBRARY.get(path.stem, path.stem)
        data = json.loads(path.read_text(encoding="utf-8"))
        for lang in LANGS:
            out[lang].update({f"{prefix}.{key}": text for key, text in data.get(lang, {}).items()})
    for path in sorted(LESSONS.glob("*.md")):
        tab, lang = path.stem.rsplit(".", 1)
        out[lang][f"lesson.{tab}"] = path.read_text(encoding="utf-8").strip()
    return out


@lru_cache(maxsize=1)
def i18n() -> gr.I18n:
    """The table the browser translates static texts with (passed to `demo.launch(i18n=...)`)."""
    return gr.I18n(**tables())


def _(key: str):
    """A static text for a component (label, button, Markdown): translated in the browser."""
    if key not in tables()["en"]:
        raise KeyError(f"no English text for {key!r}: add it to {LOCALES}/")
    return i18n()(key)


def lang_of(value: str | None) -> str:
    """'ko', 'ko-KR', 'ko_KR.UTF-8' -> 'ko'; anything else -> 'en'."""
    return "ko" if str(value or "").lower().startswith("ko") else "en"


class Phrase:
    """A text to put into another one, translated when that one is (a "your run" kept by `Workspace.show` and
    shown again after a language switch says its variant names in the new language too)."""

    def __init__(self, key: str, **params) -> None:
        self.key, self.params = key, params

    def text(self, lang: str | None) -> str:
        return tr(lang, self.key, **self.params)


def tr(lang: str | None, key: str, **params) -> str:
    """A text made on the server, in `lang`, with `params` filled in ({name} placeholders; a Phrase in `lang`)."""
    table = tables()
    text = table[lang_of(lang)].get(key) or table["en"][key]
    params = {k: v.text(lang) if isinstance(v, Phrase) else v for k, v in params.items()}
    return text.format(**params) if params else text


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def message_text(message: CvdemoError | Note, lang: str | None) -> str:
    """A library error or note in `lang`: English is the library's own message; Korean comes from its
    code's template filled with its params (errors among them said in Korean too), or the English
    message if the code has none."""
    if lang_of(lang) == "en":
        return str(message)
    prefix = "note" if isinstance(message, Note) else "error"
    template = tables()["ko"].get(f"{prefix}.{message.code}")
    if template is None:
        return str(message)
    params = {k: message_text(v, lang) if isinstance(v, (CvdemoError, Note)) else v
              for k, v in message.params.items()}
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):  # a param the template needs is missing: say it in English
        return str(message)


# The language switch. Gradio's frontend picks its locale once, from `navigator.language`, as the page starts,
# and draws the tab headers and its own texts (the upload box, a toast's title) in it; a later locale change
# reaches only the parts drawn after it. So the page starts in the chosen language: FIRST, put at the top of the
# page's <head> (by `LanguageFirst`) so that it runs before Gradio's scripts, makes the choice kept in
# localStorage the browser's language for this page. The switch keeps the choice, hands this session's
# workspace to a one-time token (session.hand_off) and reloads; the new page takes it back on load
# (session.take_over), so models, datasets and "your run" survive the switch.
FIRST = b"""<script>(() => {
  const lang = localStorage.getItem('cvdemo-lang');
  if (lang !== 'en' && lang !== 'ko') return;
  document.documentElement.lang = lang;
  for (const [name, value] of [['language', lang], ['languages', [lang]]])
    Object.defineProperty(navigator, name, {get: () => value, configurable: true});
})();</script>"""


class LanguageFirst:
    """ASGI middleware: puts FIRST right after the <head> of every HTML page the app serves."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        held: dict = {}

        async def patched(message) -> None:
            if message["type"] == "http.response.start":
                headers = dict(message["headers"])
                if not headers.get(b"content-type", b"").startswith(b"text/html"):
                    return await send(message)
                held["start"], held["body"] = message, b""
            elif message["type"] == "http.response.body" and "start" in held:
                held["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                body = held.pop("body").replace(b"<head>", b"<head>" + FIRST, 1)
                start = held.pop("start")
                start["headers"] = [(k, v) for k, v in start["headers"] if k != b"content-length"]
                start["headers"].append((b"content-length", str(len(body)).encode()))
                await send(start)
                return await send({"type": "http.response.body", "body": body})
            else:
                return await send(message)

        await self.app(scope, receive, patched)


# Each runs before its Python handler, whose inputs are (language, ...): it returns those inputs.
SWITCH_JS = "(lang, ...rest) => { localStorage.setItem('cvdemo-lang', lang); return [lang, ...rest]; }"
RELOAD_JS = "(token) => { sessionStorage.setItem('cvdemo-handoff', token); location.reload(); }"
DETECT_JS = """(current, token, ...rest) => {
  const lang = localStorage.getItem('cvdemo-lang')
    || ((navigator.language || 'en').toLowerCase().startsWith('ko') ? 'ko' : 'en');
  token = sessionStorage.getItem('cvdemo-handoff') || '';
  sessionStorage.removeItem('cvdemo-handoff');
  return [lang, token, ...rest]; }"""


def lesson_panel(tab: str) -> gr.Markdown:
    """The lesson that opens a tab: the claim and what to try (lessons/<tab>.<lang>.md), then what this
    user's own last run showed. Returns that last Markdown: handlers fill it via `Workspace.show`."""
    with gr.Accordion(_("app.lesson"), open=True):
        gr.Markdown(_(f"lesson.{tab}"))
        return gr.Markdown(_("app.no_run_yet"), elem_classes="your-run")
