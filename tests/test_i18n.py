"""Korean and English: every user-facing text has both, the Korean table is really Korean, every key
the code uses exists, and library errors come out in the session's language."""
import ast
import re
from pathlib import Path

import pytest

from cvdemo.errors import ImageError

from cvdemo.ui.i18n import i18n, lang_of, message_text, placeholders, tables, tr

ROOT = Path(__file__).resolve().parent.parent
HANGUL = re.compile(r"[\uac00-\ud7a3]")
# Words that stay in Latin letters in Korean text: names of things, units, code.
LATIN_OK = re.compile(r"`[^`]*`|\{[^}]*\}|https?://\S+|\*\*?|[A-Za-z0-9_.+\-/×x%()]+")
LIBRARY = ("error.", "note.")  # the library's messages: Korean templates only (English is the message itself)
TABS = ("classify", "augment", "transfer", "distill", "selftrain", "architectures")


def test_both_languages_have_the_same_keys():
    en, ko = tables()["en"], tables()["ko"]
    ui = {k for k in en if not k.startswith(LIBRARY)}
    assert ui - set(ko) == set(), "keys with no Korean text"
    assert {k for k in ko if not k.startswith(LIBRARY)} - ui == set(), "Korean keys with no English text"


def test_every_tab_has_a_lesson_in_both_languages():
    for tab in TABS:
        for lang in ("en", "ko"):
            text = tables()[lang][f"lesson.{tab}"]
            assert len(text) > 200 and "TODO" not in text, (tab, lang)


@pytest.mark.parametrize("key", sorted(tables()["en"]))
def test_korean_text_is_korean_and_takes_the_same_numbers(key):
    if key.startswith(LIBRARY):
        pytest.skip("error templates are checked against the library's raise sites")
    en, ko = tables()["en"][key], tables()["ko"][key]
    assert placeholders(en) == placeholders(ko), "the two languages fill in different numbers"
    if HANGUL.search(en) is None and LATIN_OK.sub("", en).strip(" ·:,.;—-|#\n→()[]'\"") == "":
        return  # nothing to translate (a model name, a unit, a number)
    assert HANGUL.search(ko), f"no Korean in the Korean text: {ko!r}"
    assert ko != en, "the Korean text is the English one"


def keys_used_in_code() -> set[str]:
    """Every literal key passed to _(...), tr(lang, ...), workspace.tr(...) or workspace.show(tab, ...)."""
    keys = set()
    for path in (ROOT / "cvdemo" / "ui").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            position = {"_": 0, "tr": 1 if isinstance(node.func, ast.Name) else 0, "show": 1}.get(name)
            if position is None or len(node.args) <= position:
                continue
            arg = node.args[position]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and "." in arg.value:
                keys.add(arg.value)
    return keys


def test_every_key_the_code_uses_has_a_text():
    used = keys_used_in_code()
    assert len(used) > 20, "the walk found too few keys: is it still looking in the right place?"
    missing = sorted(k for k in used if k not in tables()["en"])
    assert missing == []


