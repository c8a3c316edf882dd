"""The report's hot modules compiled with mypyc, used only when built from these very sources.

``make setup`` builds them (``scripts/build_compiled.py``) into ``build/compiled/<python>/``,
apart from the sources, with a manifest holding a digest of the sources they depend on (see
:func:`import_closure`). The package puts that directory first on its ``__path__`` only when
the digest still matches, so an edited module is never shadowed by a stale build: it runs as
plain Python until the next ``make setup``. Without a compiler, or with
``RT_ANALYZE_PURE_PYTHON=1``, everything is plain Python and behaves the same (the test suite
checks both give the same report)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

# Where the report spends its time in Python (turn and item state machines, per-session
# roll-ups): compiled, they make it ~11% faster. Each must compile with mypyc as it is.
COMPILED_MODULES = ("turns", "conversation", "report", "sizes", "latency", "groups")
PURE_PYTHON_ENV = "RT_ANALYZE_PURE_PYTHON"
MANIFEST = "manifest.json"

PACKAGE_DIR = Path(__file__).resolve().parent
BUILD_ROOT = PACKAGE_DIR.parent / "build" / "compiled"


def build_dir() -> Path:
    """This interpreter's build (extension modules are built for one Python version)."""
    return BUILD_ROOT / sys.implementation.cache_tag


def import_closure(modules: Iterable[str], package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The package's sources that ``modules`` (names within the package) run when imported,
    directly or not, as paths relative to the package: themselves, the modules they import
    (at any depth, inside functions too) and those modules' packages. A compiled module bakes
    in what it knows of these, so an edit to any of them makes a build stale; an edit
    elsewhere (the audio export, the CLI) does not."""
    import ast

    package = package_dir.name

    def files_of(module: str) -> list[Path]:
        parts = module.split(".")[1:]
        found = [package_dir.joinpath(*parts[:depth], "__init__.py") for depth in range(len(parts))]
        found += [package_dir.joinpath(*parts).with_suffix(".py")]
        found += [package_dir.joinpath(*parts, "__init__.py")]
        return [path for path in found if path.is_file()]

    def imported(path: Path) -> Iterator[str]:
        here = ".".join([package, *path.relative_to(package_dir).with_suffix("").parts])
        if path.name == "__init__.py":
            here += ".__init__"
        for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
            if isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's own package up
                    anchor = here.split(".")[: -node.level]
                    base = ".".join([*anchor, base]) if base else ".".join(anchor)
                yield base
                yield from (f"{base}.{alias.name}" for alias in node.names)

    seen: set[Path] = set()
    todo = [path for name in modules for path in files_of(f"{package}.{name}")]
    todo += files_of(f"{package}.compiled")  # what decides whether a build is used
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported(path):
            if name == package or name.startswith(package + "."):
                todo += files_of(name)
    return sorted(path.relative_to(package_dir).as_posix() for path in seen)


def source_digest(files: Iterable[str], package_dir: Path = PACKAGE_DIR) -> str:
    """A digest of these sources of the package (paths relative to it) and their names."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update((package_dir / name).read_bytes())
    return digest.hexdigest()


def compiled_package_dir(directory: Path | None = None) -> Path | None:
    """The directory of compiled modules to search before the sources, or None to run plain
    Python (none built, built from other versions of its sources, or plain Python asked
    for)."""
    if os.environ.get(PURE_PYTHON_ENV, "0") not in ("", "0"):
        return None
    directory = build_dir() if directory is None else directory
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        files = manifest["files"]
        if manifest["sources"] != source_digest(files):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # none, unreadable, or a source gone
    return directory / "analyzer"


def is_compiled(module_name: str) -> bool:
    """Whether ``analyzer.<module_name>`` is loaded, from a compiled build."""
    from importlib.machinery import EXTENSION_SUFFIXES

    module = sys.modules.get(f"analyzer.{module_name}")
    origin = getattr(module, "__file__", None) or ""
    return origin.endswith(tuple(EXTENSION_SUFFIXES))
