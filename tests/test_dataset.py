"""Datasets: many runs from many proxies (flat or hive-partitioned), filters, streaming reads."""

from __future__ import annotations

import io
import json
import random
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.dataset import open_dataset
from analyzer.dataset_analysis import (
    ReportParts,
    dataset_report,
    dataset_sizes,
    dataset_turns,
    report_parts,
)
from analyzer.discovery import discover
from analyzer.filters import Filters, parse_time
from analyzer.reader import CaptureError, read_capture
from analyzer.report import build_report
from analyzer.schema import FRAME_SCHEMA, PARQUET_COMPRESSION, file_metadata, parse_file_metadata
from analyzer.sizes import sizes_by_event
from analyzer.turns import TURN_COLUMNS
from tests.capture_factory import (
    BETA_URL,
    T0,
    Event,
    appends,
    ga_response,
    ga_session_created,
    ga_vad_user_turn,
    ordered,
    record_sessions,
    usage,
)

DAY0 = "2025-01-01"
DAY0_S = 1_735_689_600.0  # 2025-01-01T00:00:00Z


# --- a fleet of synthetic runs -----------------------------------------------------------------


@dataclass
class Template:
    frames: pa.Table  # one session's frames, FRAME_SCHEMA
    facts: dict[str, Any]


def _session_events(t: float, first_audio_s: float, turns: int, i: int) -> list[Event]:
    parts: list[Sequence[Event]] = [[ga_session_created(t)]]
    previous: str | None = None
    for k in range(turns):
        start = t + 0.2 + k * 2.0
        user, reply = f"u{i}-{k}", f"a{i}-{k}"
        parts.append(appends(start, 3, 960))
        parts.append(ga_vad_user_turn(start + 0.1, start + 0.6, user, previous, 100, 600, "hi"))
        parts.append(
            ga_response(
                start + 0.65,
                f"r{i}-{k}",
                reply,
                user,
                "hello there",
                [(first_audio_s, 4800), (first_audio_s + 0.05, 4800)],
                first_audio_s + 0.3,
                tokens=usage(10 + k, 20, 5, 30),
            )
        )
        previous = reply
    return ordered(*parts)


def make_templates(
    directory: Path, count: int = 12, first_audio_s: float = 0.3, seed: int = 1
) -> list[Template]:
    """``count`` small GA sessions (2 turns each, first audio ``first_audio_s`` + jitter after
    response.created), recorded by the real recorder, as per-session Arrow tables."""
    rng = random.Random(seed)
    sessions = {
        f"tmpl-{i}": _session_events(T0 + i * 100, first_audio_s + rng.uniform(0, 0.1), 2, i)
        for i in range(count)
    }
    run = record_sessions(directory, sessions, run_id=f"tmpl-{seed}-{first_audio_s}")
    pf = pq.ParquetFile(run.parquet_path)
    meta = parse_file_metadata(pf.metadata.metadata)
    assert meta is not None
    table = pf.read().cast(FRAME_SCHEMA)
    ids = pc.cast(table.column("session_id"), pa.string())
    templates = []
    for facts in meta["sessions"]:
        frames = table.filter(pc.equal(ids, facts["session_id"]))
        templates.append(Template(frames, facts))
    shutil.rmtree(directory)
    return templates


def _copy(
    template: Template, run_id: str, session_id: str, start_s: float
) -> tuple[pa.Table, dict]:
    shift = start_s - template.facts["start_s"]
    t = template.frames
    ids = pa.array([session_id] * t.num_rows, pa.string()).dictionary_encode()
    t = t.set_column(t.schema.get_field_index("session_id"), FRAME_SCHEMA.field("session_id"), ids)
    idx = t.schema.get_field_index("time_s")
    t = t.set_column(idx, FRAME_SCHEMA.field("time_s"), pc.add(t.column("time_s"), shift))
    facts = json.loads(json.dumps(template.facts))
    facts.update(session_id=session_id, run_id=run_id)
    facts["start_s"] += shift
    facts["end_s"] += shift
    return t, facts


