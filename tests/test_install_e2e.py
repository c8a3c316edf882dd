"""A user without a clone: `pip install .` (not editable) into a fresh venv, then record with
`rt-analyze record` alone and report on what it wrote. Nothing of the checkout is importable."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analyzer.peer.client import run_conversation_sync
from analyzer.peer.harness import ManagedProcess, run_server
from analyzer.peer.server import PeerConfig
from tests.test_record import proxy_port, stop_and_read_capture

REPO = Path(__file__).resolve().parents[1]
# What building the package reads; a copy of only these is a clean tree (no .venv, build/,
# egg-info or compiled modules that could leak into the wheel).
BUILD_INPUTS = ("pyproject.toml", "README.md", "analyzer")
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.egg-info")
PIP_TIMEOUT_S = 540

pytestmark = [pytest.mark.e2e]


def clean_env() -> dict[str, str]:
    """This environment without anything that would put the checkout on sys.path."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


@pytest.fixture(scope="session")
def installed_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One venv per test session with the project pip-installed from a clean copy."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=COPY_IGNORE)
        else:
            shutil.copy2(path, source / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(source)],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_S,
        env=clean_env(),
        cwd=root,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return venv


def venv_site_packages(venv: Path) -> Path:
    (site,) = venv.glob("lib/python3.*/site-packages")
    return site


@pytest.mark.timeout(PIP_TIMEOUT_S + 120)
def test_pip_installed_package_records_with_rt_analyze_record_and_reports(
    installed_venv: Path, tmp_path: Path, fast_peer_config: PeerConfig, fast_speed: float
) -> None:
    site = venv_site_packages(installed_venv)
    bin_dir = installed_venv / "bin"
    env = clean_env()
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import analyzer, sys; print(analyzer.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=env,
    )
    assert Path(where.stdout.strip()) == site / "analyzer" / "__init__.py"  # not the checkout
    captures = tmp_path / "captures"
    with run_server(config=fast_peer_config) as server:
        process = ManagedProcess(
            "rt-analyze record",
            [
                str(bin_dir / "rt-analyze"),
                "record",
                "--upstream",
                f"http://127.0.0.1:{server.port}",
                "--port",
                "0",
                "--dir",
                str(captures),
                "--set",
                f"confdir={tmp_path / 'conf'}",
            ],
            cwd=tmp_path,
            env=env,
        )
        try:
            port = proxy_port(process)
            process.wait_for_line(re.compile("^Press Ctrl-C to stop"), 10)
            result = run_conversation_sync(
                f"ws://127.0.0.1:{port}/v1/realtime", dialect="ga", speed=fast_speed
            )
        finally:
            capture = stop_and_read_capture(process)
    assert result.errors() == []
    # mitmdump loaded the addon from the installed package, and its writer process wrote.
    assert f"Loading script {site / 'analyzer' / 'recording' / 'addon.py'}" in process.output()
    assert capture.parent == captures
    assert pq.read_table(capture).num_rows == len(result.frames)
    report = subprocess.run(
        [str(bin_dir / "rt-analyze"), "report", str(capture), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert report.returncode == 0, report.stderr
    (session,) = json.loads(report.stdout)["sessions"]
    assert session["dialect"] == "ga"
    assert len(session["turns"]) == len(result.responses()) == 5
    assert session["sizes"]["frames"] == len(result.frames)
