"""The compiled report modules (mypyc): used only when built from the current sources, and
the report is the same compiled as in plain Python."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer import compiled
from analyzer.compiled import (
    MANIFEST,
    PURE_PYTHON_ENV,
    compiled_package_dir,
    import_closure,
    source_digest,
)

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "build_compiled.py"
SAMPLES = sorted(str(p) for p in (ROOT / "samples").glob("*.parquet"))
ALL_COMPILED = (
    "import analyzer.report, analyzer.compiled as c; "
    "print(all(c.is_compiled(m) for m in c.COMPILED_MODULES))"
)


FILES = import_closure(compiled.COMPILED_MODULES)


def _build(directory: Path, digest: str, files: list[str] = FILES) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST).write_text(json.dumps({"files": files, "sources": digest}))
    return directory


@pytest.fixture(autouse=True)
def _compiled_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PURE_PYTHON_ENV, raising=False)


def test_a_build_of_these_sources_is_searched_first(tmp_path: Path) -> None:
    build = _build(tmp_path / "build", source_digest(FILES))
    assert compiled_package_dir(build) == build / "analyzer"


def test_a_build_of_other_sources_is_not_used(tmp_path: Path) -> None:
    build = _build(tmp_path / "build", "0" * 64)
    assert compiled_package_dir(build) is None


def test_no_build_or_an_unreadable_manifest_means_plain_python(tmp_path: Path) -> None:
    assert compiled_package_dir(tmp_path / "none") is None
    gone = _build(tmp_path / "gone", source_digest(FILES), [*FILES, "no_such_module.py"])
    assert compiled_package_dir(gone) is None
    for text in ("{not json", "[]", '{"sources": 1}', '{"files": 1, "sources": "x"}'):
        (tmp_path / MANIFEST).write_text(text)
        assert compiled_package_dir(tmp_path) is None, text


def test_plain_python_can_be_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = _build(tmp_path / "build", source_digest(FILES))
    for off in ("", "0"):
        monkeypatch.setenv(PURE_PYTHON_ENV, off)
        assert compiled_package_dir(build) == build / "analyzer", off
    monkeypatch.setenv(PURE_PYTHON_ENV, "1")
    assert compiled_package_dir(build) is None


def test_the_digest_covers_what_the_compiled_modules_import_and_nothing_else(
    tmp_path: Path,
) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    sources = {
        "__init__.py": "",
        "compiled.py": "import os\n",
        "hot.py": "from pkg.sub import helper\n\ndef f():\n    from . import late\n",
        "late.py": "import pkg.leaf as leaf\n",
        "leaf.py": "X = 1\n",
        "sub/__init__.py": "",
        "sub/helper.py": "from ..leaf import X\n",
        "cold.py": "import json\n",
    }
    for name, text in sources.items():
        (package / name).write_text(text)
    files = import_closure(["hot"], package)
    assert files == sorted(set(sources) - {"cold.py"})
    digest = source_digest(files, package)
    (package / "cold.py").write_text("import os\n")  # outside: the build still holds
    assert source_digest(files, package) == digest
    (package / "sub" / "helper.py").write_text("from ..leaf import X  # edited\n")
    assert source_digest(files, package) != digest


def _run(args: list[str], pure: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k != PURE_PYTHON_ENV}
    if pure:
        env[PURE_PYTHON_ENV] = "1"
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def test_the_report_is_the_same_compiled_and_as_plain_python() -> None:
    if compiled_package_dir() is None:
        pytest.skip(f"no build of these sources for {sys.implementation.cache_tag} (make setup)")
    assert _run([sys.executable, "-c", ALL_COMPILED], pure=False).strip() == "True"
    assert _run([sys.executable, "-c", ALL_COMPILED], pure=True).strip() == "False"
    cli = [sys.executable, "-c", "from analyzer.cli import main; main()"]
    report = [*cli, "report", *SAMPLES, "--format", "json"]
    native, plain = _run(report, pure=False), _run(report, pure=True)
    assert json.loads(plain)["summary"]["turns"] == 16  # the four sample sessions
    assert native == plain


def test_a_module_not_loaded_is_not_called_compiled() -> None:
    assert not compiled.is_compiled("no_such_module")
    assert not compiled.is_compiled("compiled")  # loaded, from its source


def test_the_modules_named_compiled_exist() -> None:
    for name in compiled.COMPILED_MODULES:
        assert (compiled.PACKAGE_DIR / f"{name}.py").is_file(), name


def test_without_a_compiler_the_set_up_goes_on_in_plain_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("build_compiled", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    target = tmp_path / "build" / sys.implementation.cache_tag
    monkeypatch.setattr(script, "build_dir", lambda: target)
    monkeypatch.setattr(script, "compiled_package_dir", lambda: None)
    monkeypatch.setenv("CC", "false")  # the C compiler fails, after mypyc has run
    assert script.main() == 0
    out, err = capsys.readouterr()
    assert "compiled modules: not built" in out
    assert "false' failed with exit code 1" in err  # the compiler's failure is shown
    assert not target.exists()