def write_run(path: Path, run_id: str, copies: list[tuple[pa.Table, dict]]) -> Path:
    """One run file as the recorder writes it (frames in arrival order, facts in the footer)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = pa.concat_tables([c[0] for c in copies]).combine_chunks().sort_by("time_s")
    writer = pq.ParquetWriter(
        path,
        FRAME_SCHEMA,
        compression=PARQUET_COMPRESSION,
        use_dictionary=["session_id", "direction", "opcode", "event_type"],
        write_statistics=["session_id", "seq", "time_s", "event_type"],
    )
    try:
        for batch in frames.to_batches(max_chunksize=256):  # small row groups: pruning shows
            writer.write_batch(batch)
        meta = file_metadata(run_id, [c[1] for c in copies])
        writer.add_key_value_metadata({k.decode(): v.decode() for k, v in meta.items()})
    finally:
        writer.close()
    return path


def make_fleet(
    root: Path,
    templates: list[Template],
    hosts: Sequence[str] = ("proxy-a", "proxy-b"),
    days: int = 2,
    runs: int = 2,
    sessions: int = 10,
    partitioned: bool = True,
    id_seed: int = 0,
) -> list[Path]:
    """``hosts x days x runs`` run files of ``sessions`` sessions each, a minute apart from the
    day's midnight; partitioned as ``date=/host=`` or flat. Session ids are uuids."""
    paths = []
    counter = 0
    for h, host in enumerate(hosts):
        for day in range(days):
            day_s = DAY0_S + day * 86400
            date = time.strftime("%Y-%m-%d", time.gmtime(day_s))
            for r in range(runs):
                run_id = f"rt-{date.replace('-', '')}-{host}-{r}"
                copies = []
                for s in range(sessions):
                    sid = str(uuid.UUID(int=(id_seed << 64) + counter))
                    start = day_s + 3600 * (r + 1) + 60 * s + h
                    copies.append(_copy(templates[counter % len(templates)], run_id, sid, start))
                    counter += 1
                directory = root / f"date={date}" / f"host={host}" if partitioned else root
                paths.append(write_run(directory / f"{run_id}.parquet", run_id, copies))
    return paths


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> list[Template]:
    return make_templates(tmp_path_factory.mktemp("templates"))


# Analysis costs ~0.2 s a session here (pandas), so the analyzed fleet is small and the big one
# (hundreds of sessions) serves discovery, filters and sizes, which never run the analysis.
FLEET_SESSIONS = 4


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, templates: list[Template]) -> Path:
    """2 hosts x 2 days x 2 runs x 4 sessions = 32 sessions, 64 turns, partitioned."""
    root = tmp_path_factory.mktemp("fleet")
    make_fleet(root, templates, sessions=FLEET_SESSIONS)
    return root


@pytest.fixture(scope="module")
def big_fleet(tmp_path_factory: pytest.TempPathFactory, templates: list[Template]) -> Path:
    """2 hosts x 2 days x 2 runs x 50 sessions = 400 sessions, partitioned."""
    root = tmp_path_factory.mktemp("big_fleet")
    make_fleet(root, templates, sessions=50)
    return root


@pytest.fixture(scope="module")
def fleet_report(fleet: Path) -> dict[str, Any]:
    return dataset_report(open_dataset(fleet))


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _without_partitions(report: dict[str, Any]) -> dict[str, Any]:
    for session in report["sessions"]:
        session.pop("date"), session.pop("proxy_host")
    return report


# --- discovery --------------------------------------------------------------------------------


def test_discovers_hive_partitions_and_surfaces_them_on_sessions(big_fleet: Path) -> None:
    dataset = open_dataset(big_fleet)
    assert len(dataset.files) == 8
    assert {(f.date, f.proxy_host) for f in dataset.files} == {
        (d, h) for d in ("2025-01-01", "2025-01-02") for h in ("proxy-a", "proxy-b")
    }
    sessions = dataset.sessions()
    assert len(sessions) == 400 and sessions["session_id"].is_unique
    assert set(sessions["proxy_host"]) == {"proxy-a", "proxy-b"}
    assert set(sessions["date"]) == {"2025-01-01", "2025-01-02"}
    assert set(sessions["host"]) == {"api.openai.com"}  # the API host stays what it was


def test_a_glob_several_paths_and_repeats_are_one_dataset(fleet: Path) -> None:
    by_glob = discover([str(fleet / "date=*" / "host=proxy-a" / "*.parquet")])
    assert len(by_glob) == 4 and all(f.proxy_host == "proxy-a" for f in by_glob)
    several = discover([fleet / "date=2025-01-01", fleet / "date=2025-01-02", fleet])
    assert len(several) == 8  # each file once
    recursive = discover([f"{fleet}/**/*.parquet"])
    assert [f.path for f in recursive] == [f.path for f in discover([fleet])]


