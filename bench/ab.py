"""``python -m bench.ab [REF] [--runs N] [--capture PATH]``: the report of a git ref (default
HEAD) against the working tree, runs interleaved, medians and peak RSS, outputs compared.

For A/B-ing a change to the analysis on a noisy machine. Each side imports the ``analyzer`` of
its own tree: the editable install's import finder is taken out first, since it wins over
``PYTHONPATH`` and would run the working tree on both sides (sessions 4 and 5 measured several
changes that way and saw "no difference": see bench/README.md). Both sides run as plain Python
(``RT_ANALYZE_PURE_PYTHON``): the ref's tree has no compiled build (analyzer/compiled.py).
"""

from __future__ import annotations

import argparse
import filecmp
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from bench.analyze import measure

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CAPTURE = ROOT / "bench" / "out" / "capture-v1-1000MB.parquet"

# Runs ``rt-analyze report CAPTURE --format json > OUT`` with the analyzer found in TREE only.
_REPORT = """
import os, sys
tree, capture, out = sys.argv[1:4]
sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f)]
sys.path.insert(0, tree)
import analyzer
assert analyzer.__file__.startswith(tree), analyzer.__file__
from analyzer.cli import main
with open(out, "w") as sys.stdout:
    try:
        main(["report", capture, "--format", "json"])
    except SystemExit as exit:
        assert not exit.code, exit.code
"""


def export_tree(ref: str, into: Path) -> Path:
    """The ``analyzer`` package of ``ref``, written under ``into``."""
    command = ["git", "archive", "--format=tar", ref, "analyzer"]
    archive = subprocess.run(command, cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref", nargs="?", default="HEAD")
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--capture", type=Path, default=DEFAULT_CAPTURE)
    args = parser.parse_args(argv)
    if not args.capture.exists():
        print(f"no capture at {args.capture}: run `python -m bench --only report` first")
        return 2
    with tempfile.TemporaryDirectory(prefix="rt-ab-") as tmp:
        try:
            trees = {"A": export_tree(args.ref, Path(tmp) / "a"), "B": ROOT}
        except subprocess.CalledProcessError as error:
            print(f"cannot read {args.ref!r} from git: {error.stderr.decode().strip()}")
            return 2
        outs = {side: Path(tmp) / f"{side}.json" for side in trees}
        packages = [str(tree / "analyzer") for tree in trees.values()]
        subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], check=True)
        walls: dict[str, list[float]] = {"A": [], "B": []}
        rss: dict[str, list[float]] = {"A": [], "B": []}
        for run in range(args.runs):
            for side in ("A", "B") if run % 2 == 0 else ("B", "A"):
                cmd = [sys.executable, "-c", _REPORT, str(trees[side]), str(args.capture)]
                measured = measure([*cmd, str(outs[side])], timeout_s=600)
                walls[side].append(measured.wall_s)
                rss[side].append(measured.peak_rss_mb)
        for side, label in (("A", args.ref), ("B", "working tree")):
            print(
                f"{side} {label}: median {statistics.median(walls[side]):.3f} s, "
                f"min {min(walls[side]):.3f} s, peak RSS {max(rss[side]):.0f} MB"
            )
        ratio = statistics.median(walls["B"]) / statistics.median(walls["A"])
        same = filecmp.cmp(outs["A"], outs["B"], shallow=False)
        print(f"B / A: {ratio:.3f}; reports {'identical' if same else 'DIFFER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
