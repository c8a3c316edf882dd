"""`rt-analyze report --html` wires the HTML report into the CLI."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from analyzer.cli import main as cli

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "ga-voice.parquet"


def test_report_html_writes_a_private_self_contained_page(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli, ["report", str(SAMPLE), "--format", "json", "--html", str(out)]
    )
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.count("<audio") >= 9  # eight items and the whole session
    assert "Tell me a bedtime story." in page
    assert os.stat(out).st_mode & 0o777 == 0o600


def test_report_html_to_an_unwritable_place_is_one_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["report", str(SAMPLE), "--html", str(tmp_path / "no" / "r.html")]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error: cannot write")
    assert "Traceback" not in result.output