def string_constants_in_ui() -> set[str]:
    trees = [ast.parse(path.read_text()) for path in (ROOT / "cvdemo" / "ui").glob("*.py")]
    return {node.value for tree in trees for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_no_key_is_left_unused():
    used = string_constants_in_ui() | {f"lesson.{tab}" for tab in TABS} | {f"app.tab_{tab}" for tab in TABS}
    unused = sorted(k for k in tables()["en"] if not k.startswith(LIBRARY) and k not in used)
    assert unused == [], "texts no code shows (or a key built at run time: make it literal)"


def error_classes(trees: list[ast.Module]) -> dict[str, tuple[int | None, set[str]]]:
    """Every CvdemoError class in the library -> where `code` sits among its positional arguments (None:
    it takes no code) and the params its own __init__ adds (SpecError adds `field`). A class without an
    __init__ of its own takes its base's."""
    classes: dict[str, tuple[int | None, set[str]]] = {"CvdemoError": (1, set())}
    defs = [node for tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    while new := [c for c in defs if c.name not in classes and any(getattr(b, "id", None) in classes for b in c.bases)]:
        for cls in new:
            base = next(classes[b.id] for b in cls.bases if getattr(b, "id", None) in classes)
            init = next((f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
            if init is None:
                classes[cls.name] = base
                continue
            names = [a.arg for a in init.args.args[1:]]
            added = {kw.arg for call in ast.walk(init) if isinstance(call, ast.Call) for kw in call.keywords}
            classes[cls.name] = (names.index("code") if "code" in names else None, base[1] | added - {None, "code"})
    return classes


def code_of(call: ast.Call, position: int | None) -> ast.expr | None:
    """The expression passed as `code` to an error class (keyword, or positional at `position`)."""
    code = next((kw.value for kw in call.keywords if kw.arg == "code"), None)
    if code is None and position is not None and len(call.args) > position:
        code = call.args[position]
    return code


def code_template(code: ast.expr | None, args: list[str]) -> str | None:
    """For a helper that builds an error from its own arguments ("limit.{name}" from f"limit.{name}",
    "{code}" from code=code): the code with the argument named; None if the code is anything else."""
    parts = code.values if isinstance(code, ast.JoinedStr) else [code]
    parts = [part.value if isinstance(part, ast.FormattedValue) else part for part in parts]
    if not any(isinstance(part, ast.Name) for part in parts):
        return None
    template = ""
    for part in parts:
        if isinstance(part, ast.Constant) and isinstance(part.value, str):
            template += part.value.replace("{", "{{").replace("}", "}}")
        elif isinstance(part, ast.Name) and part.id in args:
            template += "{" + part.id + "}"
        else:
            return None
    return template


def raise_sites() -> list[tuple[str, int, str | None, set[str]]]:
    """(file, line, code, params) of every library error the library makes, with code None where the
    code isn't a literal. An error built by a helper from its arguments (`_unsafe(..., "symlink")`,
    `bad("epochs", ...)`) is found where the helper is called, with the helper's params and the call's."""
    trees = {str(path.relative_to(ROOT)): ast.parse(path.read_text()) for path in (ROOT / "cvdemo").rglob("*.py")}
    classes = error_classes(list(trees.values()))
    helpers, built_by_helpers = {}, set()  # helper name -> (its arguments, code template, its params)
    for tree in trees.values():
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef):
                continue
            args = [a.arg for a in func.args.args]
            for call in ast.walk(func):
                name = isinstance(call, ast.Call) and getattr(call.func, "id", None)
                if name in classes and (template := code_template(code_of(call, classes[name][0]), args)):
                    given = {kw.arg for kw in call.keywords} - {None, "code"}
                    helpers[func.name] = (args, template, classes[name][1] | given)
                    built_by_helpers.add(call)
    sites = []
    for file, tree in trees.items():
        for node in ast.walk(tree):
            name = isinstance(node, ast.Call) and getattr(node.func, "id", None)
            given = {kw.arg for kw in getattr(node, "keywords", ())} - {None, "code"}
            if name in classes and node not in built_by_helpers:
                code = code_of(node, classes[name][0])
                literal = code.value if isinstance(code, ast.Constant) and isinstance(code.value, str) else None
                sites.append((file, node.lineno, literal, classes[name][1] | given))
            elif name in helpers:
                args, template, params = helpers[name]
                bound = dict(zip(args, node.args)) | {kw.arg: kw.value for kw in node.keywords}
                try:
                    code = template.format(**{k: v.value for k, v in bound.items() if isinstance(v, ast.Constant)})
                except KeyError:
                    code = None
                sites.append((file, node.lineno, code, params | (given - set(args))))
    return sites


def test_every_library_error_code_has_a_korean_message_that_fills_in():
    sites = raise_sites()
    assert len(sites) > 40
    ko = tables()["ko"]
    problems = []
    for file, line, code, params in sites:
        template = ko.get(f"error.{code}")
        if code is None:
            problems.append(f"{file}:{line}: the error has no literal code (give it one, e.g. code=\"limit.epochs\")")
        elif template is None:
            problems.append(f"{file}:{line}: no Korean message for {code!r}")
        elif not HANGUL.search(template):
            problems.append(f"{file}:{line}: the Korean message for {code!r} isn't Korean")
        elif placeholders(template) - params:
            problems.append(f"{file}:{line}: {code!r} needs {placeholders(template) - params} that this raise lacks")
    assert problems == []


def test_a_library_error_reads_in_the_sessions_language():
    err = ImageError("The file is empty (0 bytes). Choose another file.", "image.empty")
    assert message_text(err, "en") == str(err)
    korean = message_text(err, "ko")
    assert HANGUL.search(korean) and korean != str(err)


def test_language_names_and_server_texts():
    assert lang_of("ko-KR") == "ko" and lang_of("en-US") == "en" and lang_of(None) == "en"
    assert HANGUL.search(tr("ko", "app.server_error"))
    assert tr("en", "classify.info", model="m", runtime="r", ms="1.0").startswith("**m**")
    assert i18n().translations_dict["ko"]["app.tab_classify"] == "분류"


def unrendered_emphasis(text: str) -> list[str]:
    """Bold or italics that Markdown won't render: a closing ** or * right after punctuation or a
    {placeholder} (which may end in %, like 92.4%) and right before a letter, as in '**{acc}**에' or
    '*지식(knowledge)*이' (CommonMark's flanking rule). Runs are paired in order, ** with ** and * with *."""
    bad = []
    for mark in ("**", "*"):
        runs = [m.start() for m in re.finditer(r"(?<!\*)\*+(?!\*)", text) if m.end() - m.start() == len(mark)]
        for close in runs[1::2]:
            before, after = text[close - 1], text[close + len(mark):close + len(mark) + 1]
            if not before.isalnum() and not before.isspace() and after.isalnum():
                bad.append(text[max(0, close - 20):close + 6])
    return bad


def test_bold_and_italics_render_in_every_text():
    problems = {key: unrendered_emphasis(text) for lang in ("en", "ko") for key, text in tables()[lang].items()
                if unrendered_emphasis(text)}
    assert problems == {}, "reword so the closing ** or * is followed by a space or punctuation"


def note_sites() -> list[tuple[str, int, str, set[str]]]:
    """(file, line, code, params) of every library Note (a message that is not an error)."""
    sites = []
    for path in (ROOT / "cvdemo").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Note":
                code = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) else None
                sites.append((f"{path.relative_to(ROOT)}", node.lineno, code, {kw.arg for kw in node.keywords}))
    return sites


def test_every_library_note_has_a_korean_message_that_fills_in():
    sites = note_sites()
    assert len(sites) >= 10
    ko = tables()["ko"]
    problems = [f"{file}:{line}: {code!r}" for file, line, code, params in sites
                if code is None or f"note.{code}" not in ko or placeholders(ko[f"note.{code}"]) - params]
    assert problems == [], "a Note needs a literal code with a Korean template that its params fill"


def test_skipped_files_are_reported_in_the_sessions_language():
    import io
    import zipfile

    from cvdemo.uploads import from_zip
    from cvdemo.ui.session import Workspace

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(3):
            for cls in ("cat", "dog"):
                png = io.BytesIO()
                from PIL import Image

                Image.new("RGB", (32, 32), (i * 80, 40 if cls == "cat" else 200, 9)).save(png, "PNG")
                z.writestr(f"{cls}/{i}.png", png.getvalue())
        z.writestr("cat/notes.png", b"not a picture")
        z.writestr("readme.txt", b"hello")
    _, skipped = from_zip(buf.getvalue())
    ws = Workspace()
    english = [ws.say(m) for m in skipped]
    ws.lang = "ko"
    korean = [ws.say(m) for m in skipped]
    assert len(skipped) == 2 and english == [str(m) for m in skipped]
    assert all(HANGUL.search(k) for k in korean), korean
    assert any("cat/notes.png" in k and "이미지" in k for k in korean)  # the file and its (Korean) reason


def test_the_chosen_language_is_set_before_gradios_scripts_run():
    """The page's HTML gets the script that makes the switch's choice the browser's language first in <head>
    (Gradio reads navigator.language once, as it starts); other responses pass untouched."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from cvdemo.ui import launch_options

    page = '<html><head><script type="module" src="./assets/index.js"></script></head><body></body></html>'
    app = Starlette(routes=[Route("/", lambda r: HTMLResponse(page)), Route("/config", lambda r: JSONResponse({}))],
                    middleware=launch_options()["app_kwargs"]["middleware"])
    client = TestClient(app)
    html = client.get("/").text
    assert html.index("navigator") < html.index("index.js") and "localStorage.getItem('cvdemo-lang')" in html
    assert html.replace(html[html.index("<script>"):html.index("</script>") + 9], "", 1) == page
    assert client.get("/config").json() == {}


def test_choices_send_codes_never_the_text_they_show():
    """Every radio, dropdown and checkbox group sends the library a code: no choice's value is a text of the
    page in either language (a translated label must not reach the library as 'Built-in dataset')."""
    import gradio as gr

    from cvdemo.ui import build_demo
    from cvdemo.ui.i18n import tables

    texts = {text for table in tables().values() for text in table.values()}
    choices = [(label, value) for block in build_demo().blocks.values()
               if isinstance(block, (gr.Radio, gr.Dropdown, gr.CheckboxGroup)) for label, value in block.choices]
    assert any("__i18n__" in str(label) for label, _ in choices)  # translated labels exist, and:
    assert [value for _, value in choices if value in texts] == []
