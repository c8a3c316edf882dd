"""``rt-analyze check`` (gate CI on latency and errors) and ``rt-analyze slowest`` (the worst
turns first): wiring of :mod:`analyzer.gate` and :mod:`analyzer.slowest` into the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from analyzer.cli import (
    _console,
    _echo_csv,
    _echo_json,
    _echo_warnings,
    _format_option,
    captures_argument,
    dataset_options,
    main,
    open_captures,
)

# The report's latency keys, for --metric (kept here so that --help imports no pandas).
LATENCY_KEYS = (
    "response_created",
    "first_transcript",
    "first_audio",
    "first_text",
    "response_done",
    "transcription",
    "transcription_first_delta",
    "perceived_first_audio",
    "heard_first_audio",  # as heard in the audio (analyzer.heard)
    "heard_first_voice",
    "barge_in_stop",
    "barge_in_cancel",
    "answer_first_audio",
)


def _rules(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[Any]:
    from analyzer.gate import RuleError, parse_rule

    try:
        return [parse_rule(v) for v in values]
    except RuleError as exc:
        raise click.BadParameter(str(exc), ctx, param) from exc


@main.command()
@captures_argument
@click.option(
    "--max",
    "rules",
    multiple=True,
    required=True,
    callback=_rules,
    help="A limit, repeatable: STAT(LATENCY)=LIMIT with STAT p50, p90, p99, max or mean, "
    f"LATENCY one of {', '.join(LATENCY_KEYS)} and LIMIT in ms or s (800ms, 0.8s); or "
    "COUNTER=LIMIT with COUNTER errors (server error events), turns, interrupted or stalls.",
)
@_format_option("text", "json")
@dataset_options
def check(captures: tuple[Path, ...], rules: list[Any], output_format: str, **filters: Any) -> None:
    """Judge captures against limits, one PASS/FAIL line per rule, and exit 1 if any fails:
    a CI gate for voice latency. A latency no turn has fails its rule.

    Example:

        rt-analyze check captures/ --max 'p90(first_audio)=800ms' --max 'errors=0'
    """
    from analyzer.dataset_analysis import dataset_sizes, dataset_turns
    from analyzer.gate import judge

    dataset = open_captures(captures, filters)
    turns = dataset_turns(dataset)
    sizes = dataset_sizes(dataset)
    _echo_warnings(dataset)
    verdicts = judge(rules, turns, sizes)
    passed = all(v.passed for v in verdicts)
    if output_format == "json":
        click.echo(
            json.dumps({"passed": passed, "verdicts": [v.as_dict() for v in verdicts]}, indent=2)
        )
    else:
        for verdict in verdicts:
            click.echo(verdict.line())
    if not passed:
        raise click.exceptions.Exit(1)


@main.command()
@captures_argument
@click.option(
    "--metric",
    type=click.Choice(LATENCY_KEYS),
    default="first_audio",
    show_default=True,
    help="The latency to rank turns by.",
)
@click.option(
    "-n", "count", type=click.IntRange(min=1), default=20, show_default=True, help="How many."
)
@_format_option("table", "json", "csv")
@dataset_options
def slowest(
    captures: tuple[Path, ...], metric: str, count: int, output_format: str, **filters: Any
) -> None:
    """The slowest turns across sessions by one latency, slowest first: session, turn, when it
    started (UTC), the latency, and what the user said.

    Example:

        rt-analyze slowest captures/ --metric first_audio -n 20
    """
    import pandas as pd

    from analyzer.dataset_analysis import dataset_turns
    from analyzer.slowest import SLOWEST_COLUMNS, slowest_turns

    dataset = open_captures(captures, filters)
    turns = dataset_turns(dataset)
    _echo_warnings(dataset)
    rows = slowest_turns(turns, metric, count)
    if output_format == "json":
        _echo_json(rows)
    elif output_format == "csv":
        _echo_csv(pd.DataFrame(rows, columns=list(SLOWEST_COLUMNS)))
    else:
        from analyzer.render import render_slowest

        render_slowest(rows, metric, _console())
