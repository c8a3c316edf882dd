"""The HTML report of a GPT-Live (primary and sideband) and a Gemini Live session: what was said
on every turn, and a player for every WAV ``rt-analyze audio`` writes of it."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from analyzer.audio import export_audio
from analyzer.dataset import open_dataset
from analyzer.dataset_analysis import dataset_report
from analyzer.html_report import render_html_report

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.mark.parametrize("name", ["live-voice", "live-sideband", "gemini-voice"])
def test_html_report_shows_every_turn_and_plays_every_wav(name: str, tmp_path: Path) -> None:
    capture = SAMPLES / f"{name}.parquet"
    out = tmp_path / "report.html"
    result = render_html_report(capture, out, progress=False)
    text = out.read_text(encoding="utf-8")

    wavs = export_audio([capture], tmp_path / "wavs").files
    # Each utterance, each reply and the session's stereo mix: what `rt-analyze audio` writes.
    assert (result.sessions, result.audio_skipped) == (1, 0)
    assert result.audio_players == len(wavs) == 9
    assert len(re.findall(r"<audio\b", text)) == len(wavs)

    (session,) = dataset_report(open_dataset([capture]))["sessions"]
    turns = session["turns"]
    said = []
    for before, turn in zip([None, *turns], turns, strict=False):
        # A turn that ends in a tool call says nothing itself; the answer that follows the
        # tool's result was asked for by no user words.
        assert (turn["assistant_transcript"] is None) == bool(turn["function_calls"])
        assert (turn["user_transcript"] is None) == bool(before and before["function_calls"])
        said += [turn["user_transcript"], turn["assistant_transcript"]]
    for words in filter(None, said):
        assert html.escape(words) in text, words
