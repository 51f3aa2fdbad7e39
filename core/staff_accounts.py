"""Console accounts, logins and sessions.

Passwords are hashed with Argon2id (argon2-cffi: the current OWASP recommendation, with
rehash-on-login when its parameters move on). A session is an unguessable cookie token of
which only the SHA-256 is stored, with its own CSRF token; a new one is made at every login
(rotation), and they expire. Changing a password ends every session of the account, and
``logout_everywhere`` ends them on request; ``on_sessions_ended`` tells open console sockets.

Throttling is atomic: before a password is checked, one attempt per key (username, address) is
*reserved* in the database in the same transaction that counts the attempts in the window, under
a per-key lock (PostgreSQL: ``pg_advisory_xact_lock``, so every server process queues on it;
SQLite: the one writer lock, BEGIN IMMEDIATE). So N concurrent wrong passwords can never check
more than the limit; a right password removes its reservation again. Refusals carry how long to
wait. Argon2 runs on a small bounded thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, text

from core.clock import Clock
from core.db import Database
from core.models import ConsoleSession, LoginFailure, StaffAccount

SESSION_TTL = timedelta(hours=12)
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES = 10  # per username, and per address, within the window
MAX_PASSWORD = 1024  # longer ones are refused at login without hashing
MAX_USERNAME = 80  # the column's size
HASH_WORKERS = 2  # Argon2 threads per process (each hash uses 64 MiB and ~0.3 s of one core)
MAX_WAITING_HASHES = 32  # beyond this many queued hashes a login is refused as busy
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password")  # equal work for unknown usernames
_pool = ThreadPoolExecutor(max_workers=HASH_WORKERS, thread_name_prefix="argon2")
_waiting = 0
_waiting_lock = threading.Lock()
T = TypeVar("T")


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    display_name: str
    role: str
    shops: tuple[str, ...]
    language: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def can_see(self, shop_id: str) -> bool:
        return shop_id in self.shops


@dataclass(frozen=True)
class Session:
    token: str  # goes in the cookie; never stored
    csrf: str
    account: Account
    expires_at: datetime


class LoginThrottled(Exception):
    """Too many attempts for ``key``; the next may come in ``retry_after_min`` minutes."""

    def __init__(self, key: str, retry_after_min: int = 15) -> None:
        super().__init__(key)
        self.key = key
        self.retry_after_min = retry_after_min


def _account(row: StaffAccount) -> Account:
    return Account(row.id, row.username, row.display_name or row.username, row.role, tuple(row.shops), row.language)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _off_loop(fn: Callable[..., T], *args: object) -> T:
    """Run CPU-heavy password work on the bounded hashing pool (argon2 releases the GIL)."""
    global _waiting
    with _waiting_lock:
        if _waiting >= MAX_WAITING_HASHES:
            raise LoginThrottled("busy", 1)
        _waiting += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_pool, partial(fn, *args))
    finally:
        with _waiting_lock:
            _waiting -= 1


def _verify(stored: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False


SessionsEnded = Callable[[int], Awaitable[None]]


class StaffAccounts:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.on_sessions_ended: list[SessionsEnded] = []  # e.g. close the account's open sockets
        # Reservations queue here first, so a burst waits in this process rather than holding
        # one pooled database connection each while it waits for the row lock.
        self._reserving = asyncio.Lock()

    async def _ended(self, account_id: int) -> None:
        for listener in list(self.on_sessions_ended):
            await listener(account_id)

    async def add(
        self,
        username: str,
        password: str,
        *,
        shops: list[str],
        role: str = "staff",
        display_name: str = "",
        language: str = "zh",
    ) -> Account:
        """Create an account (or reset the password and shops of an existing one).

        Resetting an existing account's password ends all of its sessions.
        """
        if role not in ("staff", "admin"):
            raise ValueError("role must be staff or admin")
        if not 8 <= len(password) <= MAX_PASSWORD:
            raise ValueError(f"passwords need 8 to {MAX_PASSWORD} characters")
        hashed = await _off_loop(_hasher.hash, password)
        existed = False
        async with self.db.transaction() as s:
            row = await s.scalar(select(StaffAccount).where(StaffAccount.username == username))
            if row is None:
                row = StaffAccount(username=username, created_at=self.clock.now())
                s.add(row)
            else:
                existed = True
                await s.execute(delete(ConsoleSession).where(ConsoleSession.account_id == row.id))
            row.password_hash = hashed
            row.role, row.shops, row.display_name, row.language, row.active = role, shops, display_name, language, True
            await s.flush()
            account = _account(row)
        if existed:
            await self._ended(account.id)
        return account

    async def change_password(self, username: str, old: str, new: str) -> bool:
        """Change a password after checking the old one; every session of the account ends."""
        if not 8 <= len(new) <= MAX_PASSWORD:
            raise ValueError(f"passwords need 8 to {MAX_PASSWORD} characters")
        async with self.db.reading() as s:
            row = await s.scalar(select(StaffAccount).where(StaffAccount.username == username))
        if row is None or not await _off_loop(_verify, row.password_hash, old):
            return False
        hashed = await _off_loop(_hasher.hash, new)
        async with self.db.transaction() as s:
            stored = await s.get(StaffAccount, row.id)
            if stored is None:
                return False
            stored.password_hash = hashed
            await s.execute(delete(ConsoleSession).where(ConsoleSession.account_id == row.id))
        await self._ended(row.id)
        return True

    async def _reserve(self, keys: tuple[str, ...], now: datetime) -> list[int]:
        """Count and reserve one attempt per key in ONE locked transaction; raise when over the limit."""
        async with self._reserving, self.db.transaction() as s:
            if self.db.dialect == "postgresql":  # serialise attempts per key across every process
                for key in sorted(keys):
                    await s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})
            for key in keys:
                times = list(
                    await s.scalars(
                        select(LoginFailure.at)
                        .where(LoginFailure.key == key, LoginFailure.at > now - FAILURE_WINDOW)
                        .order_by(LoginFailure.at)
                    )
                )
                if len(times) >= MAX_FAILURES:  # wait until enough of them leave the window
                    free_at = times[len(times) - MAX_FAILURES] + FAILURE_WINDOW
                    minutes = max(1, math.ceil((free_at - now).total_seconds() / 60))
                    raise LoginThrottled(key, minutes)
            rows = [LoginFailure(key=key, at=now) for key in keys]
            s.add_all(rows)
            await s.flush()
            return [r.id for r in rows]

    async def login(self, username: str, password: str, address: str) -> Session | None:
        """A new session for the right password; None otherwise. Raises LoginThrottled.

        The attempt is counted as a failure before the password is checked, and taken back
        only when it was right: concurrency cannot slip past the limit.
        """
        now = self.clock.now()
        keys = (f"user:{username.lower()[:150]}", f"addr:{address[:150]}")
        if _waiting >= MAX_WAITING_HASHES:  # flooded: refuse before counting it against anyone
            raise LoginThrottled("busy", 1)
        reserved = await self._reserve(keys, now)
        async with self.db.reading() as s:
            row = await s.scalar(
                select(StaffAccount).where(StaffAccount.username == username, StaffAccount.active.is_(True))
            )
        ok = await _off_loop(_verify, row.password_hash if row else _DUMMY_HASH, password)
        if not ok or row is None:
            return None  # the reservation stays: it was a failure
        rehashed = None
        if _hasher.check_needs_rehash(row.password_hash):
            rehashed = await _off_loop(_hasher.hash, password)
        async with self.db.transaction() as s:
            if rehashed is not None:
                stored = await s.get(StaffAccount, row.id)
                if stored is not None:
                    stored.password_hash = rehashed
            await s.execute(delete(LoginFailure).where(LoginFailure.id.in_(reserved)))
            await s.execute(delete(LoginFailure).where(LoginFailure.key == keys[0]))
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            expires = now + SESSION_TTL
            s.add(
                ConsoleSession(
                    token_hash=_digest(token), account_id=row.id, csrf_token=csrf, created_at=now, expires_at=expires
                )
            )
            return Session(token, csrf, _account(row), expires)

    async def session(self, token: str | None) -> Session | None:
        """The live session for a cookie token, or None."""
        if not token or len(token) > 200:
            return None
        async with self.db.reading() as s:
            found = await s.execute(
                select(ConsoleSession, StaffAccount)
                .join(StaffAccount, StaffAccount.id == ConsoleSession.account_id)
                .where(ConsoleSession.token_hash == _digest(token), StaffAccount.active.is_(True))
            )
            row = found.first()
        if row is None or row[0].expires_at <= self.clock.now():
            return None
        return Session(token, row[0].csrf_token, _account(row[1]), row[0].expires_at)

    async def logout(self, token: str) -> None:
        async with self.db.transaction() as s:
            ended = await s.scalar(select(ConsoleSession.account_id).where(ConsoleSession.token_hash == _digest(token)))
            await s.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == _digest(token)))
        if ended is not None:
            await self._ended(ended)

    async def logout_everywhere(self, account_id: int) -> int:
        """End every session of an account (all browsers, all open sockets); returns how many."""
        async with self.db.transaction() as s:
            result = await s.execute(delete(ConsoleSession).where(ConsoleSession.account_id == account_id))
        await self._ended(account_id)
        return int(getattr(result, "rowcount", 0) or 0)
