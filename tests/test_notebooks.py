"""Every notebook runs headless on a capture, and its plots show that capture's data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from analyzer.analysis import all_turns, analyze_capture
from analyzer.reader import read_capture
from analyzer.sizes import sizes_by_event
from tests.capture_factory import record_sessions
from tests.test_turns import function_call_session, ga_barge_in_session

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SAMPLES = ROOT / "samples"
KERNEL = "rt-analyze-tests"


@pytest.fixture(scope="module")
def capture_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped samples when there are any, else a capture recorded here."""
    if any(SAMPLES.glob("*.parquet")):
        return SAMPLES
    directory = tmp_path_factory.mktemp("capture")
    sessions = {"barge": ga_barge_in_session(), "tools": function_call_session()}
    record_sessions(directory, sessions)
    return directory


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernel spec running this interpreter, so the kernel sees the same analyzer."""
    jupyter_path = tmp_path_factory.mktemp("jupyter")
    spec = jupyter_path / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "rt-analyze tests", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return jupyter_path


def run_notebook(
    name: str, capture: Path, jupyter_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Execute ``notebooks/NAME.ipynb`` on ``capture``; the JSON its plotted-data cell printed."""
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    monkeypatch.setenv("RT_CAPTURE", str(capture))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=60,
        startup_timeout=60,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", output
            assert output.get("name") != "stderr", output["text"]
    (cell,) = [c for c in nb.cells if "plotted-data" in c.metadata.get("tags", [])]
    (output,) = [o for o in cell.outputs if o["output_type"] == "stream"]
    plotted: dict[str, Any] = json.loads(output["text"])
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    plotted["images"] = len(images)
    return plotted


def by_label(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["label"]: item for item in items}


def test_every_notebook_is_tested() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == ["latency", "payload"]


def test_every_notebook_is_committed_without_outputs() -> None:
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), path.name


def test_latency_notebook_plots_the_turn_table_of_the_capture(
    capture_path: Path, kernel_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plotted = run_notebook("latency", capture_path, kernel_env, monkeypatch)
    turns = all_turns(list(analyze_capture(read_capture(capture_path))))
    assert plotted["turns"] == len(turns) and plotted["images"] == 3

    (latency,) = plotted["latency"]
    lines = {line["label"].split("  (")[0]: line for line in latency["lines"]}
    first_audio = lines["speech stopped -> first audio"]
    assert first_audio["x"] == sorted(turns["latency_first_audio_ms"].dropna())
    perceived = lines["perceived: end of speech -> first audio (+ VAD silence)"]
    assert perceived["x"] == sorted(turns["perceived_first_audio_ms"].dropna())

    (timeline,) = plotted["timeline"]
    counts = turns["session_id"].value_counts()
    assert counts[plotted["session_id"]] == counts.max()  # the busiest session by default
    session = turns[turns["session_id"] == plotted["session_id"]]
    done = by_label(timeline["lines"])["response.done"]
    start = session[["speech_started_s", "turn_start_s", "response_created_s"]].min().min()
    assert done["x"] == pytest.approx(list(session["response_done_s"].dropna() - start))
    spoken = session.dropna(subset=["speech_started_s", "speech_stopped_s"])
    assert len(spoken)  # a VAD session: the user's speech is drawn
    speech = by_label(timeline["bars"])["user speech"]
    widths = spoken["speech_stopped_s"] - spoken["speech_started_s"]
    assert speech["width"] == pytest.approx(list(widths))

    (tokens,) = plotted["tokens"]
    reported = turns[turns["total_tokens"].notna()]
    output_audio = by_label(tokens["bars"])["output audio"]
    assert output_audio["height"] == list(reported["output_audio_tokens"].fillna(0))


def test_payload_notebook_plots_the_sizes_of_the_capture(
    capture_path: Path, kernel_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plotted = run_notebook("payload", capture_path, kernel_env, monkeypatch)
    sizes = sizes_by_event(read_capture(capture_path).frames)
    (payload,) = plotted["payload"]
    bars = by_label(payload["bars"])
    table = pd.DataFrame(plotted["table"])
    assert bars["audio (base64)"]["width"] == list(table["audio_b64_bytes"])
    assert sum(bars["audio (base64)"]["width"]) == sizes["audio_b64_bytes"].sum()
    assert sum(bars["audio (base64)"]["width"]) + sum(bars["JSON / text"]["width"]) == (
        sizes["bytes"].sum()
    )
    assert plotted["images"] == 1


IMAGES = {"latency": 3, "payload": 1}


def plotted_data(nb: Any) -> dict[str, Any]:
    (cell,) = [c for c in nb.cells if "plotted-data" in c.metadata.get("tags", [])]
    (output,) = [o for o in cell.outputs if o["output_type"] == "stream"]
    return dict(json.loads(output["text"]))


@pytest.mark.parametrize("name", ["latency", "payload"])
def test_jupyter_nbconvert_execute_runs_each_notebook_as_a_user_would(
    name: str, capture_path: Path, kernel_env: Path, tmp_path: Path
) -> None:
    """`jupyter nbconvert --execute` (what the README tells users) on a capture plots what the
    library computes."""
    env = {
        **os.environ,
        "JUPYTER_PATH": str(kernel_env),
        "RT_CAPTURE": str(capture_path),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    args = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute"]
    args += [f"--ExecutePreprocessor.kernel_name={KERNEL}", "--output-dir", str(tmp_path)]
    done = subprocess.run(
        [*args, str(NOTEBOOKS / f"{name}.ipynb")],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=NOTEBOOKS,
    )
    assert done.returncode == 0, done.stderr
    executed = nbformat.read(tmp_path / f"{name}.ipynb", as_version=4)
    outputs = [o for c in executed.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error" or o.get("name") == "stderr"]
    plotted = plotted_data(executed)
    if name == "latency":
        turns = all_turns(list(analyze_capture(read_capture(capture_path))))
        assert plotted["turns"] == len(turns)
    else:
        (payload,) = plotted["payload"]
        widths = [w for bar in payload["bars"] for w in bar["width"]]
        assert sum(widths) == sizes_by_event(read_capture(capture_path).frames)["bytes"].sum()
    assert sum("image/png" in o.get("data", {}) for o in outputs) == IMAGES[name]
