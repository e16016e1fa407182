"""Who may use the app: MRNET_AUTH=user:password, checked so that it fails closed and guessing is slow.

A malformed MRNET_AUTH (no colon, an empty user or password) is an error that stops the app: starting
without a login when one was asked for would expose every visitor's uploads.

Failed logins are throttled twice over, and neither can lock the real user out:
- **Per client address**, attempts are paced as if they came one after another: after FREE_FAILURES failures
  within WINDOW_S seconds, each further attempt first waits 2**k * BASE_DELAY_S seconds (k = failures past
  the free ones, counting the attempts still in flight), at most MAX_DELAY_S. So one address guessing in
  parallel gets no more tries per second than guessing in sequence. At most MAX_IN_FLIGHT_PER_ADDRESS
  attempts of one address wait at once; more are refused at once, unchecked.
- **Per user name**, the same growing wait, but counted from now and never queued behind other attempts: many
  addresses guessing one name slow each other down, yet the real user, from an address of their own, waits
  at most MAX_DELAY_S whatever is in flight or was abandoned.
- **Globally**, at most MAX_IN_FLIGHT attempts wait at once (memory), more are refused unchecked.
An attempt that ends (answered, or its client gone) gives back its place in its address's queue, so abandoned
attempts do not push later ones further out. The waits are asyncio sleeps, so the server keeps serving
everyone else meanwhile. A success clears the name's and the address's failures.

The client address is the TCP peer's (`ClientAddress`, an ASGI middleware, hands it over): behind a proxy
every visitor has the proxy's address, and the per-name wait is then the one that protects the real user.
"""
from __future__ import annotations

import asyncio
import contextvars
import hmac
import threading
import time
from dataclasses import dataclass, field

from mrnet.core.errors import MRNetError

FREE_FAILURES = 3
BASE_DELAY_S = 0.5
MAX_DELAY_S = 8.0
WINDOW_S = 600.0
MAX_IN_FLIGHT_PER_ADDRESS = 8
MAX_IN_FLIGHT = 256
MAX_TRACKED = 10_000    # names and addresses remembered at once; the oldest quiet ones are forgotten first

CLIENT_ADDRESS: contextvars.ContextVar[str] = contextvars.ContextVar("mrnet_client_address", default="")


def parse_auth(value: str) -> tuple[str, str] | None:
    """'' -> None (no login); 'user:password' -> the pair; anything else -> MRNetError."""
    if not value:
        return None
    user, colon, password = value.partition(":")
    if not colon or not user or not password:
        raise MRNetError("MRNET_AUTH must be user:password (both non-empty); the app did not start, so that it "
                         "never runs without the login that was asked for.")
    return user, password


class ClientAddress:
    """ASGI middleware: the request's peer address, for the login throttle (Gradio calls `auth` with the name
    and password only). Pure ASGI, so the context variable reaches the route in the same task."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "http":
            client = scope.get("client") or ("", 0)
            token = CLIENT_ADDRESS.set(str(client[0]))
            try:
                return await self.app(scope, receive, send)
            finally:
                CLIENT_ADDRESS.reset(token)
        return await self.app(scope, receive, send)


def growing_delay(failures: int) -> float:
    extra = failures - FREE_FAILURES
    return 0.0 if extra < 0 else min(MAX_DELAY_S, BASE_DELAY_S * 2 ** extra)


@dataclass(frozen=True)
class Ticket:
    """One attempt's place: when it is checked, and the moment it holds in its address's queue."""
    at: float
    address_at: float
    name: str
    address: str


@dataclass
class Record:
    """One name's or one address's recent failures and attempts in flight."""
    failures: list[float] = field(default_factory=list)
    in_flight: int = 0
    reserved: list[float] = field(default_factory=list)  # addresses: the moments their attempts were given

    def recent(self, now: float) -> int:
        self.failures = [t for t in self.failures if now - t < WINDOW_S]
        return len(self.failures)


class ThrottledLogin:
    """One user and password (`check` is Gradio's `auth`), with growing waits after repeated failures per
    client address and per name (see the module's docstring)."""

    def __init__(self, user: str, password: str, clock=time.monotonic, sleep=asyncio.sleep):
        self.user, self.password, self.clock, self.sleep = user.encode(), password.encode(), clock, sleep
        self.names: dict[str, Record] = {}
        self.addresses: dict[str, Record] = {}
        self.in_flight = 0
        self.lock = threading.Lock()

    def record(self, table: dict[str, Record], key: str) -> Record:
        found = table.get(key)
        if found is None:
            if len(table) >= MAX_TRACKED:  # forget quiet ones first: never one with an attempt in flight
                now = self.clock()
                for old in [k for k, r in table.items() if not r.in_flight and not r.recent(now)][:len(table) // 2 + 1]:
                    del table[old]
            found = table[key] = Record()
        return found

    def delay(self, name: str) -> float:
        """The wait that the name alone gives a new attempt for it."""
        with self.lock:
            record = self.record(self.names, name)
            return growing_delay(record.recent(self.clock()) + record.in_flight)

    def reserve(self, name: str, address: str) -> Ticket | None:
        """When this attempt may be checked, or None when it is refused unchecked (too many in flight). Atomic:
        Gradio may call from several threads."""
        with self.lock:
            now = self.clock()
            by_name, by_address = self.record(self.names, name), self.record(self.addresses, address)
            if self.in_flight >= MAX_IN_FLIGHT or by_address.in_flight >= MAX_IN_FLIGHT_PER_ADDRESS:
                return None
            # the name's wait counts from now: however many attempts are in flight, at most MAX_DELAY_S
            name_at = now + growing_delay(by_name.recent(now) + by_name.in_flight)
            # the address's attempts follow one another, each after the previous one's moment
            wait = growing_delay(by_address.recent(now) + by_address.in_flight)
            address_at = max([now, *by_address.reserved]) + wait if wait else now
            by_name.in_flight += 1
            by_address.in_flight += 1
            by_address.reserved.append(address_at)
            self.in_flight += 1
            return Ticket(max(name_at, address_at), address_at, name, address)

    def release(self, ticket: Ticket) -> None:
        """An attempt ended (answered, or its client gone): its place in its address's queue is given back."""
        with self.lock:
            by_name, by_address = self.record(self.names, ticket.name), self.record(self.addresses, ticket.address)
            by_name.in_flight -= 1
            by_address.in_flight -= 1
            self.in_flight -= 1
            by_address.reserved.remove(ticket.address_at)

    async def check(self, username: str, password: str) -> bool:
        """Gradio awaits this (a coroutine function: Gradio tests for one before awaiting, so not __call__)."""
        name, address = str(username)[:256], CLIENT_ADDRESS.get()
        ticket = self.reserve(name, address)
        if ticket is None:
            return False
        try:
            wait = ticket.at - self.clock()
            if wait > 0:
                await self.sleep(wait)
            ok = hmac.compare_digest(name.encode(), self.user) & hmac.compare_digest(str(password).encode(),
                                                                                      self.password)
            with self.lock:
                for record in (self.record(self.names, name), self.record(self.addresses, address)):
                    if ok:
                        record.failures.clear()
                    else:  # past FREE_FAILURES + 5 the wait is at its maximum: no need to keep more
                        record.failures = [*record.failures[-(FREE_FAILURES + 5):], self.clock()]
        finally:  # answered or cancelled (the client went away): the queue moves on either way
            self.release(ticket)
        return bool(ok)
