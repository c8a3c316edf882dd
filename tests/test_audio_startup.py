"""The CLI starts without pandas (~0.3 s and ~36 MB); the commands that need it import it when
they run. (`rt-analyze audio` reads the normalized event table, whose Arrow building makes
pyarrow import pandas: it is no longer among the commands that run without it.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).parent.parent / "samples" / "ga-voice.parquet"

# Runs the CLI in a fresh interpreter and prints whether pandas was imported (by anything:
# the CLI, the library, or pyarrow's own conversions, which import it on first use).
_RUN = """
import sys
from analyzer.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    assert not exit.code, exit.code
print("pandas" in sys.modules)
"""


def _run(*args: str) -> tuple[bool, str]:
    """(whether the command imported pandas, what it wrote)."""
    out = subprocess.run(
        [sys.executable, "-c", _RUN, *args], capture_output=True, text=True, check=True
    )
    written, _, imported = out.stdout.rstrip("\n").rpartition("\n")
    return imported == "True", written


def _imports_pandas(*args: str) -> bool:
    return _run(*args)[0]


def test_help_does_not_import_pandas() -> None:
    assert not _imports_pandas("--help")


def test_commands_that_use_pandas_still_get_it() -> None:
    assert _imports_pandas("sizes", str(SAMPLE), "--format", "json")


def test_sizes_help_lists_the_groupings() -> None:
    from analyzer.sizes import GROUPINGS

    helped = subprocess.run(
        [sys.executable, "-c", "from analyzer.cli import main; main(['sizes', '--help'])"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "[" + "|".join(sorted(GROUPINGS)) + "]" in helped.stdout
