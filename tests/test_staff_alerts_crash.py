"""A handoff's staff alert is queued in the handoff's own transaction (bot/usecases/handoff.py
``hand_to_staff``, inside the engine turn's unit of work): the alert row exists whenever the
handoff does.

- A real ``chatbook``-like process hands a chat over and is killed with SIGKILL right after the
  turn committed, before anything else runs (where the console event, which used to queue the
  alert, would be published): the handoff is there and so is its alert, which a fresh process
  then delivers to the staff group through python-telegram-bot's real client and the local fake
  Bot API.
- A turn that fails after the handoff was written keeps neither (the customer is not left in a
  handoff staff never heard of, and staff are never told of one that did not happen).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.bootstrap import Services
from core.models import Conversation, ConversationMode, OutboxMessage, OutboxStatus
from core.staff_alerts import KIND
from tests.channels.fake_telegram import FakeTelegram
from tests.helpers import shows
from tests.support.collecting import CollectingChannel
from tests.test_staff_alerts import STAFF_CHAT, shop  # noqa: F401  # the fixture, shared

ROOT = Path(__file__).resolve().parent.parent

# The process that dies: the demo config with pawspa's staff alerts (as tests/test_staff_alerts.py
# builds it), the real engine; the console event bus SIGKILLs the process the moment the turn has
# committed and the engine publishes the escalation.
WORKER = """
import asyncio, os, signal, sys
sys.path.insert(0, sys.argv[1])
from bot.bootstrap import bootstrap
from core.clock import FixedClock
from core.config import load_config
from tests.conftest import CONFIG_PATH, NOW
from tests.support.collecting import CollectingChannel
from tests.test_staff_alerts import alerting


async def main() -> None:
    config = alerting(load_config(CONFIG_PATH, environ={}), sys.argv[3])
    svc = await bootstrap(config, clock=FixedClock(NOW), database_url=sys.argv[2], migrate=False, sync=False)

    async def die(event: dict) -> None:
        if event.get("type") == "escalation":
            os.kill(os.getpid(), signal.SIGKILL)

    svc.engine.events.publish = die
    print("ready", flush=True)
    await CollectingChannel(svc.engine, "pawspa", user="crash").push("转人工，我要找店员")
    print("survived", flush=True)


asyncio.run(main())
"""


async def _state(svc: Services) -> tuple[list[Conversation], list[OutboxMessage]]:
    async with svc.db.reading() as s:
        handed = list(await s.scalars(select(Conversation).where(Conversation.mode != ConversationMode.BOT)))
        alerts = list(await s.scalars(select(OutboxMessage).where(OutboxMessage.kind == KIND)))
    return handed, alerts


async def test_a_crash_right_after_the_handoff_commits_keeps_its_alert(
    shop: tuple[Services, FakeTelegram],  # noqa: F811  # the fixture imported above
    db_url: str,
) -> None:
    svc, fake = shop
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WORKER, str(ROOT), db_url, fake.url,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert b"ready" in out and b"survived" not in out  # it died inside the turn's aftermath

    [conversation], [alert] = await _state(svc)
    assert conversation.mode == ConversationMode.HANDOFF
    assert (alert.channel, alert.external_id, alert.status) == ("telegram", str(STAFF_CHAT), OutboxStatus.PENDING)
    assert alert.body["alert"] == {"type": "handoff", "conversation": conversation.id}

    assert await svc.delivery.tick() >= 1  # another process picks it up, as after a restart
    [sent] = fake.sent_to(STAFF_CHAT)
    assert shows("staff_alert.handoff", sent.params["text"])


async def test_a_turn_that_fails_after_the_handoff_keeps_neither(
    shop: tuple[Services, FakeTelegram],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    svc, fake = shop
    chat = CollectingChannel(svc.engine, "pawspa", user="fails")
    await chat.push("你好")
    store = svc.engine.store
    finish = store.finish_turn

    async def broken(*args: object, **kwargs: object) -> list[int]:
        await finish(*args, **kwargs)  # type: ignore[arg-type]  # passed through unchanged
        raise OSError("disk full")  # the turn's last write fails: its unit of work rolls back

    monkeypatch.setattr(store, "finish_turn", broken)
    with pytest.raises(OSError):
        await chat.push("转人工")
    monkeypatch.undo()
    handed, alerts = await _state(svc)
    assert handed == [] and alerts == []

    await chat.push("转人工")  # the customer asks again: now both are kept
    handed, alerts = await _state(svc)
    assert len(handed) == 1 and len(alerts) == 1
    assert fake.sent_to(STAFF_CHAT) == []  # not sent before the delivery loop runs
