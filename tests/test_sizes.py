"""Sizes by event/direction/session, token sums and the cost estimate."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analyzer.pricing import DEFAULT_PRICES, Prices, PricingError, load_prices, prices_for
from analyzer.reader import read_capture
from analyzer.sizes import (
    BY_EVENT_COLUMNS,
    NO_TYPE,
    session_cost,
    size_totals,
    sizes_by_event,
    sizes_rollup,
    token_totals,
)
from analyzer.turns import build_turns, rows_of
from tests.capture_factory import T0, Event, b64, seed_capture, write_capture


def test_sizes_by_event_count_wire_and_audio_bytes(tmp_path: Path) -> None:
    append = json.dumps({"type": "input_audio_buffer.append", "audio": b64(300)})
    delta = json.dumps(
        {"type": "response.output_audio.delta", "response_id": "r", "delta": b64(30)}
    )
    events: list[Event] = [
        (T0, "client", append),
        (T0 + 1, "client", append),
        (T0 + 2, "server", delta),
        (T0 + 3, "server", "garbage"),
    ]
    frames = read_capture(write_capture(tmp_path, events)).frames
    by_event = sizes_by_event(frames)
    assert list(by_event.columns) == list(BY_EVENT_COLUMNS)
    rows = by_event.set_index("event_type")
    assert rows.loc["input_audio_buffer.append", "frames"] == 2
    assert rows.loc["input_audio_buffer.append", "bytes"] == 2 * len(append)
    assert rows.loc["input_audio_buffer.append", "audio_b64_bytes"] == 800
    assert rows.loc["input_audio_buffer.append", "audio_bytes"] == 600
    assert rows.loc["response.output_audio.delta", "audio_b64_bytes"] == 40
    assert rows.loc[NO_TYPE, "bytes"] == len("garbage")
    totals = size_totals(rows_of(by_event))
    total_bytes = 2 * len(append) + len(delta) + len("garbage")
    assert totals["frames"] == 4 and totals["total_bytes"] == total_bytes
    assert totals["audio_bytes"] == 630
    assert totals["audio_share"] == round(840 / total_bytes, 4)
    assert totals["by_direction"]["client"]["audio_share"] == round(800 / (2 * len(append)), 4)
    by_direction = sizes_rollup(by_event, ("direction",))
    assert by_direction["direction"].tolist() == ["client", "server"]  # largest first


def test_seed_sizes_and_audio_share(tmp_path: Path) -> None:
    frames = read_capture(seed_capture(tmp_path)).frames
    totals = size_totals(rows_of(sizes_by_event(frames)))
    # the seed's audio is placeholder base64: "AAAAAAAA" appended and in the input_audio part
    # of the item the client creates, "AAAa" received
    assert totals["frames"] == 19
    assert totals["audio_b64_bytes"] == 20 and totals["audio_bytes"] == 15
    assert totals["total_bytes"] == int(frames["frame_bytes"].sum())
    assert totals["audio_share"] == round(20 / totals["total_bytes"], 4)
    by_session = sizes_rollup(sizes_by_event(frames), ("session_id",))
    assert by_session["session_id"].tolist() == ["seed"]


def test_seed_tokens_and_cost(tmp_path: Path) -> None:
    capture = read_capture(seed_capture(tmp_path))
    turns = build_turns(capture.frames, capture.sessions.iloc[0].to_dict())
    tokens = token_totals(turns)
    assert tokens["responses"] == 1
    assert (tokens["total_tokens"], tokens["input_tokens"], tokens["output_tokens"]) == (
        1606,
        26,
        1580,
    )
    assert (tokens["input_text_tokens"], tokens["input_audio_tokens"]) == (8, 18)
    assert (tokens["output_text_tokens"], tokens["output_audio_tokens"]) == (316, 1264)
    cost = session_cost(turns, "gpt-4o-realtime-preview-2024-10-01")
    # 8 x $5 + 18 x $100 + 316 x $20 + 1264 x $200 per 1M tokens
    assert cost == {
        "usd": 0.26096,
        "priced_as": "gpt-4o-realtime-preview-2024-10-01",
        "note": "estimate from list prices",
    }
    assert session_cost(turns, "some-other-model")["usd"] is None


def test_models_match_the_longest_price_key() -> None:
    assert prices_for("gpt-realtime-2025-08-28") == ("gpt-realtime", DEFAULT_PRICES["gpt-realtime"])
    assert prices_for("gpt-realtime-mini-2025-10-06")[0] == "gpt-realtime-mini"  # type: ignore[index]
    assert prices_for("gpt-4o-realtime-preview-2025-06-03")[0] == "gpt-4o-realtime-preview"  # type: ignore[index]
    assert prices_for("gpt-4o-mini-realtime-preview-2024-12-17")[0] == (  # type: ignore[index]
        "gpt-4o-mini-realtime-preview"
    )
    assert prices_for(None) is None and prices_for("qwen-omni") is None


def test_cached_tokens_are_priced_at_the_cached_rate() -> None:
    prices = Prices(1.0, 0.5, 2.0, 10.0, 1.0, 20.0)
    tokens = {
        "input_text_tokens": 100.0,
        "input_audio_tokens": 300.0,
        "input_cached_tokens": 200.0,
        "input_cached_text_tokens": 100.0,
        "input_cached_audio_tokens": 100.0,
        "output_text_tokens": 10.0,
        "output_audio_tokens": 20.0,
    }

    def cost(tokens: dict[str, float]) -> float | None:
        turn = {"total_tokens": [1000.0], **{k: [v] for k, v in tokens.items()}}
        usd: float | None = session_cost(turn, "m", {"m": prices})["usd"]
        return usd

    # text: 0 x 1 + 100 x 0.5; audio: 200 x 10 + 100 x 1; out: 10 x 2 + 20 x 20
    assert cost(tokens) == round((50 + 2100 + 420) / 1e6, 6)
    # beta: no split reported, cached tokens shared 1:3 like the input
    del tokens["input_cached_text_tokens"], tokens["input_cached_audio_tokens"]
    assert cost(tokens) == round((50 * 1 + 50 * 0.5 + 150 * 10 + 150 * 1 + 420) / 1e6, 6)


def test_a_prices_file_overrides_and_extends_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    new = {
        f: 1.0
        for f in (
            "input_text",
            "cached_input_text",
            "output_text",
            "input_audio",
            "cached_input_audio",
            "output_audio",
        )
    }
    path.write_text(json.dumps({"gpt-realtime": {"output_audio": 50}, "my-deploy": new}))
    prices = load_prices(path)
    assert prices["gpt-realtime"].output_audio == 50.0
    assert prices["gpt-realtime"].input_audio == DEFAULT_PRICES["gpt-realtime"].input_audio
    assert prices_for("my-deploy-1", prices) == ("my-deploy", Prices(*new.values()))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1]", "must be a JSON object"),
        ('{"gpt-realtime": {"input_audoi": 1}}', "unknown price field"),
        ('{"gpt-realtime": {"input_audio": -1}}', "non-negative number"),
        ('{"new-model": {"input_audio": 1}}', "missing"),
    ],
)
def test_bad_prices_files_raise_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(PricingError, match=message):
        load_prices(path)
    with pytest.raises(PricingError, match="does not exist"):
        load_prices(tmp_path / "nope.json")


def test_sizes_grouped_in_arrow_equal_sizes_by_event(tmp_path: Path) -> None:
    """What the report uses a window at a time gives the rows the pandas definition gives,
    for the samples' sessions and untyped frames."""
    from analyzer.analysis import _sorted_frames
    from analyzer.dataset import _sorted_table
    from analyzer.sizes import (
        SIZE_COLUMNS,
        WindowSizes,
        session_size_rows,
        size_rows_by_session,
        size_totals,
    )

    samples = Path(__file__).resolve().parent.parent / "samples"
    files = sorted(samples.glob("*.parquet"))
    garbage: list[Event] = [(T0, "server", "garbage"), (T0 + 1, "client", "{}")]
    files.append(write_capture(tmp_path, garbage))
    frames = _sorted_frames(read_capture(files).frames)
    expected = size_rows_by_session(sizes_by_event(frames))
    assert len(expected) == 9  # every sample session, and the garbage one
    assert any(row["event_type"] == NO_TYPE for rows in expected.values() for row in rows)
    tables = [pq.read_table(f) for f in files]
    table = _sorted_table(pa.concat_tables(tables, promote_options="default"))
    assert session_size_rows(table) == expected
    # A session's totals, summed a window at a time, are size_totals of its rows.
    window = WindowSizes.of(table)
    for session_id, rows in expected.items():
        # as the report writes them: by_direction's order counts
        assert json.dumps(window.totals(session_id)) == json.dumps(size_totals(rows))
        assert window.by_event(session_id) == [
            (r["direction"], r["event_type"], [r[c] for c in SIZE_COLUMNS]) for r in rows
        ]
    assert window.totals("not in the window") == size_totals([])
