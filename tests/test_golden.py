"""Every command's answer on every sample and corpus capture equals its frozen golden output.

The goldens (``tests/golden/outputs``) were frozen from the analysis core before its rebuild on
the provider-neutral event model (issue 15). A difference is either a regression or a bug fix;
a fix regenerates the goldens (``python -m tests.golden.freeze``) and is named in its commit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.golden.freeze import current_answers, golden_path


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    return current_answers(tmp_path_factory.mktemp("golden"))


NAMES = sorted(p.name.removesuffix(".json") for p in golden_path("x").parent.glob("*.json"))


def test_every_sample_has_a_golden() -> None:
    assert "ga-voice.parquet" in NAMES and "corpus.jsonl" in NAMES
    assert len(NAMES) == 18  # the samples as Parquet and journal, the corpus as both


@pytest.mark.parametrize("name", NAMES)
def test_answers_equal_the_golden_outputs(name: str, answers: dict[str, dict[str, object]]) -> None:
    golden = json.loads(Path(golden_path(name)).read_text(encoding="utf-8"))
    got = json.loads(json.dumps(answers[name], sort_keys=True))
    for command in golden:
        assert got[command] == golden[command], f"{name}: {command} differs from its golden"
    assert set(got) == set(golden)
