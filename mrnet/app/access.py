"""Who may use the app: named reviewers (MRNET_USERS=FILE, one `name:hash` a line, the hash memory-hard) and the
one-user shorthand MRNET_AUTH=user:password, checked so that it fails closed and guessing is slow.

A malformed MRNET_AUTH (no colon, an empty user or password) or MRNET_USERS (missing, a malformed line, a name
with control characters) is an error that stops the app with one sentence: starting without the login that was
asked for would expose every visitor's uploads. `python -m mrnet users add NAME` writes a line (the password is
asked twice, never on the command line).

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
import base64
import contextvars
import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

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


# scrypt (RFC 7914) from hashlib: n=2**14, r=8, p=1 takes about 16 MB and tens of milliseconds per check
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
NAME = re.compile(r"^[^\x00-\x1f\x7f-\x9f:]{1,64}$")


def hash_password(password: str, salt: bytes | None = None, n: int = SCRYPT_N) -> str:
    """'scrypt$n$r$p$salt$key' (salt and key in base64)."""
    salt = salt or secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, dklen=32, maxmem=64 * 2**20)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def password_matches(password: str, stored: str) -> bool:
    kind, n, r, p, salt, key = stored.split("$")
    found = hashlib.scrypt(str(password).encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                           dklen=len(base64.b64decode(key)), maxmem=64 * 2**20)
    return kind == "scrypt" and hmac.compare_digest(found, base64.b64decode(key))


def parse_users(text: str, source: str = "MRNET_USERS") -> dict[str, str]:
    """A users file's text -> {name: stored hash}; any line that is not `name:scrypt$...` stops the app."""
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, colon, stored = line.strip().partition(":")
        parts = stored.split("$")
        well_formed = (colon and NAME.match(name) and len(parts) == 6 and parts[0] == "scrypt"
                       and all(p.isdigit() for p in parts[1:4]))
        if well_formed:
            try:
                base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
            except ValueError:
                well_formed = False
        if not well_formed:
            raise MRNetError(f"{source}: line {number} is not `name:hash` as `python -m mrnet users add NAME` writes "
                             "it; the app did not start, so that it never runs without the login that was asked for.")
        if name in users:
            raise MRNetError(f"{source}: the name {name!r} is given twice (line {number}); keep one line per reviewer.")
        users[name] = stored
    if not users:
        raise MRNetError(f"{source} names no reviewer; add one with `python -m mrnet users add NAME`.")
    return users


def read_users(path: str) -> dict[str, str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise MRNetError(f"MRNET_USERS ({Path(path).name}) cannot be read; the app did not start, so that it never "
                         "runs without the login that was asked for.") from None
    return parse_users(text, f"MRNET_USERS ({Path(path).name})")


def add_user(path: Path, name: str, password: str) -> bool:
    """Write (or replace) a reviewer's line; True when the name was new."""
    if not NAME.match(name):
        raise MRNetError("A reviewer's name is 1 to 64 characters, without ':' or control characters.")
    if len(password) < 8:
        raise MRNetError("A password has at least 8 characters.")
    lines = Path(path).read_text(encoding="utf-8").splitlines() if Path(path).is_file() else []
    kept = [line for line in lines if line.partition(":")[0] != name]
    Path(path).write_text("\n".join([*kept, f"{name}:{hash_password(password)}"]) + "\n", encoding="utf-8")
    Path(path).chmod(0o600)
    return len(kept) == len(lines)


class Logins:
    """Who may log in: named reviewers' stored hashes and the MRNET_AUTH pair. An unknown name costs the same
    scrypt as a known one (no way to tell names apart by time)."""

    def __init__(self, users: dict[str, str] | None = None, pair: tuple[str, str] | None = None):
        self.users, self.pair = dict(users or {}), pair
        self.dummy = hash_password(secrets.token_hex(8)) if self.users else ""
        self.hashing = threading.Semaphore(2)  # scrypt's 16 MB each: two at a time, whatever arrives

    def __call__(self, name: str, password: str) -> bool:
        ok = False
        if self.users:
            stored = self.users.get(name)
            with self.hashing:
                ok = password_matches(password, stored or self.dummy) and stored is not None
        if self.pair is not None:
            ok |= hmac.compare_digest(name.encode(), self.pair[0].encode()) & hmac.compare_digest(
                str(password).encode(), self.pair[1].encode())
        return bool(ok)


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
    """A login check (`check` is Gradio's `auth`): one user and password, or `logins` (Logins: named reviewers),
    with growing waits after repeated failures per client address and per name (see the module's docstring)."""

    def __init__(self, user: str = "", password: str = "", clock=time.monotonic, sleep=asyncio.sleep,
                 logins: Logins | None = None):
        self.logins = logins or Logins(pair=(user, password))
        self.clock, self.sleep = clock, sleep
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
            if self.logins.users:  # scrypt: off the event loop
                ok = await asyncio.to_thread(self.logins, name, str(password))
            else:
                ok = self.logins(name, str(password))
            with self.lock:
                for record in (self.record(self.names, name), self.record(self.addresses, address)):
                    if ok:
                        record.failures.clear()
                    else:  # past FREE_FAILURES + 5 the wait is at its maximum: no need to keep more
                        record.failures = [*record.failures[-(FREE_FAILURES + 5):], self.clock()]
        finally:  # answered or cancelled (the client went away): the queue moves on either way
            self.release(ticket)
        return bool(ok)
