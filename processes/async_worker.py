"""An asyncio loop in its own thread beside an actor's ZeroMQ poll loop (the venue clients are
asyncio; the actors are sync poll loops). The worker's failure is kept in `error` for the actor's
loop to raise; `stop()` asks the loop to finish and joins it within a bound."""

from __future__ import annotations

import asyncio
import logging
import random
import threading

log = logging.getLogger(__name__)


async def backoff(attempt: int, initial_s: float, max_s: float, rng: random.Random, stop: asyncio.Event) -> float:
    """Wait before reconnect number `attempt` (0 first): exponential backoff with full jitter and a
    cap (AWS architecture blog's "full jitter"), cut short by `stop`; returns the delay drawn."""
    delay = rng.uniform(0.0, min(max_s, initial_s * 2 ** min(attempt, 30)))
    try:
        await asyncio.wait_for(stop.wait(), delay)
    except asyncio.TimeoutError:
        pass
    return delay

STOP_TIMEOUT_S = 10.0


class AsyncWorker:
    name = "async worker"

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._thread_main, name=self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.before_stop()
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            log.error("%s did not stop within %.0f s", self.name, STOP_TIMEOUT_S)

    def before_stop(self) -> None:
        """Last requests to queue before the loop is told to stop (runs in the caller's thread)."""

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as e:  # noqa: BLE001 - handed to the actor's loop, which fails the process
            self.error = e
            log.exception("%s failed", self.name)

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self.main(self._stop)

    async def main(self, stop: asyncio.Event) -> None:
        raise NotImplementedError
