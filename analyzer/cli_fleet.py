"""The commands over many runs: ``compare`` (sides side by side) and ``export``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from analyzer.cli import (
    DIALECTS,
    MIN_BOOTSTRAP,
    _console,
    _echo_json,
    _echo_warnings,
    _format_option,
    captures_argument,
    dataset_options,
    force_option,
    main,
    open_captures,
)

if TYPE_CHECKING:
    pass


def _where(pairs: tuple[str, ...], base: dict[str, Any]) -> dict[str, Any]:
    """Filter options plus one side's KEY=VALUE overrides (keys as the filter options)."""
    keys = {
        "since": "since",
        "until": "until",
        "host": "hosts",
        "model": "models",
        "dialect": "dialects",
        "session": "session_ids",
    }
    options = dict(base)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in keys:
            raise click.ClickException(
                f"cannot read {pair!r}; write KEY=VALUE with KEY one of {', '.join(keys)}."
            )
        name = keys[key]
        if key == "dialect" and value not in DIALECTS:
            raise click.BadParameter(
                f"{value!r} is not a dialect; use one of {', '.join(DIALECTS)}.",
                param_hint=f"{pair}",
            )
        if name in ("since", "until"):
            options[name] = value
        else:
            options[name] = (*(options.get(name) or ()), value)
    return options


@main.command()
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("others", nargs=-1, type=click.Path(path_type=Path))
@_format_option("table", "json")
@dataset_options
@click.option("--a-where", multiple=True, help="KEY=VALUE filter for side A only; repeatable.")
@click.option("--b-where", multiple=True, help="KEY=VALUE filter for side B only; repeatable.")
@click.option("--seed", type=int, default=20250101, show_default=True, help="Bootstrap seed.")
@click.option(
    "--bootstrap",
    type=click.IntRange(min=MIN_BOOTSTRAP),
    default=2000,
    show_default=True,
    help=f"Bootstrap resamples (at least {MIN_BOOTSTRAP}: fewer cannot place a 95% interval).",
)
def compare(
    a: Path,
    others: tuple[Path, ...],
    output_format: str,
    a_where: tuple[str, ...],
    b_where: tuple[str, ...],
    seed: int,
    bootstrap: int,
    **filters: Any,
) -> None:
    """Compare two captures, datasets, or filters of one: latency percentiles side by side,
    the median difference (B - A) with its bootstrap 95% interval and Mann-Whitney p, and
    whether it is beyond noise; sizes and tokens side by side. A and B are files, directories
    or globs; with B left out both sides are A, told apart by --a-where / --b-where (KEY=VALUE,
    KEY one of since, until, host, model, dialect, session). With more sides (A B C ...: one
    per provider, say), each is compared with A, side by side.

    Example:

        rt-analyze compare before/ after/

        rt-analyze compare fleet/ --a-where host=proxy-eu --b-where host=proxy-us

        rt-analyze compare realtime/ gpt-live/ gemini/
    """
    from analyzer.compare import compare_datasets, render_comparison
    from analyzer.metric_names import metric_name

    if len(others) > 1:
        if a_where or b_where:
            raise click.UsageError(
                "--a-where / --b-where tell two sides apart; with more, pass paths."
            )
        _compare_many([a, *others], output_format, seed, bootstrap, filters)
        return
    b = others[0] if others else None
    if b is None and not (a_where or b_where):
        raise click.UsageError(
            "compare needs two sides: pass B, or tell two parts of A apart with --a-where / "
            "--b-where (e.g. --a-where host=proxy-eu --b-where host=proxy-us)."
        )
    side_a = open_captures([a], _where(a_where, filters))
    side_b = open_captures([b if b is not None else a], _where(b_where, filters))
    result = compare_datasets(side_a, side_b, samples=bootstrap, seed=seed)
    result["a"] = " ".join([str(a), *a_where])
    result["b"] = " ".join([str(b if b is not None else a), *b_where])
    # Each latency under its one name, as in the report and the latency summary.
    result["latency_ms"] = {metric_name(k): v for k, v in result["latency_ms"].items()}
    _echo_warnings(side_a, result["counts"]["a"]["sessions"], "side A: ")
    _echo_warnings(side_b, result["counts"]["b"]["sessions"], "side B: ")
    if output_format == "json":
        _echo_json(result)
    else:
        render_comparison(result, _console())


def _compare_many(
    paths: list[Path], output_format: str, seed: int, bootstrap: int, filters: dict[str, Any]
) -> None:
    """``compare A B C ...``: every side against A."""
    from analyzer.compare_many import LETTERS, compare_many, render_many
    from analyzer.metric_names import metric_name

    if len(paths) > len(LETTERS):
        raise click.UsageError(f"compare takes at most {len(LETTERS)} sides.")
    sides = [open_captures([path], filters) for path in paths]
    result = compare_many(sides, [str(p) for p in paths], samples=bootstrap, seed=seed)
    for pair in result["versus_baseline"]:
        pair["latency_ms"] = {metric_name(k): v for k, v in pair["latency_ms"].items()}
    for letter, side, dataset in zip(LETTERS, result["sides"], sides, strict=False):
        _echo_warnings(dataset, side["sessions"], f"side {letter}: ")
    if output_format == "json":
        _echo_json(result)
    else:
        render_many(result, _console())


@main.command()
@captures_argument
@click.option(
    "--turns",
    "turns_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the turn table here (.parquet or .csv).",
)
@click.option(
    "--sizes",
    "sizes_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write sizes by session, direction and event type here (.parquet or .csv).",
)
@click.option(
    "--otlp",
    "otlp_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write one OpenTelemetry span per turn (OTLP/JSON) here.",
)
@force_option
@dataset_options
def export(
    captures: tuple[Path, ...],
    turns_path: Path | None,
    sizes_path: Path | None,
    otlp_path: Path | None,
    force: bool,
    **filters: Any,
) -> None:
    """Export the turn table and sizes to Parquet or CSV, and turns as OTLP/JSON spans (one
    trace per session; load it with an OTLP/JSON file receiver or POST it to /v1/traces).

    Example:

        rt-analyze export captures/ --turns turns.parquet --sizes sizes.csv --otlp spans.json
    """
    from analyzer.exports import TABLE_SUFFIXES, export_dataset

    if turns_path is None and sizes_path is None and otlp_path is None:
        raise click.ClickException("nothing to export; pass --turns, --sizes and/or --otlp.")
    for path in (turns_path, sizes_path):
        if path is not None and path.suffix not in TABLE_SUFFIXES:
            raise click.ClickException(f"{path}: name tables .parquet or .csv.")
    dataset = open_captures(captures, filters)
    from analyzer.outputs import check_outputs

    outputs = {"--turns": turns_path, "--sizes": sizes_path, "--otlp": otlp_path}
    check_outputs(outputs, dataset.sources, force)
    if dataset.filters.active:  # an export of nothing would replace the last one: ask first
        from analyzer.matching import require_matches

        require_matches(dataset, len(dataset.sessions()))
    try:
        written = export_dataset(dataset, turns_path, sizes_path, otlp_path)
    except OSError as exc:
        raise click.ClickException(f"cannot write the export: {exc}.") from exc
    _echo_warnings(dataset)
    for path in written["files"]:
        click.echo(path)
    click.echo(f"Exported {written['sessions']} session(s), {written['turns']} turn(s).", err=True)
