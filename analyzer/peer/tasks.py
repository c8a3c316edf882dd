"""What the peers' connections and replies share: background tasks that end quietly when the
client leaves, and a run that can be halted early."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable

from websockets.exceptions import ConnectionClosed


def spawn_guarded(tasks: set[asyncio.Task[None]], coro: Awaitable[None]) -> asyncio.Task[None]:
    """Run ``coro`` as a task kept in ``tasks`` until it ends."""

    async def guarded() -> None:
        # The client left mid-task: nothing to tell anyone.
        with contextlib.suppress(ConnectionClosed):
            await coro

    task = asyncio.get_running_loop().create_task(guarded())
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task


class Haltable:
    """A run (a reply streaming) that ``halt(reason)`` stops early."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.stop_reason: str | None = None
        self._stopped = asyncio.Event()

    async def halt(self, reason: str) -> None:
        """Stop, and wait until the run has sent what closes it."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self._stopped.set()
        if self.task is not None and self.task is not asyncio.current_task():
            await asyncio.shield(self.task)

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless halted; True when halted."""
        if self._stopped.is_set():
            return True
        if seconds <= 0:
            return False
        try:
            await asyncio.wait_for(self._stopped.wait(), seconds)
        except TimeoutError:
            return False
        return True
