"""Console accounts, logins and sessions.

Passwords are hashed with Argon2id (argon2-cffi: the current OWASP recommendation, with
rehash-on-login when its parameters move on). A session is an unguessable cookie token of
which only the SHA-256 is stored, with its own CSRF token; a new one is made at every login
(rotation), and they expire. Failed logins are counted per username and per address in the
database (so several server processes share the count); past the limit, logins are refused
for a while without even checking the password.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select

from core.clock import Clock
from core.db import Database
from core.models import ConsoleSession, LoginFailure, StaffAccount

SESSION_TTL = timedelta(hours=12)
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES = 10  # per username, and per address, within the window
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password")  # equal work for unknown usernames


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
    pass


def _account(row: StaffAccount) -> Account:
    return Account(row.id, row.username, row.display_name or row.username, row.role, tuple(row.shops), row.language)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class StaffAccounts:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

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
        """Create an account (or reset the password and shops of an existing one)."""
        if role not in ("staff", "admin"):
            raise ValueError("role must be staff or admin")
        if len(password) < 8:
            raise ValueError("passwords need at least 8 characters")
        async with self.db.transaction() as s:
            row = await s.scalar(select(StaffAccount).where(StaffAccount.username == username))
            if row is None:
                row = StaffAccount(username=username, created_at=self.clock.now())
                s.add(row)
            row.password_hash = _hasher.hash(password)
            row.role, row.shops, row.display_name, row.language, row.active = role, shops, display_name, language, True
            await s.flush()
            return _account(row)

    async def login(self, username: str, password: str, address: str) -> Session | None:
        """A new session for the right password; None otherwise. Raises LoginThrottled."""
        now = self.clock.now()
        keys = (f"user:{username.lower()}", f"addr:{address}")
        async with self.db.reading() as s:
            for key in keys:
                failures = await s.scalar(
                    select(func.count()).where(LoginFailure.key == key, LoginFailure.at > now - FAILURE_WINDOW)
                )
                if (failures or 0) >= MAX_FAILURES:
                    raise LoginThrottled(key)
            row = await s.scalar(
                select(StaffAccount).where(StaffAccount.username == username, StaffAccount.active.is_(True))
            )
        try:
            _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
            ok = row is not None
        except (VerificationError, InvalidHashError):
            ok = False
        async with self.db.transaction() as s:
            if not ok or row is None:
                for key in keys:
                    s.add(LoginFailure(key=key, at=now))
                return None
            if _hasher.check_needs_rehash(row.password_hash):
                stored = await s.get(StaffAccount, row.id)
                if stored is not None:
                    stored.password_hash = _hasher.hash(password)
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
        if not token:
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
            await s.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == _digest(token)))
