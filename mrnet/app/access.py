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
import threading
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
    """One user and password, with a growing wait after repeated failures; `check` is Gradio's `auth`.

    Attempts are paced as if they came one after another, however many arrive at once: each attempt reserves
    the moment it will be checked (the previous reservation plus its own wait, counting the attempts still in
    flight as failures) under a lock, then sleeps until then. So parallel guessing gets no more tries per
    second than sequential guessing."""

    def __init__(self, user: str, password: str, clock=time.monotonic, sleep=asyncio.sleep):
        self.user, self.password, self.clock, self.sleep = user.encode(), password.encode(), clock, sleep
        self.failures: list[float] = []
        self.in_flight = 0
        self.last_check = float("-inf")
        self.lock = threading.Lock()

    def delay(self, extra_failures: int = 0) -> float:
        now = self.clock()
        self.failures = [t for t in self.failures if now - t < WINDOW_S]
        extra = len(self.failures) + extra_failures - FREE_FAILURES
        return 0.0 if extra < 0 else min(MAX_DELAY_S, BASE_DELAY_S * 2 ** extra)

    def reserve(self) -> float:
        """The moment this attempt may be checked (atomic: Gradio may call from several threads)."""
        with self.lock:
            now, wait = self.clock(), self.delay(self.in_flight)
            at = max(now, self.last_check) + wait if wait else now
            self.last_check = max(self.last_check, at)
            self.in_flight += 1
            return at

    async def check(self, username: str, password: str) -> bool:
        """Gradio awaits this (a coroutine function: Gradio tests for one before awaiting, so not __call__)."""
        at = self.reserve()
        try:
            wait = at - self.clock()
            if wait > 0:
                await self.sleep(wait)
            ok = hmac.compare_digest(str(username).encode(), self.user) & hmac.compare_digest(str(password).encode(),
                                                                                             self.password)
        finally:
            with self.lock:
                self.in_flight -= 1
        with self.lock:
            if ok:
                self.failures.clear()
            else:
                self.failures.append(self.clock())
        return bool(ok)