def test_journals_count_once_and_stand_in_for_missing_parquet(tmp_path: Path) -> None:
    run = record_sessions(tmp_path / "a", {"s1": _session_events(T0, 0.3, 1, 1)}, run_id="rt-a")
    record_sessions(tmp_path / "b", {"s2": _session_events(T0, 0.3, 1, 2)}, run_id="rt-b")
    (tmp_path / "b" / "rt-b.parquet").unlink()  # the recorder was killed before its footer
    files = discover([tmp_path])
    assert sorted(f.path.name for f in files) == ["rt-a.parquet", "rt-b.jsonl"]
    turns = dataset_turns(open_dataset(tmp_path))
    assert sorted(turns["session_id"]) == ["s1", "s2"]
    assert set(turns["run_id"]) == {"rt-a", "rt-b"}
    assert run.parquet_path.exists()


def test_missing_paths_and_unmatched_globs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="does not exist"):
        discover([tmp_path / "nope"])
    with pytest.raises(CaptureError, match="no files match"):
        discover([str(tmp_path / "*.parquet")])
    with pytest.raises(CaptureError, match=r"no \.parquet or \.jsonl"):
        discover([tmp_path])


# --- the same answers as reading everything at once ---------------------------------------------


def test_streamed_report_equals_the_in_memory_report(
    fleet: Path, fleet_report: dict[str, Any]
) -> None:
    files = [f.path for f in discover([fleet])]
    expected = build_report(read_capture(files))
    streamed = json.loads(json.dumps(fleet_report))
    assert streamed["summary"]["sources"] == [str(f) for f in files]
    assert streamed["summary"]["sessions"] == 32 and streamed["summary"]["turns"] == 64
    assert {s["proxy_host"] for s in streamed["sessions"]} == {"proxy-a", "proxy-b"}
    assert _without_partitions(streamed) == expected


def test_reading_a_big_run_in_session_windows_changes_nothing(
    big_fleet: Path, fleet: Path, fleet_report: dict[str, Any]
) -> None:
    pieces = list(open_dataset(big_fleet, rows_per_read=128).iter_tables(("session_id", "time_s")))
    # 50 sessions, 1,750 frames in 7 row groups of <= 256 a run file: each row group is read
    # once (whole: no more than twice rows_per_read) and a window is handed out after each (the
    # sessions that ended before the next one).
    assert len(pieces) == 8 * 7
    assert all(table.num_rows <= 128 + 256 for _, table, _ in pieces)
    whole = pd.concat(
        [s for _, _, s in open_dataset(big_fleet).iter_tables(("session_id", "time_s"))]
    )
    windowed = pd.concat([s for _, _, s in pieces])
    assert sorted(windowed["session_id"]) == sorted(whole["session_id"])  # each exactly once
    frames = sum(table.num_rows for _, table, _ in pieces)
    assert frames == sum(pq.ParquetFile(f.path).metadata.num_rows for f in discover([big_fleet]))
    for _, table, sessions in pieces:  # whole sessions: a window holds all frames of its sessions
        assert set(table.column("session_id").to_pylist()) == set(sessions["session_id"])
    report = dataset_report(open_dataset(fleet, rows_per_read=50))
    assert report == fleet_report


def test_sizes_aggregated_in_arrow_equal_sizes_by_event(big_fleet: Path) -> None:
    files = [f.path for f in discover([big_fleet])]
    expected = sizes_by_event(read_capture(files).frames)
    pd.testing.assert_frame_equal(dataset_sizes(open_dataset(big_fleet)), expected)


def test_runs_from_two_proxies_with_the_same_session_ids_do_not_clash(
    tmp_path: Path, templates: list[Template]
) -> None:
    # Same ids on both proxies (ids are uuid4 in real life; a copy of a capture is not).
    make_fleet(tmp_path / "a", templates, hosts=("proxy-a",), days=1, runs=1, sessions=3)
    make_fleet(tmp_path / "b", templates, hosts=("proxy-b",), days=1, runs=1, sessions=3)
    report = dataset_report(open_dataset([tmp_path / "a", tmp_path / "b"]))
    assert report["summary"]["sessions"] == 6 and report["summary"]["turns"] == 12
    assert len({s["session_id"] for s in report["sessions"]}) == 3
    turns = dataset_turns(open_dataset([tmp_path / "a", tmp_path / "b"]))
    assert len(turns) == 12  # 2 x 3 sessions x 2 turns, none merged
    keys = turns[["run_id", "session_id"]].drop_duplicates()
    assert len(keys) == 6 and keys["session_id"].nunique() == 3


