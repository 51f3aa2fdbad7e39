"""A delivery worker killed with SIGKILL mid-send loses nothing, and duplicates at most the batch in flight.

The worker is a real process (tests/crash_worker.py) sending through HTTP to a receiver in this
process, which records every message it gets and stalls on the Nth request, so the worker is
killed while a batch is in flight: the receiver has some of its messages, the worker never
settled them. That is the one window the outbox cannot close (sent, not yet marked sent): a
batch is settled in one commit, so at most that batch's rows are sent twice.

No lease wait: the restarted worker sees that the dead one's pid is gone (its worker row names
host and pid) and takes its claimed rows over at once, on the same clock.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import pytest
from aiohttp import web
from sqlalchemy import select

from bot.bootstrap import Services, bootstrap
from core.clock import FixedClock
from core.config import AppConfig
from core.messages import OutgoingMessage
from core.models import OutboxMessage, OutboxStatus, Worker
from core.outbox import enqueue
from tests.conftest import NOW

WORKER = Path(__file__).resolve().parent / "crash_worker.py"
MESSAGES = 30
STALL_AT = 10  # the 10th request hangs: the worker is killed while its batch is in flight
CLAIM = 4  # rows per tick: at the kill some rows are sent, some claimed, the rest never claimed
WAIT = 60.0  # bound on every wait (a loaded CI machine starts Python slowly); none is a fixed sleep


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
        if number >= self.stall_at and not self.release.is_set() and not self.stalled.is_set():
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
    url: str, endpoint: str, now: datetime, log: Path, *, until_idle: bool, go_on_stdin: bool = False
) -> asyncio.subprocess.Process:
    args = [str(WORKER), "--database-url", url, "--endpoint", endpoint, "--now", now.isoformat()]
    args += ["--limit", str(CLAIM), *(["--until-idle"] if until_idle else [])]
    args += ["--go-on-stdin"] if go_on_stdin else []
    stdin = asyncio.subprocess.PIPE if go_on_stdin else asyncio.subprocess.DEVNULL
    with _append(log) as out:  # the child keeps its own copy of the descriptor
        return await asyncio.create_subprocess_exec(sys.executable, *args, stdin=stdin, stdout=out, stderr=out)


async def _go_until_idle(proc: asyncio.subprocess.Process, log: Path) -> None:
    """Start a worker spawned with --go-on-stdin (its imports done) and wait until it ran out of work."""
    assert proc.stdin is not None
    try:
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        code = await asyncio.wait_for(proc.wait(), WAIT)
    except (TimeoutError, ConnectionError):
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise AssertionError(f"worker did not finish:\n{_output(log)}") from None
    assert code == 0, _output(log)


async def _never_started(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None and proc.stdin is not None:
        proc.stdin.close()  # end of input: it exits without opening the database
        try:
            await asyncio.wait_for(proc.wait(), WAIT)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _statuses(services: Services) -> dict[str, OutboxStatus]:
    async with services.db.reading() as s:
        rows = await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return {OutgoingMessage.from_json(r.body).text: r.status for r in rows}


async def test_sigkill_mid_send_loses_nothing_and_duplicates_only_the_batch_in_flight(
    demo_config: AppConfig, db_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    services = await bootstrap(demo_config, clock=FixedClock(NOW), database_url=db_url, senders_override={})
    second: asyncio.subprocess.Process | None = None
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
        # the restart, spawned now with its imports done: it opens the database only after the kill
        second = await _start_worker(db_url, receiver.url, NOW, log, until_idle=True, go_on_stdin=True)

        # 1. A worker delivers the first batches, then hangs on one send and is killed mid-flight.
        first = await _start_worker(db_url, receiver.url, NOW, log, until_idle=False)
        try:
            await asyncio.wait_for(receiver.stalled.wait(), WAIT)
        except TimeoutError:
            raise AssertionError(f"the worker never reached the stalled send:\n{_output(log)}") from None
        finally:
            os.kill(first.pid, signal.SIGKILL)
            await asyncio.wait_for(first.wait(), WAIT)
        assert first.returncode == -signal.SIGKILL
        at_kill = await _statuses(services)
        in_flight = {t for t in texts if at_kill[t] == OutboxStatus.SENDING}
        assert 1 <= len(in_flight) <= CLAIM  # the batch being sent: claimed, never settled
        assert set(receiver.received) - {t for t in texts if at_kill[t] == OutboxStatus.SENT} <= in_flight
        assert any(at_kill[t] == OutboxStatus.PENDING for t in texts)  # never claimed

        # 2. Restarted at once, on the same clock (no lease to wait for): the dead worker's pid is
        #    gone, so its claimed rows are taken over with everything else.
        await _go_until_idle(second, log)
        final = await _statuses(services)
        assert set(final.values()) == {OutboxStatus.SENT}, final
        counts = Counter(receiver.received)
        assert set(counts) == set(texts)  # nothing lost
        duplicated = {t for t, n in counts.items() if n > 1}
        assert duplicated <= in_flight and max(counts.values()) <= 2  # only the batch in flight, at most twice
        async with services.db.reading() as s:
            assert list(await s.scalars(select(Worker.id))) == []  # the dead worker is forgotten, the new one retired
    finally:
        if second is not None:
            await _never_started(second)
        await services.close()
