"""The commands that make captures: ``record``, ``import`` and ``convert``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from analyzer.cli import (
    force_option,
    main,
)

if TYPE_CHECKING:
    pass


@main.command()
@click.option(
    "--upstream",
    metavar="openai|gemini|azure:RESOURCE|URL",
    help="Reverse proxy: clients connect to this proxy, which forwards to the provider.",
)
@click.option(
    "--mode",
    metavar="regular|local[:PROCESS]|wireguard",
    help="Instead of --upstream: an HTTPS_PROXY for clients (regular, the default), this "
    "machine's processes (local), or a WireGuard VPN for other devices.",
)
@click.option("--port", type=int, default=8080, show_default=True, help="0 picks a free port.")
@click.option(
    "--listen-host", help="Interface to listen on (default 127.0.0.1; all for wireguard)."
)
@click.option(
    "--dir",
    "rt_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("captures"),
    show_default=True,
    help="Directory for the captures (created 0700; files 0600).",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="NAME=VALUE",
    help="A mitmdump option, e.g. rt_audio=drop, rt_layout=partitioned, confdir=DIR; repeatable.",
)
def record(
    upstream: str | None,
    mode: str | None,
    port: int,
    listen_host: str | None,
    rt_dir: Path,
    settings: tuple[str, ...],
) -> None:
    """Record realtime sessions: runs mitmdump with the rt-analyze addon until Ctrl-C, then
    prints where the capture is and the command that reports on it.

    Example:

        rt-analyze record --upstream openai --port 8080 --dir captures
    """
    from analyzer.recording.launch import RecordError, make_plan, run_record

    try:
        plan = make_plan(upstream, mode, port, listen_host, rt_dir, settings)
        result = run_record(plan, click.echo)
    except RecordError as exc:
        raise click.ClickException(str(exc)) from exc
    if not result.files:
        click.echo(f"No realtime session was recorded in {rt_dir}/.")
    for path in result.files:
        click.echo(f"Capture: {path}")
    if result.files:
        click.echo(f"Report:  rt-analyze report {' '.join(map(str, result.files))}")
    if result.exit_code != 0:
        raise click.ClickException(f"mitmdump exited with code {result.exit_code}.")


@main.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--dir",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("captures"),
    show_default=True,
    help="Directory for the capture files (one run per input file).",
)
@click.option(
    "--match",
    metavar="REGEX",
    help="Which WebSocket connections to import, by URL (default: the endpoints the addon records, "
    "Realtime and GPT-Live; '.' imports all).",
)
@click.option(
    "--audio",
    type=click.Choice(["keep", "drop"]),
    default="keep",
    show_default=True,
    help="drop: keep sizes and durations but no audio samples (as rt_audio=drop).",
)
def import_(files: tuple[Path, ...], out_dir: Path, match: str | None, audio: str) -> None:
    """Turn HAR files (browser DevTools, mitmweb, hardump) and mitmproxy flow files (-w) into
    capture files: same schema, secrets redacted, times from the file.

    Example:

        rt-analyze import session.har flows.mitm --dir captures
    """
    import re

    from analyzer.recording.imports import DEFAULT_MATCH, ImportFileError, import_file

    match = match or DEFAULT_MATCH
    try:
        re.compile(match)
    except re.error as exc:
        raise click.ClickException(
            f"--match {match!r} is not a regular expression: {exc}."
        ) from exc
    written = []
    for path in files:
        if not path.is_file():
            raise click.ClickException(f"{path} does not exist or is not a file.")
        try:
            result = import_file(path, out_dir, match, keep_audio=audio == "keep")
        except ImportFileError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            raise click.ClickException(f"cannot import {path}: {exc}.") from exc
        for warning in result.warnings:
            click.echo(f"Warning: {warning}", err=True)
        if result.parquet_path is None:
            skipped = result.websockets_skipped
            click.echo(
                f"{path}: no WebSocket connection matching {match!r} "
                f"({skipped} other WebSocket connection(s); --match . imports all).",
                err=True,
            )
            continue
        written.append(result.parquet_path)
        click.echo(
            f"{path}: {result.sessions} session(s), {result.frames} frame(s) -> "
            f"{result.parquet_path}"
        )
    if not written:
        raise click.ClickException("nothing imported: no matching WebSocket connection.")
    click.echo(f"Report: rt-analyze report {' '.join(map(str, written))}")


@main.command()
@click.argument("journal", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Parquet file to write (default: the journal's name with .parquet; for a .parquet "
    "capture, the capture itself, with --force).",
)
@force_option
def convert(journal: Path, output: Path | None, force: bool) -> None:
    """Rebuild a run's Parquet file from its .jsonl journal (after a crash, or to re-derive),
    or bring a Parquet capture an earlier version recorded to the current format (every
    command then reads its recorded events instead of decoding its frames each time).

    Example:

        rt-analyze convert captures/rt-20250101T120000Z-abc123.jsonl

        rt-analyze convert old/rt-20251001T090000Z-4f2a1c.parquet -o new/run.parquet
    """
    from analyzer.recording.convert import JournalError, convert_journal

    if not journal.is_file():
        raise click.ClickException(
            f"{journal} does not exist or is not a file; pass a .jsonl or an older .parquet."
        )
    from analyzer.outputs import check_outputs
    from analyzer.recording.convert import journal_age_if_recording

    if journal.suffix == ".parquet":  # said before the output is checked: it may be current
        from analyzer.recording.capture_frames import open_capture

        try:
            open_capture(journal)
        except JournalError as exc:
            raise click.ClickException(str(exc)) from exc
    if output is None:
        age = None if force or journal.suffix == ".parquet" else journal_age_if_recording(journal)
        if age is not None:
            raise click.ClickException(
                f"{journal} is still being recorded (written {age:.0f} s ago, and the run has "
                f"not ended): the recorder finishes {journal.with_suffix('.parquet').name} when "
                "the proxy stops; convert then, or pass -o OTHER.parquet for a copy so far."
            )
        check_outputs({"the output (-o)": journal.with_suffix(".parquet")}, [journal], force)
    else:
        check_outputs({"-o": output}, [journal], force)
    try:
        out, parsed = convert_journal(journal, output)
    except JournalError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot convert {journal}: {exc}.") from exc
    sessions = len(parsed.sessions)
    click.echo(f"Wrote {out}: {sessions} session(s), {parsed.frame_count} frame(s).")
    if parsed.torn_last_line:
        click.echo(
            "Skipped a torn last line (the recorder stopped mid-write); everything before it "
            "was recovered.",
            err=True,
        )
    if parsed.bad_lines:
        lines = ", ".join(map(str, parsed.bad_lines[:10]))
        click.echo(f"Skipped {len(parsed.bad_lines)} unreadable line(s): {lines}.", err=True)
    if parsed.run_end is None and journal.suffix != ".parquet":
        click.echo(
            "The journal has no run_end record: the recorder did not shut down cleanly.", err=True
        )
