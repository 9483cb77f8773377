"""Set-up promises: CI runs the README's test command; torch and torchvision are pinned exactly; the UI sits on
top of the library (never the other way round) and its tabs share through ui.common, not each other."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -q -r requirements-dev.txt && .venv/bin/python -m pytest"


def test_ci_runs_the_readme_test_command():
    assert TEST_COMMAND in (ROOT / "README.md").read_text()
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text()


def test_torch_pins_are_exact_and_everything_is_pinned():
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert "torch==2.14.1" in lines and "torchvision==0.29.1" in lines
    assert all("==" in line for line in lines), [line for line in lines if "==" not in line]


def imported_modules(path: Path) -> set[str]:
    """The modules a file imports, relative ones resolved against its package (cvdemo.ui.common, ...)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]) if node.level else ""
            module = ".".join(filter(None, (base, node.module)))
            names |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return names


def test_the_library_never_imports_the_ui_and_tabs_never_import_each_other():
    tabs = {f"cvdemo.ui.{p.stem}" for p in (ROOT / "cvdemo" / "ui").glob("*.py")} - {
        "cvdemo.ui.__init__", "cvdemo.ui.common", "cvdemo.ui.i18n", "cvdemo.ui.session"}
    for path in (ROOT / "cvdemo").rglob("*.py"):
        imported = imported_modules(path)
        if "ui" not in path.relative_to(ROOT / "cvdemo").parts:
            assert not any(m == "cvdemo.ui" or m.startswith("cvdemo.ui.") for m in imported), path
        elif path.stem != "__init__":
            assert not imported & tabs, path
    for path in (ROOT / "cvdemo" / "bench.py", ROOT / "tests" / "conftest.py"):
        assert not any(m.startswith("cvdemo.ui") for m in imported_modules(path)), path
