"""The ``rt-analyze`` command: read captures, call one library function, render the result."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

import analyzer.allocators  # noqa: F401  # before pyarrow: it picks its allocator when imported

# isort: split
import pyarrow as pa

from analyzer.schema import ANALYSIS_COLUMNS

# What a command needs is imported in it: most of the library imports pandas (~0.3 s), which
# `rt-analyze audio` and `--help` never use.
if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from analyzer.dataset import Dataset
    from analyzer.filters import Filters
    from analyzer.pricing import Prices
    from analyzer.reader import Capture

DEBUG_ENV = "RT_ANALYZE_DEBUG"

captures_argument = click.argument(
    "captures", nargs=-1, required=True, type=click.Path(path_type=Path)
)


force_option = click.option(
    "--force",
    is_flag=True,
    help="Overwrite an output that is a capture, a journal or a file this command reads.",
)


_wide = [False]  # --wide of the command being run (set by wide_option's callback)


def _set_wide(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    _wide[0] = bool(value)


wide_option = click.option(
    "--wide",
    is_flag=True,
    expose_value=False,
    callback=_set_wide,
    help="Tables as wide as their contents: no column left out, no number wrapped (pipe to "
    "less -S).",
)


def _format_option(*choices: str) -> Any:
    """``--format``, and ``--wide`` for a command that prints tables."""
    option = click.option(
        "--format",
        "output_format",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help="Output format (json and csv go to stdout; warnings always go to stderr).",
    )
    if "table" not in choices:
        return option
    return lambda command: option(wide_option(command))


class _Group(click.Group):
    """Turns unexpected exceptions into one line too (set RT_ANALYZE_DEBUG=1 for tracebacks)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`rt-analyze report ... | head`): stop quietly, and keep
            # Python from failing again when it flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(1)
        except Exception as exc:
            if isinstance(exc, _input_errors()):
                raise click.ClickException(str(exc)) from exc
            if os.environ.get(DEBUG_ENV):
                raise
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {exc} (rerun with {DEBUG_ENV}=1 to see "
                "where, and please report it)."
            ) from exc


# The library's errors that mean bad input, by module: one not imported raised none of them.
_INPUT_ERRORS = (
    ("analyzer.reader", "CaptureError"),
    ("analyzer.pricing", "PricingError"),
    ("analyzer.recording.convert", "JournalError"),
    ("analyzer.outputs", "OutputError"),
    ("analyzer.matching", "NoMatch"),
)


def _input_errors() -> tuple[type[Exception], ...]:
    modules = ((sys.modules.get(module), name) for module, name in _INPUT_ERRORS)
    return tuple(getattr(module, name) for module, name in modules if module is not None)


class _LazyChoice(click.Choice[str]):
    """A choice of values a function gives when first needed (from a module that is slow to
    import)."""

    def __init__(self, values: Callable[[], Sequence[str]]) -> None:
        self._values = values
        self.case_sensitive = True

    @cached_property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self._values())


def _groupings() -> list[str]:
    from analyzer.sizes import GROUPINGS

    return sorted(GROUPINGS)


def _stderr() -> Console:
    from rich.console import Console

    return Console(file=sys.stderr)


def load_capture(paths: Sequence[Path], columns: Sequence[str] = ANALYSIS_COLUMNS) -> Capture:
    """Read captures (with a progress bar on stderr for many files); warnings go to stderr."""
    from analyzer.reader import CaptureError, find_capture_files, read_capture

    try:
        files = find_capture_files(paths)
        if len(files) > 1 and sys.stderr.isatty():
            from rich.progress import Progress

            with Progress(console=_stderr(), transient=True) as progress:
                task = progress.add_task("reading captures", total=len(files))
                capture = read_capture(files, columns, lambda: progress.advance(task))
        else:
            capture = read_capture(list(paths), columns)
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from exc
    for warning in capture.warnings:
        click.echo(f"Warning: {warning}", err=True)
    return capture


def _prices(path: Path | None) -> dict[str, Prices] | None:
    if path is None:
        return None
    from analyzer.pricing import PricingError, load_prices

    try:
        return load_prices(path)
    except PricingError as exc:
        raise click.ClickException(str(exc)) from exc


def _echo_json(value: Any) -> None:
    from analyzer.report import jsonable

    click.echo(json.dumps(jsonable(value), ensure_ascii=False, indent=2, allow_nan=False))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    from analyzer.report import jsonable

    records: list[dict[str, Any]] = jsonable(frame.to_dict("records"))
    return records


def _echo_csv(frame: pd.DataFrame) -> None:
    click.echo(frame.to_csv(index=False), nl=False)


