"""``rt-analyze compare`` across providers: the Realtime, GPT-Live and Gemini Live samples
pairwise (compare takes two sides), latencies with the significance test, reply audio, tokens
and cost side by side, with exact values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from analyzer.cli import main as cli
from analyzer.compare import compare_datasets
from analyzer.dataset import open_dataset
from analyzer.filters import Filters

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def compare(a: str, b: str) -> dict[str, Any]:
    return compare_datasets(
        open_dataset([SAMPLES / f"{a}.parquet"]),
        open_dataset([SAMPLES / f"{b}.parquet"]),
        samples=500,
    )


def test_realtime_against_gemini() -> None:
    result = compare("ga-voice", "gemini-voice")
    assert result["counts"] == {"a": {"sessions": 1, "turns": 5}, "b": {"sessions": 1, "turns": 5}}
    first_audio = result["latency_ms"]["latency_first_audio_ms"]
    assert (first_audio["a"]["count"], first_audio["b"]["count"]) == (4, 4)
    assert (first_audio["a"]["p50"], first_audio["b"]["p50"]) == (259.5, 152.543)
    assert first_audio["p50_diff"] == -106.957
    # Four turns a side, all of B's below all of A's: the smallest two-sided p of U with
    # 4 + 4 values in the normal approximation with continuity correction.
    assert first_audio["mann_whitney_p"] == 0.0304
    assert first_audio["beyond_noise"] is True
    assert result["reply_audio"] == {
        "replies_with_audio": {"a": 4, "b": 4, "ratio": 1.0},
        "total_ms": {"a": 7120.0, "b": 7120.0, "ratio": 1.0},
        "total_bytes": {"a": 341760, "b": 341760, "ratio": 1.0},
        "p50_ms_per_reply": {"a": 1920.0, "b": 1920.0, "ratio": 1.0},
    }
    assert result["tokens"]["total_tokens"] == {"a": 1194, "b": 1207, "ratio": 1.0109}
    # ga-voice's own report cost (gpt-realtime) against gemini-voice's, computed by hand in
    # tests/test_gemini_samples.py: 0.005211 / 0.028336 = 0.1839.
    assert result["cost"] == {
        "usd": {"a": 0.028336, "b": 0.005211, "ratio": 0.1839},
        "usd_per_priced_session": {"a": 0.028336, "b": 0.005211, "ratio": 0.1839},
        "usd_per_turn": {"a": 0.005667, "b": 0.001042, "ratio": 0.1839},
        "unpriced_sessions": {"a": 0, "b": 0, "ratio": None},
        "priced_as": {"a": "gpt-realtime", "b": "gemini-live-2.5-flash", "ratio": None},
    }


def test_gpt_live_against_gemini() -> None:
    result = compare("live-voice", "gemini-voice")
    assert result["counts"] == {"a": {"sessions": 1, "turns": 4}, "b": {"sessions": 1, "turns": 5}}
    first_audio = result["latency_ms"]["latency_first_audio_ms"]
    assert (first_audio["a"]["p50"], first_audio["b"]["p50"]) == (558.426, 152.543)
    assert first_audio["p50_diff"] == -405.883
    assert first_audio["mann_whitney_p"] == 0.0304 and first_audio["beyond_noise"] is True
    # GPT-Live's interrupted reply carried 400 ms more audio than Gemini's (700 vs 300 ms).
    assert result["reply_audio"]["total_ms"] == {"a": 7520.0, "b": 7120.0, "ratio": 0.9468}
    assert result["reply_audio"]["total_bytes"] == {"a": 360960, "b": 341760, "ratio": 0.9468}
    # GPT-Live's tokens are its delegated backend's only; its voice is billed by the second.
    assert result["tokens"]["total_tokens"] == {"a": 179, "b": 1207, "ratio": 6.743}
    assert result["cost"]["usd"] == {"a": 0.014167, "b": 0.005211, "ratio": 0.3678}
    assert result["cost"]["usd_per_turn"] == {"a": 0.003542, "b": 0.001042, "ratio": 0.2943}
    assert result["cost"]["priced_as"]["a"] == "gpt-live-1"


def test_realtime_against_gpt_live() -> None:
    result = compare("ga-voice", "live-voice")
    first_audio = result["latency_ms"]["latency_first_audio_ms"]
    assert first_audio["p50_diff"] == 298.926 and first_audio["beyond_noise"] is True
    assert result["cost"]["usd"] == {"a": 0.028336, "b": 0.014167, "ratio": 0.5}


def test_cli_compare_of_two_providers_in_one_directory_by_dialect(tmp_path: Path) -> None:
    """One directory holding every provider's sample; the sides told apart by dialect."""
    for name in ("ga-voice", "live-voice", "gemini-voice"):
        (tmp_path / f"{name}.parquet").write_bytes((SAMPLES / f"{name}.parquet").read_bytes())
    args = ["compare", str(tmp_path), "--a-where", "dialect=ga", "--b-where", "dialect=gemini"]
    out = CliRunner().invoke(cli, [*args, "--format", "json", "--bootstrap", "500"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["cost"]["usd"] == {"a": 0.028336, "b": 0.005211, "ratio": 0.1839}
    assert result["latency_ms"]["first_audio"]["p50_diff"] == -106.957
    table = CliRunner().invoke(cli, [*args, "--bootstrap", "500"], env={"COLUMNS": "120"})
    assert table.exit_code == 0, table.output
    assert "reply audio" in table.stdout and "cost (USD, estimate)" in table.stdout
    assert "0.005211" in table.stdout and "gemini-live-2.5-flash" in table.stdout
    dialect_filtered = open_dataset([tmp_path], Filters(dialects=("live",)))
    assert compare_datasets(dialect_filtered, dialect_filtered, samples=200)["cost"]["usd"] == {
        "a": 0.014167,
        "b": 0.014167,
        "ratio": 1.0,
    }


@pytest.mark.parametrize("name", ["live-voice", "gemini-voice"])
def test_a_provider_against_itself_is_all_noise(name: str) -> None:
    result = compare(name, name)
    for metric in result["latency_ms"].values():
        assert metric["beyond_noise"] in (False, None)
    assert result["cost"]["usd"]["ratio"] == 1.0


def _cli(*args: str) -> Any:
    return CliRunner().invoke(cli, ["compare", *args, "--bootstrap", "500"])


def test_three_providers_at_once_are_each_pair_against_the_first() -> None:
    paths = [
        str(SAMPLES / f"{name}.parquet") for name in ("ga-voice", "live-voice", "gemini-voice")
    ]
    result = _cli(*paths, "--format", "json")
    assert result.exit_code == 0, result.output
    three = json.loads(result.output)
    assert three["baseline"] == paths[0]
    assert [(s["label"], s["sessions"], s["turns"]) for s in three["sides"]] == [
        (paths[0], 1, 5),
        (paths[1], 1, 4),
        (paths[2], 1, 5),
    ]
    # Each pair is exactly what `compare A X` says (same bootstrap seed and resamples).
    for other, pair in zip(paths[1:], three["versus_baseline"], strict=True):
        two = _cli(paths[0], other, "--format", "json")
        assert two.exit_code == 0, two.output
        assert pair == json.loads(two.output)
    first_audio = [pair["latency_ms"]["first_audio"] for pair in three["versus_baseline"]]
    assert [first_audio[0]["a"]["p50"], *(f["b"]["p50"] for f in first_audio)] == [
        259.5,
        558.426,
        152.543,
    ]
    costs = [three["versus_baseline"][0]["cost"]["usd"]["a"]] + [
        pair["cost"]["usd"]["b"] for pair in three["versus_baseline"]
    ]
    assert costs == [0.028336, 0.014167, 0.005211]


def test_three_providers_table_puts_each_side_in_a_column() -> None:
    paths = [
        str(SAMPLES / f"{name}.parquet") for name in ("ga-voice", "live-voice", "gemini-voice")
    ]
    result = CliRunner().invoke(
        cli, ["compare", *paths, "--bootstrap", "500"], env={"COLUMNS": "100"}
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:3] == [
        f"A: {paths[0]} (1 sessions, 5 turns)",
        f"B: {paths[1]} (1 sessions, 4 turns)",
        f"C: {paths[2]} (1 sessions, 5 turns)",
    ]
    first_audio = next(line for line in lines if "│ first_audio " in line)
    cells = [cell.strip() for cell in first_audio.strip("│").split("│")]
    # p50 of each side; B and C minus A, both beyond noise
    assert cells == ["first_audio", "259.5", "558.426", "298.926", "152.543", "-106.957"]
    done = next(line for line in lines if "│ response_done " in line)
    assert [cell.strip() for cell in done.strip("│").split("│")][3::2] == ["~", "~"]
    priced = next(line for line in lines if "│ priced_as " in line)
    assert [cell.strip() for cell in priced.strip("│").split("│")][1:] == [
        "gpt-realtime",
        "gpt-live-1",
        "gemini-live-2.5-flash",
    ]


def test_more_than_two_sides_with_side_filters_is_a_one_line_error() -> None:
    paths = [
        str(SAMPLES / f"{name}.parquet") for name in ("ga-voice", "live-voice", "gemini-voice")
    ]
    result = _cli(*paths, "--a-where", "host=x")
    assert result.exit_code == 2
    assert "--a-where / --b-where tell two sides apart; with more, pass paths." in result.output
