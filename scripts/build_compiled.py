"""Compile the report's hot modules with mypyc (``make setup`` runs this).

The build goes to ``build/compiled/<python>/`` with a manifest of the sources it was made
from (see ``analyzer/compiled.py``); nothing is written next to the sources. Up to date:
nothing to do. No compiler, or mypyc fails: one line says so and rt-analyze runs as plain
Python (exit 0: a slower report is no reason to fail the set-up)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from analyzer.compiled import (
    COMPILED_MODULES,
    MANIFEST,
    PACKAGE_DIR,
    build_dir,
    compiled_package_dir,
    import_closure,
    source_digest,
)

# One group (one shared library) named inside the package, so that it is found on the
# package's path like the modules themselves.
GROUP_NAME = "analyzer.compiled_group"


def build(target: Path) -> None:
    from mypyc.build import mypycify
    from setuptools import setup

    sources = [str(PACKAGE_DIR / f"{name}.py") for name in COMPILED_MODULES]
    config = ["--config-file", str(PACKAGE_DIR.parent / "pyproject.toml")]  # mypy's settings
    with tempfile.TemporaryDirectory(prefix="rt-compiled-") as tmp:
        cwd = os.getcwd()
        # Built from elsewhere: setuptools would read the project's pyproject.toml otherwise,
        # and mypy would leave its cache here.
        os.chdir(tmp)
        try:
            extensions = mypycify(
                [*config, *sources],
                opt_level="3",
                group_name=GROUP_NAME,
                target_dir=str(Path(tmp) / "c"),
            )
            setup(
                name="rt-analyze-compiled",
                ext_modules=extensions,
                script_args=[
                    "--quiet",
                    "build_ext",
                    "--build-lib",
                    str(target),
                    "--build-temp",
                    str(Path(tmp) / "o"),
                    "--parallel",
                    str(os.cpu_count() or 1),
                ],
            )
        finally:
            os.chdir(cwd)


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[None]:
    """mypyc's warnings and the compiler's lines (child processes too) into ``log``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with log.open("wb") as file:
        os.dup2(file.fileno(), 1)
        os.dup2(file.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def main() -> int:
    if compiled_package_dir() is not None:
        print("compiled modules: up to date")
        return 0
    target = build_dir()
    files = import_closure(COMPILED_MODULES)
    digest = source_digest(files)
    start = time.monotonic()
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    log = target / "build.log"
    try:
        with output_to(log):
            build(target)
    except (Exception, SystemExit) as exc:  # mypyc and setuptools exit on errors
        lines = [
            line
            for line in log.read_text(errors="replace").strip().splitlines()
            if "Treating generator comprehension as list" not in line  # mypyc's usual notes
        ]
        shutil.rmtree(target, ignore_errors=True)
        code = exc.code if isinstance(exc, SystemExit) else exc
        if not isinstance(code, int | None):  # setuptools exits with its error's text
            lines.append(str(code).strip())
        print("\n".join(lines[-15:]), file=sys.stderr)
        print("compiled modules: not built (see above); rt-analyze runs as plain Python")
        return 0
    manifest = {"modules": list(COMPILED_MODULES), "files": files, "sources": digest}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    print(
        f"compiled modules: built {', '.join(COMPILED_MODULES)} "
        f"in {time.monotonic() - start:.0f} s ({target})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
