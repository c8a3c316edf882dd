"""Comparing two sets of sessions: the statistics, and `rt-analyze compare`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analyzer.compare import (
    bootstrap_median_difference,
    compare_datasets,
    compare_metric,
    comparison_table,
    mann_whitney_u,
    rank_average,
)
from analyzer.dataset import open_dataset
from analyzer.filters import Filters
from tests.test_dataset import make_fleet, make_templates, run_cli


def test_ranks_average_ties() -> None:
    assert rank_average(np.array([10.0, 20.0, 20.0, 5.0])).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_mann_whitney_matches_the_textbook_value() -> None:
    # Complete separation of 5 vs 5: U = 0, z = -2.5067 with continuity correction, p = 0.01219
    # (what scipy.stats.mannwhitneyu(..., method="asymptotic") gives).
    test = mann_whitney_u(np.arange(1, 6), np.arange(6, 11))
    assert test is not None
    assert test.u == 0.0
    assert test.z == pytest.approx(-2.506718, abs=1e-6)
    assert test.p_value == pytest.approx(0.012186, abs=1e-6)
    same = mann_whitney_u(np.arange(10), np.arange(10))
    assert same is not None and same.p_value == 1.0
    assert mann_whitney_u(np.array([]), np.arange(3)) is None


def test_u_statistics_of_both_sides_add_up() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 40).round(1), rng.normal(0.3, 1, 55).round(1)  # with ties
    ab, ba = mann_whitney_u(a, b), mann_whitney_u(b, a)
    assert ab is not None and ba is not None
    assert ab.u + ba.u == pytest.approx(40 * 55)
    assert ab.p_value == pytest.approx(ba.p_value)


def test_bootstrap_interval_is_seeded_and_covers_the_shift() -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(300, 20, 200)
    b = rng.normal(350, 20, 200)
    ci = bootstrap_median_difference(a, b, seed=1)
    assert ci == bootstrap_median_difference(a, b, seed=1)
    assert ci is not None and ci[0] < 50 < ci[1] and ci[0] > 0
    noise = compare_metric(a, a + rng.normal(0, 0.001, 200))
    assert noise["beyond_noise"] is False
    assert compare_metric(a, b)["beyond_noise"] is True
    assert compare_metric(a, np.array([]))["beyond_noise"] is None


@pytest.fixture(scope="module")
def two_fleets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A: first audio ~0.3 s after response.created; B: ~0.45 s (6 sessions, 12 turns each)."""
    root = tmp_path_factory.mktemp("compare")
    fast = make_templates(root / "tf", count=6, first_audio_s=0.3, seed=1)
    slow = make_templates(root / "ts", count=6, first_audio_s=0.45, seed=2)
    make_fleet(root / "a", fast, hosts=("proxy-a",), days=1, runs=2, sessions=3)
    make_fleet(root / "b", slow, hosts=("proxy-b",), days=1, runs=2, sessions=3, id_seed=1)
    return root / "a", root / "b"


def test_compare_finds_the_slower_first_audio_and_no_change_in_transcription(
    two_fleets: tuple[Path, Path],
) -> None:
    a, b = two_fleets
    result = compare_datasets(open_dataset(a), open_dataset(b), samples=500)
    assert result["counts"] == {
        "a": {"sessions": 6, "turns": 12},
        "b": {"sessions": 6, "turns": 12},
    }
    first_audio = result["latency_ms"]["latency_first_audio_ms"]
    assert 100 < first_audio["p50_diff"] < 250 and first_audio["beyond_noise"] is True
    assert first_audio["mann_whitney_p"] < 0.001
    transcription = result["latency_ms"]["latency_transcription_ms"]
    assert transcription["p50_diff"] == 0 and transcription["beyond_noise"] is False
    assert result["sizes"]["frames"]["ratio"] == 1.0
    assert result["tokens"]["responses"] == {"a": 12, "b": 12, "ratio": 1.0}
    table = comparison_table(result)
    assert table["metric"].iloc[0] == "latency_response_created_ms"
    json.dumps(result, allow_nan=False)


def test_cli_compare_two_paths_and_two_filters_of_one(
    two_fleets: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_fleets
    out = run_cli("compare", str(a), str(b), "--format", "json", "--bootstrap", "300")
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["latency_ms"]["first_audio"]["beyond_noise"] is True
    table = run_cli("compare", str(a), str(b), "--bootstrap", "300")
    assert table.exit_code == 0 and "first_audio" in table.stdout and "yes" in table.stdout
    both = str(a.parent / "[ab]")
    filtered = run_cli(
        "compare",
        both,
        "--a-where",
        "host=proxy-a",
        "--b-where",
        "host=proxy-b",
        "--format",
        "json",
        "--bootstrap",
        "300",
    )
    assert filtered.exit_code == 0, filtered.output
    assert json.loads(filtered.stdout)["latency_ms"] == result["latency_ms"]
    bad = run_cli("compare", str(a), "--a-where", "colour=blue")
    assert bad.exit_code != 0 and "KEY=VALUE" in bad.output


def test_compare_of_a_dataset_with_itself_is_all_noise(two_fleets: tuple[Path, Path]) -> None:
    a, _ = two_fleets
    result = compare_datasets(
        open_dataset(a), open_dataset(a, Filters(hosts=("proxy-a",))), samples=300
    )
    for metric in result["latency_ms"].values():
        assert metric["beyond_noise"] in (False, None)
