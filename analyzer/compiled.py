"""The report's hot modules compiled with mypyc, used only when built from these very sources.

``make setup`` builds them (``scripts/build_compiled.py``) into ``build/compiled/<python>/``,
apart from the sources, with a manifest holding a digest of every source of the package. The
package puts that directory first on its ``__path__`` only when the digest still matches, so
an edited module is never shadowed by a stale build: it runs as plain Python until the next
``make setup``. Without a compiler, or with ``RT_ANALYZE_PURE_PYTHON=1``, everything is plain
Python and behaves the same (the test suite checks both give the same report)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
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


def source_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """A digest of every source of the package: a compiled module also bakes in what it
    knows of the modules it imports, so any edit makes the build stale."""
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(path.relative_to(package_dir).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def compiled_package_dir(directory: Path | None = None) -> Path | None:
    """The directory of compiled modules to search before the sources, or None to run plain
    Python (none built, built from other sources, or plain Python asked for)."""
    if os.environ.get(PURE_PYTHON_ENV):
        return None
    directory = build_dir() if directory is None else directory
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("sources") != source_digest():
        return None
    return directory / "analyzer"


def is_compiled(module_name: str) -> bool:
    """Whether ``analyzer.<module_name>`` was loaded from a compiled build."""
    module = sys.modules.get(f"analyzer.{module_name}")
    origin = getattr(module, "__file__", None) or ""
    return not origin.endswith(".py")