def test_each_piece_is_one_run_file(big_fleet: Path) -> None:
    pieces = list(open_dataset(big_fleet).iter_tables())
    assert len(pieces) == 8
    assert len({run.path for run, _, _ in pieces}) == 8
    assert all(len(sessions) == 50 for _, _, sessions in pieces)
    assert all("audio" not in table.column_names for _, table, _ in pieces)


# --- filters ------------------------------------------------------------------------------------


def test_host_filter_prunes_files_by_partition(big_fleet: Path) -> None:
    dataset = open_dataset(big_fleet, Filters(hosts=("proxy-b",)))
    sessions = dataset.sessions()
    assert set(sessions["proxy_host"]) == {"proxy-b"} and len(sessions) == 200
    assert len(dataset.files_read) == 4
    assert all("host=proxy-b" in str(p) for p in dataset.files_read)


def test_time_filter_uses_partitions_and_footers_before_reading(big_fleet: Path) -> None:
    fleet = big_fleet
    # Day 2, before 02:00: run 0 of each host (sessions 01:00 to 01:49) only.
    since = parse_time("2025-01-02")
    until = parse_time("2025-01-02T02:00:00Z")
    dataset = open_dataset(fleet, Filters(since_s=since, until_s=until))
    sessions = dataset.sessions()
    assert len(sessions) == 100
    assert sessions["start_s"].between(since, until).all()
    assert len(dataset.files_read) == 2  # day 1 ruled out by footers, day 2 run 1 too
    only_day1 = open_dataset(fleet, Filters(until_s=parse_time("2025-01-01T23:59:59Z")))
    assert len(only_day1.candidate_files()) == 4  # date=2025-01-02 pruned without a read


def test_session_model_and_dialect_filters(fleet: Path, big_fleet: Path) -> None:
    sessions = open_dataset(fleet).sessions()
    one = str(sessions["session_id"].iloc[7])
    picked = dataset_turns(open_dataset(fleet, Filters(sessions=(one,))))
    assert set(picked["session_id"]) == {one}
    assert Filters(sessions=("abc",)).keeps({"session_id": "abcdef"})  # a prefix will do
    assert not Filters(sessions=("abd",)).keeps({"session_id": "abcdef"})
    big = big_fleet
    assert len(open_dataset(big, Filters(models=("gpt-realtime",))).sessions()) == 400
    assert open_dataset(big, Filters(models=("other-model",))).sessions().empty
    assert open_dataset(big, Filters(dialects=("beta",))).sessions().empty
    assert len(open_dataset(big, Filters(dialects=("ga",))).sessions()) == 400


def test_a_filter_matching_nothing_gives_an_empty_report(fleet: Path) -> None:
    report = dataset_report(open_dataset(fleet, Filters(hosts=("nowhere",))))
    assert report["sessions"] == [] and report["summary"]["sessions"] == 0
    assert dataset_turns(open_dataset(fleet, Filters(hosts=("nowhere",)))).empty


def test_parse_time_forms() -> None:
    assert parse_time("2025-01-01") == DAY0_S
    assert parse_time("2025-01-01T01:00:00Z") == DAY0_S + 3600
    assert parse_time("2025-01-01T02:00:00+01:00") == DAY0_S + 3600
    assert parse_time(str(DAY0_S)) == DAY0_S
    with pytest.raises(CaptureError, match="cannot read the time"):
        parse_time("yesterday")


def test_the_arrow_dataset_has_partition_columns(fleet: Path) -> None:
    table = (
        open_dataset(fleet)
        .arrow_dataset()
        .to_table(columns=["session_id", "host", "date"], filter=pc.field("host") == "proxy-a")
    )
    assert set(table.column("host").to_pylist()) == {"proxy-a"}
    assert table.num_rows == len(read_capture(fleet).frames) // 2


# --- the command line ----------------------------------------------------------------------------


