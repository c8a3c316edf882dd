"""Golden outputs of every analysis command on every sample and corpus capture.

The analysis core is rebuilt around a provider-neutral event model (issue 15); these files pin
what the old core answered, so the new one can be checked against it answer by answer. Any
difference must be a bug fix named in its commit and in ``tests/test_golden.py``.

Regenerate (only when an answer changes on purpose): ``python -m tests.golden.freeze``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from click.testing import CliRunner

from analyzer.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = Path(__file__).resolve().parent / "outputs"
SAMPLES = ROOT / "samples"
CORPUS = ROOT / "tests" / "corpus"


def sample_captures() -> list[Path]:
    """Every committed sample, as Parquet and as journal."""
    return sorted([*SAMPLES.glob("*.parquet"), *SAMPLES.glob("*.jsonl")])


def corpus_capture(directory: Path) -> Path:
    """All corpus sessions recorded into one run, at fixed times (deterministic files)."""
    from tests.test_hostile_input import corpus_frames, record

    names = sorted(p.name for p in CORPUS.glob("*.txt"))
    sessions = {name.removesuffix(".txt"): corpus_frames(CORPUS / name) for name in names}
    return record(directory, sessions, run_id="rt-golden-corpus").parquet_path


def command_lines(capture: Path) -> Iterator[tuple[str, list[str]]]:
    c = str(capture)
    yield "report", ["report", c, "--format", "json"]
    yield "turns", ["turns", c, "--format", "json"]
    yield "latency", ["latency", c, "--format", "json"]
    yield "latency-per-turn", ["latency", c, "--per-turn", "--format", "json"]
    for by in ("event", "direction", "session"):
        yield f"sizes-{by}", ["sizes", c, "--by", by, "--format", "json"]
    yield "conversation", ["conversation", c, "--format", "json"]


def answers(capture: Path, wav_dir: Path) -> dict[str, object]:
    """Every command's answer on one capture, paths replaced by ``CAPTURE``."""
    out: dict[str, object] = {}
    for name, args in command_lines(capture):
        result = CliRunner().invoke(cli, args, env={"RT_ANALYZE_DEBUG": ""})
        text = result.stdout.replace(str(capture), "CAPTURE")
        out[name] = {"exit_code": result.exit_code, "stdout": _parsed(text)}
    result = CliRunner().invoke(cli, ["audio", str(capture), "-o", str(wav_dir)])
    hashes = {
        str(p.relative_to(wav_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(wav_dir.rglob("*.wav"))
    }
    out["audio"] = {"exit_code": result.exit_code, "wav_sha256": hashes}
    return out


def _parsed(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def golden_path(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.json"


def current_answers(tmp: Path) -> dict[str, dict[str, object]]:
    """Name of a capture -> its answers, for every golden capture."""
    found: dict[str, dict[str, object]] = {}
    for capture in sample_captures():
        found[capture.name] = answers(capture, tmp / "wav" / capture.name)
    corpus = corpus_capture(tmp / "corpus")
    found["corpus.parquet"] = answers(corpus, tmp / "wav" / "corpus.parquet")
    found["corpus.jsonl"] = answers(corpus.with_suffix(".jsonl"), tmp / "wav" / "corpus.jsonl")
    return found


def main() -> int:
    GOLDEN_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, value in current_answers(Path(tmp)).items():
            text = json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True)
            golden_path(name).write_text(text + "\n", encoding="utf-8")
            print(f"wrote {golden_path(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
