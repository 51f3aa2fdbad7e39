"""A delivery worker killed with SIGKILL mid-send loses nothing, and duplicates at most the one in flight.

The worker is a real process (tests/crash_worker.py) sending through HTTP to a receiver in this
process, which records every message it gets and stalls on the Nth request, so the worker is
killed while that request is in flight: the receiver has the message, the worker never learns
it. That is the one window the outbox cannot close (sent, not yet marked sent).

Leases: the dead worker's claimed rows are leased for core.outbox.LEASE (60 s) on its clock.
The restarted workers run on a FixedClock placed 30 s and then 61 s after the kill instead of
sleeping (Delivery.tick takes no lease argument; the lease is measured on the injected clock).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import pytest
from aiohttp import web
from sqlalchemy import select

from bot.bootstrap import Services, bootstrap
from core.clock import FixedClock
from core.config import AppConfig
from core.messages import OutgoingMessage
from core.models import OutboxMessage, OutboxStatus
from core.outbox import LEASE, enqueue
from tests.conftest import NOW

WORKER = Path(__file__).resolve().parent / "crash_worker.py"
MESSAGES = 30
STALL_AT = 10  # the 10th request hangs: the worker is killed while it is in flight
CLAIM = 4  # rows per tick: at the kill some rows are sent, some leased, the rest never claimed
WAIT = 20.0  # bound on every wait; none is a fixed sleep


@dataclass
class Receiver:
    """The fake channel's network: records each message it receives, hangs on request ``stall_at``."""

    stall_at: int
    received: list[str] = field(default_factory=list)
    stalled: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append(body["text"])
        number = len(self.received)
        if number == self.stall_at:
            self.stalled.set()
            await self.release.wait()  # until the test ends: the sender never gets its answer
        return web.json_response({"id": f"r{number}"})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver(stall_at=STALL_AT)
    app = web.Application()
    app.router.add_post("/send", recv.handle)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    recv.url = f"http://{host}:{port}/send"
    try:
        yield recv
    finally:
        recv.release.set()
        await runner.cleanup()


def _output(log: Path) -> str:
    return log.read_text(errors="replace")


def _append(log: Path) -> BinaryIO:
    return log.open("ab")


async def _start_worker(
    url: str, endpoint: str, now: datetime, log: Path, *, until_idle: bool
) -> asyncio.subprocess.Process:
    args = [str(WORKER), "--database-url", url, "--endpoint", endpoint, "--now", now.isoformat()]
    args += ["--limit", str(CLAIM), *(["--until-idle"] if until_idle else [])]
    with _append(log) as out:  # the child keeps its own copy of the descriptor
        return await asyncio.create_subprocess_exec(sys.executable, *args, stdout=out, stderr=out)


async def _run_until_idle(url: str, endpoint: str, now: datetime, log: Path) -> None:
    proc = await _start_worker(url, endpoint, now, log, until_idle=True)
    try:
        code = await asyncio.wait_for(proc.wait(), WAIT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"worker did not finish:\n{_output(log)}") from None
    assert code == 0, _output(log)


async def _statuses(services: Services) -> dict[str, OutboxStatus]:
    async with services.db.reading() as s:
        rows = await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return {OutgoingMessage.from_json(r.body).text: r.status for r in rows}


async def test_sigkill_mid_send_loses_nothing_and_duplicates_only_the_message_in_flight(
    demo_config: AppConfig, db_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    services = await bootstrap(demo_config, clock=FixedClock(NOW), database_url=db_url, senders_override={})
    try:
        texts = [f"message {i:02d}" for i in range(MESSAGES)]
        async with services.db.transaction() as s:  # committed: from here on the outbox owns them
            for i, text in enumerate(texts):
                enqueue(
                    s,
                    shop_id="pawspa",
                    channel="fake",
                    external_id=f"customer-{i}",
                    conversation_id=None,
                    message=OutgoingMessage(text),
                    now=NOW,
                )
        log = tmp_path / "workers.log"

        # 1. A worker delivers the first messages, then hangs on one send and is killed mid-flight.
        first = await _start_worker(db_url, receiver.url, NOW, log, until_idle=False)
        try:
            await asyncio.wait_for(receiver.stalled.wait(), WAIT)
        except TimeoutError:
            raise AssertionError(f"the worker never reached the stalled send:\n{_output(log)}") from None
        finally:
            os.kill(first.pid, signal.SIGKILL)
            await asyncio.wait_for(first.wait(), WAIT)
        assert first.returncode == -signal.SIGKILL
        in_flight = texts[STALL_AT - 1]
        assert receiver.received == texts[:STALL_AT]  # in order; the last one has no answer yet
        at_kill = await _statuses(services)
        leased = [t for t in texts if at_kill[t] == OutboxStatus.SENDING]
        assert in_flight in leased and len(leased) > 1  # it claimed more than it managed to send
        assert {at_kill[t] for t in texts[: STALL_AT - 1]} == {OutboxStatus.SENT}
        assert {at_kill[t] for t in texts if t not in leased and t not in texts[:STALL_AT]} == {OutboxStatus.PENDING}

        # 2. Restarted within the lease (30 s later): everything unclaimed goes out, the dead
        #    worker's leased rows wait (another live process may still be sending them).
        await _run_until_idle(db_url, receiver.url, NOW + LEASE / 2, log)
        after_restart = await _statuses(services)
        assert {t for t in texts if after_restart[t] != OutboxStatus.SENT} == set(leased)
        assert Counter(receiver.received) == Counter(t for t in texts if t not in leased or t == in_flight)

        # 3. Once the lease has expired (61 s after the claim) the leased rows are sent too.
        await _run_until_idle(db_url, receiver.url, NOW + LEASE + timedelta(seconds=1), log)
        final = await _statuses(services)
        assert set(final.values()) == {OutboxStatus.SENT}, final
        counts = Counter(receiver.received)
        assert set(counts) == set(texts)  # nothing lost
        assert {t: n for t, n in counts.items() if n > 1} == {in_flight: 2}  # one duplicate: the one in flight
        assert len(receiver.received) == MESSAGES + 1
    finally:
        await services.close()