def _console() -> Console:
    from rich.console import Console

    from analyzer.layout import UNLIMITED

    if _wide[0]:
        return Console(width=UNLIMITED)
    # Piped or redirected output gets wide tables instead of rich's 80-column default, unless
    # COLUMNS says how wide (rich reads it when given no width).
    sized = sys.stdout.isatty() or (os.environ.get("COLUMNS") or "").isdigit()
    return Console(width=None if sized else 160)


# --- datasets: many runs from many proxies, filtered, read run file by run file ---------------

ENGINES = ("local", "spark")
DIALECTS = ("beta", "ga", "live", "gemini", "other")  # live: GPT-Live; gemini: Gemini Live
# A 95% percentile interval puts 2.5% of the resamples beyond each end: at least a few.
MIN_BOOTSTRAP = 100
SPARK_MASTER = "local[2]"
master_option = click.option(
    "--master", help=f"Spark master URL, with --engine spark [default: {SPARK_MASTER}]."
)


def _master(engine: str, master: str | None) -> str:
    """The Spark master to use; ``--master`` without ``--engine spark`` is a mistake."""
    if master is not None and engine != "spark":
        raise click.BadParameter(
            "it is the Spark master URL, used only with --engine spark; add --engine spark or "
            "drop --master.",
            param_hint="--master",
        )
    return master or SPARK_MASTER


def dataset_options(command: Any) -> Any:
    """The filter options shared by the dataset commands."""
    options = [
        click.option(
            "--since",
            help="Only sessions that started at or after this time: 2025-01-31, "
            "2025-01-31T12:00:00Z or epoch seconds (UTC unless an offset is given).",
        ),
        click.option("--until", help="Only sessions that started before this time."),
        click.option(
            "--host",
            "hosts",
            multiple=True,
            help="Only captures of this proxy host (the host= partition); repeatable.",
        ),
        click.option("--model", "models", multiple=True, help="Only this model; repeatable."),
        click.option(
            "--dialect",
            "dialects",
            multiple=True,
            type=click.Choice(DIALECTS),
            help="Only this protocol dialect; repeatable.",
        ),
        click.option(
            "--session",
            "session_ids",
            multiple=True,
            help="Only this session id (or id prefix); repeatable.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _filters(options: dict[str, Any]) -> Filters:
    from analyzer.filters import Filters, parse_time

    since, until = options.get("since"), options.get("until")
    since_s = parse_time(since) if since else None
    until_s = parse_time(until) if until else None
    if since_s is not None and until_s is not None and since_s >= until_s:
        raise click.BadParameter(
            f"{since} is not before --until {until}, so no session can match; swap them.",
            param_hint="--since",
        )
    for session in options.get("session_ids") or ():
        if not session.strip():
            raise click.BadParameter(
                "an empty session id would match every session; pass an id or an id prefix.",
                param_hint="--session",
            )
    return Filters(
        since_s=since_s,
        until_s=until_s,
        hosts=tuple(options.get("hosts") or ()),
        models=tuple(options.get("models") or ()),
        dialects=tuple(options.get("dialects") or ()),
        sessions=tuple(options.get("session_ids") or ()),
    )


def open_captures(paths: Sequence[Path | str], options: dict[str, Any]) -> Dataset:
    """The dataset of ``paths`` (files, directories, globs) with the filter options."""
    from analyzer.dataset import open_dataset

    return open_dataset(list(paths), _filters(options))


def _echo_warnings(dataset: Dataset, found: int | None = None, side: str = "") -> None:
    """The dataset's warnings, then an error if its filters matched no session (``found``: a
    count of sessions the command has, when the dataset's own is not kept)."""
    from analyzer.matching import require_matches

    for warning in dataset.warnings:
        click.echo(f"Warning: {warning}", err=True)
    require_matches(dataset, found, side)


@click.group(cls=_Group)
@click.version_option(package_name="rt-analyze")
def main() -> None:
    """Analyze captures of realtime voice-AI WebSocket traffic (OpenAI Realtime API, beta or GA,
    and compatible providers) recorded by the rt-analyze mitmproxy addon.

    A CAPTURE is a .parquet file, a .jsonl journal, or a directory of them.

    Example:

        rt-analyze report captures/
    """
    # Arrow's default pool (mimalloc) keeps what a window of frames used for the next one; the
    # C allocator gives it back: ~50 MB less at the peak of a big report, no slower.
    pa.set_memory_pool(pa.system_memory_pool())


# Commands kept in their own modules; importing them adds them to ``main``.
from analyzer import cli_analysis, cli_capture, cli_fleet, cli_triage  # noqa: E402, F401