def test_cli_report_over_a_partitioned_fleet_with_filters(fleet: Path) -> None:
    result = run_cli(
        "report", str(fleet), "--host", "proxy-a", "--since", "2025-01-02", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["summary"]["sessions"] == 8
    assert {(s["proxy_host"], s["date"]) for s in report["sessions"]} == {("proxy-a", "2025-01-02")}
    table = run_cli("report", str(fleet / "date=2025-01-01"), "--model", "gpt-realtime")
    assert table.exit_code == 0 and "16" in table.stdout


def test_cli_turns_latency_sizes_take_globs_and_filters(fleet: Path) -> None:
    pattern = str(fleet / "date=*" / "host=proxy-b" / "*.parquet")
    turns = run_cli("turns", pattern, "--format", "json")
    rows = json.loads(turns.stdout)
    assert len(rows) == 32 and {r["proxy_host"] for r in rows} == {"proxy-b"}
    assert list(rows[0])[:4] == ["run_id", "date", "proxy_host", "session_id"]
    assert set(TURN_COLUMNS) <= set(rows[0])
    latency = json.loads(run_cli("latency", pattern, "--format", "json").stdout)
    overall = {r["metric"]: r for r in latency["latency"] if r["scope"] == "all"}
    assert overall["first_audio"]["count"] == 32
    sizes = json.loads(run_cli("sizes", str(fleet), "--dialect", "ga", "--format", "json").stdout)
    assert sizes["total"]["frames"] == len(read_capture(fleet).frames)


def test_cli_bad_time_and_beta_only_dialect(fleet: Path) -> None:
    bad = run_cli("report", str(fleet), "--since", "last week")
    assert bad.exit_code != 0 and "cannot read the time" in bad.output
    # A filter that matches nothing is an error that says what there is instead (issue 19).
    empty = run_cli("turns", str(fleet), "--dialect", "beta", "--format", "json")
    assert empty.exit_code == 1 and empty.stdout == ""
    assert "--dialect beta matches no session; the captures hold" in empty.stderr
    assert "dialects ga (" in empty.stderr


def test_seed_beta_capture_reads_through_the_dataset(tmp_path: Path) -> None:
    record_sessions(tmp_path, {"s": _session_events(T0, 0.3, 1, 0)}, url=BETA_URL)
    report = dataset_report(open_dataset(tmp_path))
    assert report["sessions"][0]["proxy_host"] is None
    assert report["sessions"][0]["date"] is None


def test_the_json_report_is_written_session_by_session_as_json_dumps_would(
    fleet: Path, fleet_report: dict[str, Any]
) -> None:
    out = io.StringIO()
    dataset = open_dataset(fleet)
    report_parts(dataset).write_json(out, dataset.files_read, dataset.warnings)
    assert out.getvalue() == json.dumps(fleet_report, indent=2, ensure_ascii=False)
    empty = io.StringIO()
    ReportParts().write_json(empty, [], [])
    assert json.loads(empty.getvalue())["sessions"] == []
    assert empty.getvalue() == json.dumps(ReportParts().report([], []), indent=2)
    cli = run_cli("report", str(fleet), "--format", "json")
    assert cli.stdout == json.dumps(fleet_report, indent=2, ensure_ascii=False) + "\n"


def test_a_windows_sessions_are_the_readers_session_table_with_its_partitions() -> None:
    """``_window_sessions`` (Arrow, in the reading thread) gives what the reader's
    ``sessions_frame`` gives, with the run's partitions: facts merged by id, a session known
    only from its frames, a start taken from the first frame, the run id filled in, in start
    order."""
    from analyzer.dataset import _sessions_table, _window_sessions
    from analyzer.discovery import RunFile
    from analyzer.reader import sessions_frame

    facts: list[dict[str, Any]] = [
        {"session_id": "b", "run_id": None, "start_s": 30.0, "model": "gpt-realtime"},
        {"session_id": "a", "run_id": "rt-own", "start_s": None},
        {"session_id": "b", "end_s": 40.0},
        {"session_id": "d", "start_s": None},  # no start, no frame: last
    ]
    ids = pa.array(["c", "a", "b", "a", "c", "e"]).dictionary_encode()
    table = pa.table({"session_id": ids, "time_s": [25.0, 20.5, 31.0, 20.0, None, None]})
    run = RunFile(Path("date=2025-01-02/host=proxy-a/run.parquet"), {"date": "2025-01-02"})
    frames = pa.table(
        {"session_id": pc.cast(ids, pa.string()), "time_s": table["time_s"]}
    ).to_pandas()
    got = _sessions_table(_window_sessions(facts, table, run, "rt-file"))
    expected = sessions_frame(facts, frames).fillna({"run_id": "rt-file"})
    expected["date"], expected["proxy_host"] = "2025-01-02", None
    pd.testing.assert_frame_equal(got, expected)
    assert got["session_id"].tolist() == ["a", "c", "b", "d", "e"]
    assert got["start_s"].tolist()[:3] == [20.0, 25.0, 30.0]
    assert got["start_s"].isna().tolist()[3:] == [True, True]
    assert got["run_id"].tolist() == ["rt-own", "rt-file", "rt-file", "rt-file", "rt-file"]
