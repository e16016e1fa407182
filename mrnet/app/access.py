"""Who may use the app: MRNET_AUTH=user:password, checked so that it fails closed and guessing is slow.

A malformed MRNET_AUTH (no colon, an empty user or password) is an error that stops the app: starting
without a login when one was asked for would expose every visitor's uploads. Failed logins are throttled:
after FREE_FAILURES failures within WINDOW_S seconds, each further attempt first waits 2**k * BASE_DELAY_S
seconds (k = failures past the free ones), at most MAX_DELAY_S. The wait is an asyncio sleep, so the server
keeps serving everyone else meanwhile. The count is per app (an attacker can slow the real user's next
login by at most MAX_DELAY_S) and clears after a success or once WINDOW_S passes without a failure.
"""
from __future__ import annotations

import asyncio
import hmac
import time

from mrnet.core.errors import MRNetError

FREE_FAILURES = 3
BASE_DELAY_S = 0.5
MAX_DELAY_S = 8.0
WINDOW_S = 600.0


def parse_auth(value: str) -> tuple[str, str] | None:
    """'' -> None (no login); 'user:password' -> the pair; anything else -> MRNetError."""
    if not value:
        return None
    user, colon, password = value.partition(":")
    if not colon or not user or not password:
        raise MRNetError("MRNET_AUTH must be user:password (both non-empty); the app did not start, so that it "
                         "never runs without the login that was asked for.")
    return user, password


class ThrottledLogin:
    """One user and password, with a growing wait after repeated failures; `check` is Gradio's `auth`."""

    def __init__(self, user: str, password: str, clock=time.monotonic):
        self.user, self.password, self.clock = user.encode(), password.encode(), clock
        self.failures: list[float] = []

    def delay(self) -> float:
        now = self.clock()
        self.failures = [t for t in self.failures if now - t < WINDOW_S]
        extra = len(self.failures) - FREE_FAILURES
        return 0.0 if extra < 0 else min(MAX_DELAY_S, BASE_DELAY_S * 2 ** extra)

    async def check(self, username: str, password: str) -> bool:
        """Gradio awaits this (a coroutine function: Gradio tests for one before awaiting, so not __call__)."""
        wait = self.delay()
        if wait:
            await asyncio.sleep(wait)
        ok = hmac.compare_digest(str(username).encode(), self.user) & hmac.compare_digest(str(password).encode(),
                                                                                         self.password)
        if ok:
            self.failures.clear()
        else:
            self.failures.append(self.clock())
        return bool(ok)
