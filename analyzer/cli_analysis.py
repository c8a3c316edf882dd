"""The analysis commands (``report``, ``latency``, ``sizes``, ``conversation``, ``turns``,
``audio``): read captures, call one library function, render the result. Importing this module
adds them to :data:`analyzer.cli.main`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from analyzer.cli import (
    ENGINES,
    _console,
    _echo_csv,
    _echo_json,
    _echo_warnings,
    _filters,
    _format_option,
    _groupings,
    _input_errors,
    _LazyChoice,
    _master,
    _prices,
    _records,
    captures_argument,
    dataset_options,
    force_option,
    load_capture,
    main,
    master_option,
    open_captures,
)

if TYPE_CHECKING:
    from analyzer.dataset import Dataset
    from analyzer.dataset_analysis import ReportParts
    from analyzer.pricing import Prices


@main.command()
@captures_argument
@_format_option("table", "json")
@click.option(
    "--prices",
    type=click.Path(path_type=Path),
    help="JSON file of USD prices per 1M tokens by model, overriding the built-in estimates.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write one self-contained HTML report (plots, chat, audio players) to this file.",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="local",
    show_default=True,
    help="local: run file by run file in bounded memory; spark: sessions analyzed on Spark "
    "(pip install 'rt-analyze[spark]').",
)
@master_option
@force_option
@dataset_options
def report(
    captures: tuple[Path, ...],
    output_format: str,
    prices: Path | None,
    html_path: Path | None,
    engine: str = "local",
    master: str | None = None,
    force: bool = False,
    **filters: Any,
) -> None:
    """Per session: turns with latencies, transcripts and usage; sizes, tokens, cost.

    Example:

        rt-analyze report captures/rt-20250101T120000Z-abc123.parquet --format json

        rt-analyze report captures/ --html report.html

        rt-analyze report 'fleet/date=2025-01-*' --host proxy-a --engine spark
    """
    price_table = _prices(prices)
    spark_master = _master(engine, master)
    if html_path is None:
        parts, dataset = _report_parts(captures, engine, spark_master, price_table, filters)
        if output_format == "json":  # written session by session: a fleet's report is big
            parts.write_json(sys.stdout, dataset.files_read, dataset.warnings)
            sys.stdout.write("\n")
            return
        result = parts.report(dataset.files_read, dataset.warnings)
    else:  # the HTML report embeds plots and audio of every session: it reads captures whole
        if engine != "local" or _filters(filters).active:
            raise click.ClickException("--html reads captures whole; drop --engine and filters.")
        from analyzer.outputs import check_outputs
        from analyzer.reader import find_capture_files
        from analyzer.report import build_report

        reads = [*find_capture_files(captures), *([prices] if prices else [])]
        check_outputs({"--html": html_path}, reads, force)

        capture = load_capture(captures)
        result = build_report(capture, price_table)
    if html_path is not None:
        from analyzer.html_report import render_html_report

        try:
            written = render_html_report(capture, html_path, prices=price_table)
        except OSError as exc:
            raise click.ClickException(f"cannot write {html_path}: {exc.strerror}.") from exc
        for warning in written.warnings:
            click.echo(f"warning: {warning}", err=True)
        skipped = (
            f", {written.audio_skipped} audio player(s) left out" if written.audio_skipped else ""
        )
        click.echo(f"wrote {written.path} ({written.bytes_written:,} bytes{skipped})", err=True)
    if output_format == "json":
        _echo_json(result)
    else:
        from analyzer.render_report import render_report

        render_report(result, _console())


def _report_parts(
    captures: Sequence[Path],
    engine: str,
    master: str,
    prices: dict[str, Prices] | None,
    filters: dict[str, Any],
) -> tuple[ReportParts, Dataset]:
    from analyzer.dataset_analysis import report_parts

    dataset = open_captures(captures, filters)
    if engine == "spark":
        from analyzer.spark import SparkUnavailable, spark_report_parts, spark_session

        try:
            parts = spark_report_parts(dataset, spark_session(master), prices)
        except SparkUnavailable as exc:
            raise click.ClickException(str(exc)) from exc
    else:
        parts = report_parts(dataset, prices)
    _echo_warnings(dataset, len(parts.sessions))
    return parts, dataset


@main.command()
@captures_argument
@_format_option("table", "json", "csv")
@click.option(
    "--per-turn", is_flag=True, help="One row per turn (its latencies) instead of percentiles."
)
@dataset_options
def latency(captures: tuple[Path, ...], output_format: str, per_turn: bool, **filters: Any) -> None:
    """Latency percentiles (count, p50, p90, p99, max) per session and overall, from the turn
    start (speech stopped, or the client's commit / response.create) to the response's
    created, first transcript, first audio, first text and done events, and of the input
    transcription; plus streaming health (audio speed vs real time, stalls).

    Example:

        rt-analyze latency captures/ --format csv > latency.csv
    """
    from analyzer.cli_shape import named_metrics, whole_numbers
    from analyzer.dataset_analysis import dataset_turns
    from analyzer.latency import latency_summary, streaming_summary
    from analyzer.turns import TURN_COLUMNS

    dataset = open_captures(captures, filters)
    turns = dataset_turns(dataset)
    _echo_warnings(dataset)
    if per_turn:
        columns = [
            c
            for c in TURN_COLUMNS
            if c in ("session_id", "index", "trigger", "status", "interrupted")
            or c.startswith("latency_")
            or c
            in (
                "perceived_first_audio_ms",
                "tool_time_ms",
                "silence_duration_ms",
                "stream_ratio",
                "would_stall",
            )
        ]
        table = whole_numbers(turns[columns])
        if output_format == "json":
            _echo_json(_records(table))
        elif output_format == "csv":
            _echo_csv(table)
        else:
            from analyzer.render import render_turn_latencies

            render_turn_latencies(table, _console())
        return
    summary = named_metrics(latency_summary(turns))
    streaming = streaming_summary(turns)
    if output_format == "json":
        _echo_json({"latency": _records(summary), "streaming": _records(streaming)})
    elif output_format == "csv":
        _echo_csv(summary)
    else:
        from analyzer.render import render_latency

        render_latency(summary, streaming, _console())


@main.command()
@captures_argument
@_format_option("table", "json", "csv")
@click.option(
    "--by",
    type=_LazyChoice(_groupings),
    default="event",
    show_default=True,
    help="Group by event type (and direction), by direction, or by session.",
)
@dataset_options
def sizes(captures: tuple[Path, ...], output_format: str, by: str, **filters: Any) -> None:
    """Frames, bytes on the wire, audio bytes (base64 and decoded) and the audio share.

    Reads only the size columns, so it is fast on big captures.

    Example:

        rt-analyze sizes captures/ --by direction
    """
    import pandas as pd

    from analyzer.dataset_analysis import dataset_sizes
    from analyzer.sizes import GROUPINGS, sizes_rollup

    dataset = open_captures(captures, filters)
    by_event = dataset_sizes(dataset)
    _echo_warnings(dataset)
    table = sizes_rollup(by_event, GROUPINGS[by])
    if output_format == "json":
        total = sizes_rollup(by_event, ())
        _echo_json({"by": by, "rows": _records(table), "total": _records(total)[0]})
    elif output_format == "csv":
        _echo_csv(table)
    else:
        from analyzer.render import render_sizes

        total = sizes_rollup(by_event, ()).assign(**{k: "total" for k in GROUPINGS[by]})
        render_sizes(pd.concat([table, total], ignore_index=True), _console(), f"sizes by {by}")


@main.command()
@captures_argument
@_format_option("table", "json", "csv")
@dataset_options
def conversation(captures: tuple[Path, ...], output_format: str, **filters: Any) -> None:
    """Each session's conversation items in order: role, kind, status, transcript or text,
    function calls and outputs, truncation.

    Example:

        rt-analyze conversation captures/run.parquet --session c720777e
    """
    import pandas as pd

    from analyzer.cli_shape import with_iso_times
    from analyzer.conversation import ITEM_COLUMNS
    from analyzer.dataset_analysis import iter_analyses

    dataset = open_captures(captures, filters)
    rows = [  # one table of every item: a table per session took ~3x the analysis (1 GB)
        {**item, "provider_session_id": a.facts.get("provider_session_id")}
        for a in iter_analyses(dataset)
        for item in a.conversation.item_rows
    ]
    _echo_warnings(dataset)
    items = pd.DataFrame(rows, columns=[*ITEM_COLUMNS, "provider_session_id"])
    if not rows:
        items = items.drop(columns="provider_session_id")
    items = with_iso_times(items, {"first_seen_s": "first_seen"})
    if output_format == "json":
        _echo_json(_records(items))
    elif output_format == "csv":
        _echo_csv(items)
    else:
        from analyzer.render import render_conversation

        render_conversation(items, _console())


@main.command()
@captures_argument
@_format_option("csv", "json")
@click.option(
    "--engine", type=click.Choice(ENGINES), default="local", show_default=True, help="See report."
)
@master_option
@dataset_options
def turns(
    captures: tuple[Path, ...],
    output_format: str,
    engine: str,
    master: str | None,
    **filters: Any,
) -> None:
    """The full turn table (one row per turn, every column), for spreadsheets and notebooks.

    Example:

        rt-analyze turns captures/ > turns.csv
    """
    from analyzer.cli_shape import whole_numbers, with_iso_times
    from analyzer.dataset_analysis import dataset_turns

    spark_master = _master(engine, master)
    dataset = open_captures(captures, filters)
    if engine == "spark":
        from analyzer.spark import SparkUnavailable, spark_session, spark_turns

        try:
            table = spark_turns(dataset, spark_session(spark_master))
        except SparkUnavailable as exc:
            raise click.ClickException(str(exc)) from exc
        _echo_warnings(dataset, table["session_id"].nunique())
    else:
        table = dataset_turns(dataset)
        _echo_warnings(dataset)
    table = with_iso_times(whole_numbers(table), {"turn_start_s": "turn_started"})
    if output_format == "json":
        _echo_json(_records(table))
    else:
        _echo_csv(table)


@main.command()
@captures_argument
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Directory to write the WAV files to.",
)
@_format_option("text", "json")
@dataset_options
def audio(captures: tuple[Path, ...], out_dir: Path, output_format: str, **filters: Any) -> None:
    """Export each conversation item's audio, and each session as stereo, to WAV files.

    Example:

        rt-analyze audio captures/run.parquet -o wav/

        rt-analyze audio captures/ -o wav/ --session c720777e --format json
    """
    try:
        from analyzer.audio import export_audio
    except ImportError as exc:
        raise click.ClickException(
            "audio export is not available in this installation (analyzer.audio is missing)."
        ) from exc
    from analyzer.outputs import check_output_dir

    check_output_dir("-o", out_dir)
    sessions = _chosen_sessions(captures, filters)
    try:
        result = export_audio(list(captures), out_dir, sessions=sessions)
    except Exception as exc:
        if isinstance(exc, _input_errors()):  # a CaptureError, without importing the reader
            raise click.ClickException(str(exc)) from exc
        raise
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if output_format == "json":
        _echo_json({"files": [str(path) for path in result.files], "warnings": result.warnings})
    else:
        for path in result.files:
            click.echo(str(path))
    click.echo(f"Wrote {len(result.files)} file(s) to {out_dir}.", err=True)


def _chosen_sessions(captures: Sequence[Path], filters: dict[str, Any]) -> set[str] | None:
    """The session ids the filters keep (None without filters: every session, nothing read
    twice); a filter that matches nothing is an error naming what is there."""
    if not any(filters.values()):  # (no filter module imported: it loads pandas)
        return None
    dataset = open_captures(captures, filters)
    chosen = {str(sid) for sid in dataset.sessions()["session_id"]}
    _echo_warnings(dataset, len(chosen))
    return chosen
