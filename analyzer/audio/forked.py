"""Run a function in a forked copy of this process, and wait for its result later."""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def can_fork() -> bool:
    """Whether :class:`Forked` is safe here and a second process has a CPU of its own: on Linux
    (Arrow's threads are fork-safe there), and not from a program running Python threads of its
    own (one could hold a lock the child would wait for forever)."""
    return (
        sys.platform == "linux"
        and threading.active_count() == 1
        and len(os.sched_getaffinity(0)) > 1
    )


class ForkedError(RuntimeError):
    """The forked process died without a result."""


class Forked(Generic[T]):
    """``work()`` run in a child process, started at once; :meth:`result` waits for what it
    returned or raised (pickled back through a pipe). The child shares nothing with this process
    once forked: it must only return what this one needs."""

    def __init__(self, work: Callable[[], T]) -> None:
        read_end, write_end = os.pipe()
        try:
            self._pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            raise
        if self._pid == 0:  # the child: never returns
            os.close(read_end)
            _child(work, write_end)
        os.close(write_end)
        self._read_end: int | None = read_end

    def result(self) -> T:
        if self._read_end is None:
            raise ForkedError("the result was taken already")
        with os.fdopen(self._read_end, "rb") as pipe:
            self._read_end = None
            data = pipe.read()
        _, status = os.waitpid(self._pid, 0)
        if not data:
            raise ForkedError(f"the second export process died ({_how(status)}).")
        ok, value = pickle.loads(data)
        if not ok:
            raise value
        result: T = value
        return result

    def cancel(self) -> None:
        """Stop the child (if its result was not taken) and reap it."""
        if self._read_end is None:
            return
        os.close(self._read_end)
        self._read_end = None
        os.kill(self._pid, signal.SIGKILL)
        os.waitpid(self._pid, 0)


def _child(work: Callable[[], Any], write_end: int) -> None:
    """Run ``work``, send back its result or exception, and leave without running this process'
    clean-up (atexit handlers, buffered output: they are the parent's)."""
    code = 0
    try:
        try:
            data = pickle.dumps((True, work()))
        except BaseException as exc:  # everything goes back to the parent
            data = _pickled_error(exc)
        view = memoryview(data)
        while view:
            view = view[os.write(write_end, view) :]
    except BaseException:  # the parent sees no result and says so
        code = 1
    finally:
        os._exit(code)


def _pickled_error(exc: BaseException) -> bytes:
    try:
        return pickle.dumps((False, exc))
    except Exception:  # an exception that does not pickle: its text does
        return pickle.dumps((False, ForkedError(f"{type(exc).__name__}: {exc}")))


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
