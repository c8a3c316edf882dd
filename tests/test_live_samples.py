"""The GPT-Live samples (recorded through real mitmdump at real-time pace by
``samples/make_samples.py``): turns, interruption and latency against the peer's own record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyzer.reader import read_capture
from analyzer.report import build_report

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
# (sample, the peer's time the end of speech arrived / was reflected, first audio sent there)
KEYS = {
    "live-voice": ("speech_end_at_s", "first_audio_at_s"),
    "live-sideband": ("speech_end_reflected_at_s", "first_audio_reflected_at_s"),
}


@pytest.mark.parametrize("name", sorted(KEYS))
def test_live_samples_turns_and_latency_within_10_ms_of_the_peers_record(name: str) -> None:
    (session,) = build_report(read_capture(SAMPLES / f"{name}.parquet"))["sessions"]
    truth = json.loads((SAMPLES / f"{name}.server-turns.json").read_text())
    assert session["dialect"] == "live"
    turns = session["turns"]
    assert [t["interrupted"] for t in turns] == [t["status"] == "interrupted" for t in truth]
    assert [t["interrupted"] for t in turns] == [True, False, False, False]
    start, audio = KEYS[name]
    for turn, fact in zip(turns, truth, strict=True):
        expected = (fact[audio] - fact[start]) * 1000
        assert turn["latency_ms"]["first_audio"] == pytest.approx(expected, abs=10)
