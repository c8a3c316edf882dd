"""Tables at 80 and 100 columns (issue 19, item 3): no line wider than the terminal, no header
cut inside a word, every number whole, the columns left out named; ``--wide`` keeps them all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.cells import cell_len

from analyzer.cli import main
from analyzer.layout import Column, fit_table, wrap_header

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
GA = SAMPLES / "ga-voice.parquet"
BETA = SAMPLES / "beta-voice.parquet"

COMMANDS = {
    "report": ["report", str(GA)],
    "latency": ["latency", str(GA)],
    "per-turn": ["latency", str(GA), "--per-turn"],
    "sizes": ["sizes", str(GA)],
    "sizes-session": ["sizes", str(SAMPLES), "--by", "session"],
    "conversation": ["conversation", str(GA)],
    "slowest": ["slowest", str(SAMPLES), "-n", "5"],
    "compare": ["compare", str(GA), str(BETA), "--bootstrap", "200"],
}
# A number as the tables print it: digits with thousands separators, decimals, a sign, a mark.
NUMBER = re.compile(r"^-?\d{1,3}(,\d{3})*(\.\d+)?\*?$")


def run(args: list[str], columns: int) -> str:
    result = CliRunner().invoke(main, args, env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.stdout


def cells_of(line: str) -> list[str]:
    """A table line's cells, stripped (the borders at both ends dropped)."""
    return [cell.strip() for cell in re.split("[┃│]", line.rstrip()[1:-1])]


def headers(lines: list[str]) -> list[list[str]]:
    """Each table's headers, their wrapped lines joined back (``first_`` + ``audio``)."""
    tables = []
    for start, line in enumerate(lines):
        if not line.startswith("┏"):
            continue
        end = next(i for i in range(start, len(lines)) if lines[i].startswith("┡"))
        rows = [cells_of(row) for row in lines[start + 1 : end]]
        joined = []
        for pieces in zip(*rows, strict=True):
            text = ""
            for piece in filter(None, pieces):
                text += piece if not text or text.endswith("_") else " " + piece
            joined.append(text)
        tables.append(joined)
    return tables


def number_cells(lines: list[str]) -> list[str]:
    """Every body cell that holds a digit and no letter (a 95% interval wraps at its comma)."""
    cells = []
    for line in lines:
        if line.startswith("│"):
            cells += cells_of(line)
    return [c for c in cells if re.search(r"\d", c) and not re.search(r"[a-zA-Z:\[\]]", c)]


@pytest.mark.parametrize("columns", [80, 100])
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_tables_fit_with_whole_headers_and_numbers(name: str, columns: int) -> None:
    lines = run(COMMANDS[name], columns).splitlines()
    assert max(cell_len(line) for line in lines) <= columns
    # Every header is a whole name or empty (words never cut, no "…").
    for table in headers(lines):
        for header in table:
            assert "…" not in header
            assert re.fullmatch(r"(|#|[\w%.]+(?:[_ ][\w%.()/]+)*( \([a-z%$]+\))?)", header), header
    # Numbers are never wrapped: a cell holding digits is one whole number.
    cells = number_cells(lines)
    assert cells and all(NUMBER.match(c) or c == "-" for c in cells), cells


def test_report_at_100_columns_keeps_the_latencies_and_names_what_it_left_out() -> None:
    out = run(COMMANDS["report"], 100)
    lines = out.splitlines()
    assert headers(lines)[0] == [
        "#",
        "interrupted",
        "first_audio (ms)",
        "perceived_first_audio (ms)",
        "heard_first_audio (ms)",
        "answer_first_audio (ms)",
        "user",
        "assistant",
    ]
    row = next(line for line in lines if line.startswith("│ 2 "))
    assert cells_of(row)[:6] == ["2", "no", "258", "458", "442", "-"]
    assert (
        "not shown for lack of width: trigger, status, response_created (ms), first_transcript "
        "(ms), response_done (ms), transcription (ms), tool_time (ms)"
        in " ".join(line.strip() for line in lines)
    )
    # p90 and p99 of 4 or 5 turns are marked, and the mark explained.
    assert "│ first_audio           │     4 │  260 │   260* │   261* │   261 │" in lines
    assert "* fewer than 10 values for p90 or 100 for p99" in out


def test_wide_shows_every_column_whatever_the_terminal() -> None:
    out = run([*COMMANDS["per-turn"], "--wide"], 80)
    assert "not shown" not in out
    assert headers(out.splitlines())[0][-8:] == [
        "stream_ratio (x)",
        "would_stall",
        "heard_first_audio (ms)",
        "heard_first_voice (ms)",
        "barge_in_stop (ms)",
        "barge_in_cancel (ms)",
        "answer_first_audio (ms)",
        "tool_time (ms)",
    ]
    assert max(cell_len(line) for line in out.splitlines()) > 150


def test_sizes_at_80_columns_prints_each_number_on_one_line() -> None:
    lines = run(COMMANDS["sizes"], 80).splitlines()
    total = next(line for line in lines if "│ total" in line)
    assert cells_of(total)[2:] == [
        "621",
        "1,082,818",
        "760,320",
        "93.6",
    ]


def test_headers_wrap_at_underscores_and_spaces_only() -> None:
    assert wrap_header("perceived_first_audio (ms)", 10) == "perceived_\nfirst_\naudio (ms)"
    assert wrap_header("first_audio (ms)", 6) == "first_\naudio\n(ms)"
    assert wrap_header("transcription_first_delta", 3) == "transcription_\nfirst_\ndelta"


def test_the_lowest_priority_columns_go_first_and_text_narrows_before() -> None:
    columns = [
        Column("name", text=True, priority=9, min_width=4),
        Column("kept", "ms", priority=8),
        Column("dropped", "ms", priority=1),
    ]
    rows = [["a long text that can wrap", "1,234", "5,678"]]
    # 4 (text) + 5 ("1,234") + 7 ("dropped", the longest piece of its header) + 3 x 3 + 1
    assert fit_table(columns, rows, 26).hidden == []
    fitted = fit_table(columns, rows, 25)
    assert fitted.hidden == ["dropped (ms)"]
    # The number keeps its 5 characters; the text takes the rest of the 25.
    assert [c.width for c in fitted.table.columns] == [25 - 1 - 2 * 3 - 5, 5]


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_transcript(command: str) -> list[str]:
    """The lines the README shows after ``$ <command>``, up to the next prompt or fence."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"$ {command}"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith(("$ ", "```")))
    return [line for line in lines[start + 1 : end] if line]


@pytest.mark.parametrize(
    "command",
    [
        "rt-analyze report samples/ga-voice.parquet",
        "rt-analyze slowest samples/ --metric first_audio -n 6",
        "rt-analyze slowest samples/ --metric answer_first_audio",
        "rt-analyze conversation samples/beta-voice.parquet",
    ],
)
def test_the_readme_shows_real_output_at_100_columns(command: str) -> None:
    args = [a.replace("samples/", f"{SAMPLES}/") for a in command.split()[1:]]
    out = [line.rstrip() for line in run(args, 100).splitlines() if line.strip()]
    assert readme_transcript(command) == out
