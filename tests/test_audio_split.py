"""Audio export in two processes (a big Parquet capture on two CPUs): the same files as in one,
and what goes wrong in the second process comes back to the first."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import analyzer.audio.export as export
from analyzer.audio import export_audio
from analyzer.audio.forked import Forked, ForkedError
from analyzer.audio.items import _scan
from analyzer.reader import CaptureError
from tests.test_audio import random_session, record


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random sessions (pcm16 and G.711, VAD, clears, truncates) in small row groups, so that
    sessions span row groups and each process reads only a stretch of them."""
    directory = tmp_path_factory.mktemp("split")
    parquet, _ = record(directory / "cap", {f"s{i}": random_session(i)[0] for i in range(7)})
    small = directory / "small-groups.parquet"
    table = pq.read_table(parquet)
    schema = table.schema.with_metadata(pq.ParquetFile(parquet).metadata.metadata)
    pq.write_table(table.cast(schema), small, row_group_size=40)
    assert pq.ParquetFile(small).metadata.num_row_groups > 7
    return small


def _export(capture: Path, out: Path, split: bool, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The export's result (files, warnings) and every path's mode and bytes, as lines."""
    with monkeypatch.context() as patch:
        patch.setattr(export, "can_fork", lambda: split)
        patch.setattr(export, "SPLIT_MIN_BYTES", 0 if split else 2**62)
        result = export_audio([capture], out)
    lines = [f"file {p.relative_to(out)}" for p in result.files] + result.warnings
    for path in sorted([out, *out.rglob("*")]):
        mode = oct(stat.S_IMODE(path.stat().st_mode))
        body = path.read_bytes().hex() if path.is_file() else "dir"
        lines.append(f"{path.relative_to(out)} {mode} {body}")
    return lines


def test_two_processes_write_what_one_writes(
    capture: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = _export(capture, tmp_path / "one", split=False, monkeypatch=monkeypatch)
    two = _export(capture, tmp_path / "two", split=True, monkeypatch=monkeypatch)
    assert any(line.startswith("file ") for line in one)
    assert two == one


def test_the_split_covers_every_session_once_in_stretches_of_the_file(capture: Path) -> None:
    by_row_group = _scan([capture]).by_row_group
    assert by_row_group is not None
    parts = by_row_group.split(2)
    assert sorted(parts[0] + parts[1]) == list(range(len(by_row_group.frames)))
    assert parts[0] and parts[1]
    last_of_first = max(by_row_group.done_group[i] for i in parts[0])
    assert all(by_row_group.done_group[i] >= last_of_first for i in parts[1])
    built = [index for index, _ in by_row_group.sessions(parts[1])]
    assert built == sorted(parts[1], key=lambda i: (by_row_group.done_group[i], i))


def test_an_error_in_the_second_process_is_raised_in_the_first(
    capture: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = os.getpid()
    real = export._export_built

    def failing(*args: object, **kwargs: object) -> object:
        if os.getpid() != parent:
            raise CaptureError("broken in the child")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(export, "_export_built", failing)
    with pytest.raises(CaptureError, match="broken in the child"):
        _export(capture, tmp_path / "out", split=True, monkeypatch=monkeypatch)


def test_an_error_in_the_first_process_stops_the_second(
    capture: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = os.getpid()
    real = export._export_built

    def failing(*args: object, **kwargs: object) -> object:
        if os.getpid() == parent:
            raise OSError("disk full")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(export, "_export_built", failing)
    with pytest.raises(OSError, match="disk full"):
        _export(capture, tmp_path / "out", split=True, monkeypatch=monkeypatch)
    with pytest.raises(ChildProcessError):  # reaped: no child left behind
        os.waitpid(-1, os.WNOHANG)


def test_forked_returns_raises_and_reports_a_dead_child() -> None:
    assert Forked(lambda: {"pid": os.getpid()}).result()["pid"] != os.getpid()

    def fails() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        Forked(fails).result()

    def unpicklable() -> None:
        raise ValueError(lambda: None)

    with pytest.raises(ForkedError, match="ValueError"):
        Forked(unpicklable).result()

    def killed() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(ForkedError, match=f"signal {int(signal.SIGKILL)}"):
        Forked(killed).result()


def test_a_cancelled_child_is_killed_and_reaped() -> None:
    def forever() -> None:
        signal.pause()

    child = Forked(forever)
    child.cancel()
    child.cancel()  # twice is harmless
    with pytest.raises(ForkedError, match="taken already"):
        child.result()


def test_without_a_second_process_everything_is_done_in_one(
    capture: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = _export(capture, tmp_path / "one", split=False, monkeypatch=monkeypatch)

    def no_fork() -> int:
        raise BlockingIOError("fork: Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    before = len(os.listdir("/proc/self/fd"))
    assert _export(capture, tmp_path / "two", split=True, monkeypatch=monkeypatch) == one
    assert len(os.listdir("/proc/self/fd")) == before  # the pipe was closed
