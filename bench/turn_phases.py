"""Where a WeChat FAQ message's CPU goes, in-process on SQLite (prints figures, asserts nothing).

The production path of a WeChat passive reply without HTTP: ``Inbox.accept(wait=True)`` (the
group commit that stores the message), the worker's ``Engine.process`` (one unit of work: the
customer, the conversation held, the dialog policy, transcript, outbox rows, inbox row done),
``Inbox.result`` and ``Inbox.delivered`` (the outbox rows marked sent inline, in the next group
commit). Messages one after another, each from a new openid (first contact, as in
channels_throughput.py) or from 20 known ones. Each phase is timed as main-thread CPU while its
coroutine actually runs (time spent suspended, e.g. waiting for the write lock, is not counted),
so the figures add up and hold under load from other processes better than wall time.

    .venv/bin/python bench/turn_phases.py [--messages 300] [--known]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import itertools
import tempfile
import time
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from typing import Any

from _common import machine
from channels_throughput import QUESTION, write_config
from sqlalchemy import event

import bot.delivery
import bot.engine.engine
import bot.engine.policy
import bot.engine.store
import bot.inbox
import core.customers
from bot.bootstrap import bootstrap
from core.config import load_config
from core.messages import IncomingMessage

CPU: collections.defaultdict[str, float] = collections.defaultdict(float)
CALLS: collections.Counter[str] = collections.Counter()


class Timed:
    """Awaits a coroutine, adding the thread CPU of each of its steps to ``CPU[label]``."""

    def __init__(self, coro: Coroutine[Any, Any, Any], label: str) -> None:
        self.coro, self.label = coro, label

    def __await__(self) -> Generator[Any, Any, Any]:
        value: Any = None
        error: BaseException | None = None
        CALLS[self.label] += 1
        while True:
            started = time.thread_time()
            try:
                step = self.coro.throw(error) if error is not None else self.coro.send(value)
            except StopIteration as stop:
                CPU[self.label] += time.thread_time() - started
                return stop.value
            except BaseException:
                CPU[self.label] += time.thread_time() - started
                raise
            CPU[self.label] += time.thread_time() - started
            try:
                value, error = (yield step), None
            except BaseException as exc:  # thrown in (a cancellation): pass it on
                value, error = None, exc


def timed(owner: Any, name: str, label: str) -> None:
    original: Callable[..., Coroutine[Any, Any, Any]] = getattr(owner, name)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await Timed(original(*args, **kwargs), label)

    setattr(owner, name, wrapper)


PHASES = [
    (bot.inbox.Inbox, "_commit", "inbox group commit (accept, delivered)"),
    (bot.engine.engine.Engine, "process", "engine.process"),
    (bot.engine.engine.Engine, "_turn", "  the turn (in its unit of work)"),
    (core.customers.CustomerDirectory, "identify", "    customer identified"),
    (bot.engine.store.ConversationStore, "hold", "    conversation held and loaded"),
    (bot.engine.engine.Engine, "_respond", "    dialog policy (bot/engine/policy.py)"),
    (bot.engine.store.ConversationStore, "finish_turn", "    finish_turn (transcript, state, outbox)"),
    (bot.delivery.Delivery, "lane", "delivery lanes"),
    (bot.inbox.Inbox, "sweep", "inbox sweeps"),
]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--known", action="store_true", help="20 returning customers instead of new ones")
    args = parser.parse_args()
    for owner, name, label in PHASES:
        timed(owner, name, label)
    print(f"WeChat FAQ message phases, in-process, SQLite ({machine()})")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        config = load_config(write_config(directory, "http://127.0.0.1:9", "http://127.0.0.1:9"), environ={})
        services = await bootstrap(config, database_url=f"sqlite+aiosqlite:///{directory / 'turns.db'}")
        await services.start_workers()
        inbox = services.inbox
        assert inbox is not None
        ids = itertools.count()

        async def one() -> None:
            k = next(ids)
            user = f"oPhase{k % 20 if args.known else k:06d}"
            msg = IncomingMessage("clearsight", "wechat", user, f"wx:{k}", text=QUESTION)
            await inbox.accept(msg, wait=True)
            answer = await inbox.result(msg, 5.0)
            assert answer is not None and answer.replies
            await inbox.delivered(answer)

        for _ in range(30):  # warm-up: FAQ loaded, statements compiled
            await one()
        statements = itertools.count()
        event.listen(services.db.engine.sync_engine, "before_cursor_execute", lambda *_: next(statements))
        CPU.clear()
        CALLS.clear()
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        for _ in range(args.messages):
            await one()
        cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
        await services.stop_workers(grace=5)
        await services.close()
    n = args.messages
    who = "20 known customers" if args.known else "a new customer each"
    print(f"  {n} messages one after another ({who}): {n / wall:,.0f}/s, main-thread CPU {1000 * cpu / n:.2f} ms each")
    print(f"  SQL statements per message (write engine, BEGIN/SAVEPOINT not counted): {next(statements) / n:.1f}")
    for _, _, label in PHASES:
        print(f"  {label:44s} {1000 * CPU[label] / n:6.2f} ms  ({CALLS[label]} calls)")


if __name__ == "__main__":
    asyncio.run(main())
