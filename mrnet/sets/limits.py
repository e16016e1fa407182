"""A sliding-window rate limit per client address, with an optional cap for everyone together. Keyed by what the
client cannot choose (its address, not a session id it sends); addresses with nothing recent are forgotten, so
the state stays as small as the window's traffic."""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from mrnet.core.errors import MRNetError


class RateLimit:
    """At most `count` events per `seconds` from one address (else `per_address`, a sentence) and, when `total`
    is given, `total` from everyone (else `everyone`). `clock` is the time in seconds (default: the monotonic
    clock, read at each check, so a test may move it)."""

    def __init__(self, count: int, seconds: float, per_address: str, total: int | None = None, everyone: str = "",
                 clock: Callable[[], float] | None = None):
        self.count, self.seconds, self.total, self.clock = count, seconds, total, clock
        self.per_address, self.everyone_busy = per_address, everyone
        self.recent: dict[str, deque] = {}
        self.everyone: deque = deque()
        self.lock = threading.Lock()

    def check(self, address: str) -> None:
        """Count one event from `address`, or raise MRNetError (and count nothing) when over a limit."""
        now = self.clock() if self.clock else time.monotonic()
        with self.lock:
            for key in [k for k, recent in self.recent.items() if not recent or now - recent[-1] >= self.seconds]:
                del self.recent[key]
            recent = self.recent.setdefault(address, deque())
            for queue in (recent, self.everyone):
                while queue and now - queue[0] >= self.seconds:
                    queue.popleft()
            if len(recent) >= self.count:
                raise MRNetError(self.per_address)
            if self.total is not None and len(self.everyone) >= self.total:
                raise MRNetError(self.everyone_busy)
            recent.append(now)
            self.everyone.append(now)
