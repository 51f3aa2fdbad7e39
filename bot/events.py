"""Live events for staff consoles: a new escalation, a customer message, a take-over, a reply.

Within one process an event goes straight to the subscribed consoles. With PostgreSQL it is
sent with NOTIFY and every server process LISTENs, so a reply or take-over made on one process
reaches consoles connected to another (the payload is small: type, shop, conversation id;
consoles fetch the details they are allowed to see). SQLite means one process: local only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from core.db import Database

log = logging.getLogger(__name__)
CHANNEL = "chatbook_console"
WAKE_CHANNEL = "chatbook_wake"  # new outbox rows (bot/engine/store.py NOTIFYs in the turn's transaction)
QUEUE_SIZE = 256


class EventBus:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._listener: Any = None
        self._stopped = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._wakers: list[Callable[[], None]] = []

    def on_wake(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when another process (PostgreSQL NOTIFY) wrote outbox rows."""
        if callback not in self._wakers:
            self._wakers.append(callback)

    @property
    def shared(self) -> bool:
        return self.db.dialect == "postgresql"

    async def start(self) -> None:
        if not self.shared or self._listener is not None:
            return
        import asyncpg

        dsn = self.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._listener = await asyncpg.connect(dsn)
        await self._listener.add_listener(CHANNEL, self._on_notify)
        await self._listener.add_listener(WAKE_CHANNEL, self._on_wake)
        self._listener.add_termination_listener(self._on_lost)

    def _on_lost(self, _conn: Any) -> None:
        """The LISTEN connection dropped (database restart): reconnect, and tell consoles to resync."""
        self._listener = None
        if not self._stopped:
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.5
        while self._listener is None and not self._stopped:
            await asyncio.sleep(delay)
            try:
                await self.start()
            except Exception as exc:  # the database may still be down: keep trying, slowly
                log.warning("console events: LISTEN reconnect failed (%s)", type(exc).__name__)
                delay = min(delay * 2, 30.0)
        if self._listener is not None:
            self._deliver({"type": "resync"})

    async def stop(self) -> None:
        self._stopped = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        if self._listener is not None:
            self._listener.remove_termination_listener(self._on_lost)
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    async def publish(self, event: dict[str, Any]) -> None:
        if self.shared and self._listener is not None:
            async with self.db.engine.begin() as conn:
                await conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": json.dumps(event)})
            return  # our own LISTEN delivers it locally too
        self._deliver(event)

    async def publish_in(self, conn: Any, event: dict[str, Any]) -> bool:
        """Publish ``event`` as part of the caller's transaction on ``conn`` (an AsyncConnection):
        with PostgreSQL a NOTIFY in that transaction, delivered when it commits (never when it
        rolls back), instead of a transaction of its own after it. False when there is nothing
        shared to notify (SQLite, no LISTEN yet): call ``publish`` after the commit instead."""
        if not (self.shared and self._listener is not None):
            return False
        await conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": json.dumps(event)})
        return True

    def _on_wake(self, _conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        for callback in self._wakers:
            callback()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._deliver(json.loads(payload))
        except ValueError:
            log.warning("ignoring a malformed console event")

    def _deliver(self, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            if queue.full():  # a console this far behind reloads everything instead
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait({"type": "resync"})
                continue
            queue.put_nowait(event)
