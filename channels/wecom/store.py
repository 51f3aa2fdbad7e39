"""What the WeCom channel keeps in the database, shared by every server process.

- ``wecom_cursors``: where ``kf/sync_msg`` stopped for each account. It is moved only AFTER the
  fetched messages are in the inbox, and only from the cursor the fetch started at (compare and
  set), so a crash re-reads rather than skips, and the re-read messages are dropped by the inbox's
  dedupe key (``wecom:<msgid>``).
- ``wecom_sessions``: WeCom's reply window per customer (48 hours and 5 messages after their last
  message), the single-use welcome code of ``enter_session`` (20 s), and whether the chat is with
  the API (state 1) or was handed to a WeCom servicer (2 pool / 3 servicer).
- The conversation's mode (bot / handoff / staff) is read from ``conversations``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from core.db import Database
from core.models import Conversation, ConversationMode, WeComCursor, WeComSession

CHANNEL = "wecom"
WINDOW = timedelta(hours=48)
WINDOW_MESSAGES = 5
T = TypeVar("T")


class WeComStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def _write(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """One transaction; a lost race to insert the same row (PostgreSQL) is retried once."""
        for attempt in range(2):
            try:
                async with self.db.transaction() as s:
                    return await work(s)
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ cursor

    async def cursor(self, shop_id: str, open_kfid: str) -> str:
        async with self.db.reading() as s:
            row = await s.get(WeComCursor, (shop_id, open_kfid))
            return row.cursor if row is not None else ""

    async def advance(self, shop_id: str, open_kfid: str, old: str, new: str) -> bool:
        """Move the cursor from ``old`` to ``new``; False when another process moved it first."""

        async def work(s: AsyncSession) -> bool:
            row = await s.get(WeComCursor, (shop_id, open_kfid), with_for_update=True)
            if row is None:
                if old:
                    return False
                s.add(WeComCursor(shop_id=shop_id, open_kfid=open_kfid, cursor=new, updated_at=self.clock.now()))
                await s.flush()
                return True
            if row.cursor != old:
                return False
            row.cursor, row.updated_at = new, self.clock.now()
            return True

        return await self._write(work)

    # ------------------------------------------------------------------ sessions

    async def _session(self, s: AsyncSession, shop_id: str, open_kfid: str, user: str) -> WeComSession:
        row = await s.get(WeComSession, (shop_id, open_kfid, user), with_for_update=True)
        if row is None:
            row = WeComSession(
                shop_id=shop_id,
                open_kfid=open_kfid,
                external_userid=user,
                last_inbound_at=None,
                sent_since_inbound=0,
                servicer_state=1,
                updated_at=self.clock.now(),
            )
            s.add(row)
            await s.flush()
        return row

    async def customer_wrote(self, shop_id: str, open_kfid: str, user: str, at: datetime, msgid: str) -> None:
        """A new customer message opens a new window; reading it (or an older one) again changes nothing."""

        async def work(s: AsyncSession) -> None:
            row = await self._session(s, shop_id, open_kfid, user)
            if row.last_inbound_at is None or (at >= row.last_inbound_at and msgid != row.last_msgid):
                row.last_inbound_at, row.last_msgid = at, msgid
                row.sent_since_inbound, row.updated_at = 0, self.clock.now()

        await self._write(work)

    async def entered(self, shop_id: str, open_kfid: str, user: str, code: str, until: datetime) -> None:
        async def work(s: AsyncSession) -> None:
            row = await self._session(s, shop_id, open_kfid, user)
            row.welcome_code, row.welcome_until, row.updated_at = code, until, self.clock.now()

        await self._write(work)

    async def take_welcome(self, shop_id: str, open_kfid: str, user: str) -> str | None:
        """The unexpired welcome code, consumed (it works once)."""

        async def work(s: AsyncSession) -> str | None:
            row = await s.get(WeComSession, (shop_id, open_kfid, user), with_for_update=True)
            if row is None or not row.welcome_code or row.welcome_until is None:
                return None
            code, fresh = row.welcome_code, self.clock.now() < row.welcome_until
            row.welcome_code, row.welcome_until = None, None
            return code if fresh else None

        return await self._write(work)

    async def reserve(self, shop_id: str, open_kfid: str, user: str) -> str | None:
        """Count one message against the window; the reason when none may be sent."""

        async def work(s: AsyncSession) -> str | None:
            row = await self._session(s, shop_id, open_kfid, user)
            now = self.clock.now()
            if row.last_inbound_at is None or now - row.last_inbound_at > WINDOW:
                return "window closed (48 hours since the customer's last message)"
            if row.sent_since_inbound >= WINDOW_MESSAGES:
                return f"window closed ({WINDOW_MESSAGES} messages sent since the customer's last message)"
            row.sent_since_inbound += 1
            row.updated_at = now
            return None

        return await self._write(work)

    async def release(self, shop_id: str, open_kfid: str, user: str) -> None:
        """A reserved message did not leave: it does not count."""

        async def work(s: AsyncSession) -> None:
            row = await self._session(s, shop_id, open_kfid, user)
            row.sent_since_inbound = max(row.sent_since_inbound - 1, 0)

        await self._write(work)

    async def exhaust(self, shop_id: str, open_kfid: str, user: str) -> None:
        """WeCom said the window is used up: believe it until the customer writes again."""

        async def work(s: AsyncSession) -> None:
            row = await self._session(s, shop_id, open_kfid, user)
            row.sent_since_inbound = WINDOW_MESSAGES

        await self._write(work)

    async def sent_count(self, shop_id: str, open_kfid: str, user: str) -> int:
        async with self.db.reading() as s:
            row = await s.get(WeComSession, (shop_id, open_kfid, user))
            return row.sent_since_inbound if row is not None else 0

    async def servicer_state(self, shop_id: str, open_kfid: str, user: str) -> int:
        async with self.db.reading() as s:
            row = await s.get(WeComSession, (shop_id, open_kfid, user))
            return row.servicer_state if row is not None else 1

    async def set_servicer_state(self, shop_id: str, open_kfid: str, user: str, state: int) -> None:
        async def work(s: AsyncSession) -> None:
            row = await self._session(s, shop_id, open_kfid, user)
            row.servicer_state, row.updated_at = state, self.clock.now()

        await self._write(work)

    # ------------------------------------------------------------------ conversation

    async def conversation_mode(self, shop_id: str, user: str) -> tuple[ConversationMode, str | None] | None:
        async with self.db.reading() as s:
            row = (
                await s.execute(
                    select(Conversation.mode, Conversation.handoff_route).where(
                        Conversation.shop_id == shop_id,
                        Conversation.channel == CHANNEL,
                        Conversation.external_id == user,
                    )
                )
            ).first()
        return (row[0], row[1]) if row is not None else None
