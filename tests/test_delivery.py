"""The outbox and the delivery loop: stored first, sent once, retried, rerouted, flagged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.bootstrap import Services, bootstrap
from channels.base import ChannelSender, DeliveryError
from core.clock import FixedClock
from core.config import AppConfig
from core.messages import OutgoingMessage
from core.models import OutboxMessage, OutboxStatus
from tests.support.collecting import CollectingChannel


@dataclass
class RecordingSender:
    """A real ChannelSender for tests: records sends, can be told to fail."""

    channel: str
    sent: list[tuple[str, str]] = field(default_factory=list)
    failures: list[DeliveryError] = field(default_factory=list)

    async def send(self, shop_id: str, external_id: str, message: OutgoingMessage) -> str | None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((external_id, message.text))
        return f"{self.channel}-{len(self.sent)}"


@pytest.fixture
async def wired(
    demo_config: AppConfig, clock: FixedClock, db_url: str
) -> AsyncIterator[tuple[Services, RecordingSender, RecordingSender]]:
    telegram, web = RecordingSender("telegram"), RecordingSender("web")
    services = await bootstrap(
        demo_config, clock=clock, database_url=db_url, senders_override={"telegram": telegram, "web": web}
    )
    yield services, telegram, web
    await services.close()


async def _conversation(services: Services, channel: str, user: str, shop: str = "pawspa") -> int:
    chat = CollectingChannel(services.engine, shop, user=user, channel=channel)
    await chat.push("你好")
    conv = await services.store.open(shop, channel, user, customer_id=0, language="zh")
    return conv.id


async def _row(services: Services, outbox_id: int) -> OutboxMessage:
    async with services.db.reading() as s:
        row = await s.get(OutboxMessage, outbox_id)
        assert row is not None
        return row


async def test_staff_reply_is_stored_then_sent(wired: tuple[Services, RecordingSender, RecordingSender]) -> None:
    services, telegram, _ = wired
    conv = await _conversation(services, "telegram", "42")
    outbox_id = await services.store.enqueue(conv, OutgoingMessage("您好，我是前台"), author="staff:lily")
    assert (await _row(services, outbox_id)).status == OutboxStatus.PENDING  # stored before any send
    assert await services.delivery.tick() == 1
    assert telegram.sent == [("42", "您好，我是前台")]
    row = await _row(services, outbox_id)
    assert row.status == OutboxStatus.SENT and row.provider_id == "telegram-1"
    assert await services.delivery.tick() == 0  # never twice


async def test_transient_failure_backs_off_then_delivers(
    wired: tuple[Services, RecordingSender, RecordingSender], clock: FixedClock
) -> None:
    services, telegram, _ = wired
    conv = await _conversation(services, "telegram", "42")
    telegram.failures = [DeliveryError("timeout"), DeliveryError("429", retry_after=30)]
    outbox_id = await services.store.enqueue(conv, OutgoingMessage("hi"), author="staff:lily")
    await services.delivery.tick()
    row = await _row(services, outbox_id)
    assert row.status == OutboxStatus.PENDING and row.error == "unreachable: timeout"  # an outage, not a 429
    assert row.next_attempt_at == clock.now() + timedelta(seconds=5)
    assert await services.delivery.tick() == 0  # not due yet
    clock.advance(timedelta(seconds=5))
    await services.delivery.tick()
    assert (await _row(services, outbox_id)).next_attempt_at == clock.now() + timedelta(seconds=30)  # retry_after
    clock.advance(timedelta(seconds=30))
    await services.delivery.tick()
    row = await _row(services, outbox_id)
    assert row.status == OutboxStatus.SENT and row.attempts == 3
    assert telegram.sent == [("42", "hi")]


async def test_permanent_failure_falls_back_to_another_channel(
    wired: tuple[Services, RecordingSender, RecordingSender],
) -> None:
    services, telegram, web = wired
    conv = await _conversation(services, "telegram", "42")
    customer = (await services.store.load(conv)).customer_id
    # The same person also chats on the widget (linked identity).
    async with services.db.transaction() as s:
        from core.models import ChannelIdentity

        s.add(
            ChannelIdentity(
                shop_id="pawspa",
                customer_id=customer,
                channel="web",
                external_id="w-1",
                created_at=services.clock.now(),
            )
        )
    telegram.failures = [DeliveryError("Forbidden: bot was blocked by the user", permanent=True)]
    outbox_id = await services.store.enqueue(conv, OutgoingMessage("明天见"), author="staff:lily")
    await services.delivery.tick()
    await services.delivery.tick()
    assert web.sent == [("w-1", "明天见")]
    row = await _row(services, outbox_id)
    assert row.status == OutboxStatus.FAILED and not row.needs_staff
    assert await services.outbox.needing_staff() == []


async def test_nothing_can_deliver_it_flags_staff(wired: tuple[Services, RecordingSender, RecordingSender]) -> None:
    services, telegram, _ = wired
    conv = await _conversation(services, "telegram", "42")
    telegram.failures = [DeliveryError("chat not found", permanent=True)]
    outbox_id = await services.store.enqueue(conv, OutgoingMessage("明天见"), author="staff:lily")
    await services.delivery.tick()
    flagged = await services.outbox.needing_staff("pawspa")
    assert [r.id for r in flagged] == [outbox_id]
    assert flagged[0].error == "chat not found"


async def test_a_crash_mid_send_is_retried_after_the_lease(
    wired: tuple[Services, RecordingSender, RecordingSender], clock: FixedClock
) -> None:
    services, telegram, _ = wired
    conv = await _conversation(services, "telegram", "42")
    outbox_id = await services.store.enqueue(conv, OutgoingMessage("hello"), author="staff:lily")
    claimed = await services.outbox.claim(["telegram"])  # a process claims it, then dies
    assert [c.id for c in claimed] == [outbox_id]
    assert await services.delivery.tick() == 0  # leased: nobody else takes it meanwhile
    clock.advance(timedelta(seconds=61))
    assert await services.delivery.tick() == 1
    assert telegram.sent == [("42", "hello")]


async def test_two_processes_send_each_message_once(
    wired: tuple[Services, RecordingSender, RecordingSender], demo_config: AppConfig, clock: FixedClock
) -> None:
    services, telegram, _ = wired
    conv = await _conversation(services, "telegram", "42")
    for i in range(40):
        await services.store.enqueue(conv, OutgoingMessage(f"m{i}"), author="staff:lily")
    url = services.db.url.render_as_string(hide_password=False)
    other_sender = RecordingSender("telegram")
    other = await bootstrap(
        demo_config, clock=clock, database_url=url, migrate=False, senders_override={"telegram": other_sender}
    )
    try:
        for _ in range(5):
            await asyncio.gather(services.delivery.tick(limit=7), other.delivery.tick(limit=7))
    finally:
        await other.close()
    texts = [t for _, t in telegram.sent + other_sender.sent]
    assert sorted(texts) == sorted(f"m{i}" for i in range(40))
    async with services.db.reading() as s:
        statuses = set(await s.scalars(select(OutboxMessage.status)))
    assert statuses == {OutboxStatus.SENT}


async def test_delivery_skips_channels_without_a_sender(
    wired: tuple[Services, RecordingSender, RecordingSender],
) -> None:
    services, _, _ = wired
    conv = await _conversation(services, "terminal", "me")
    outbox_id = await services.store.enqueue(conv, OutgoingMessage("hi"), author="staff:lily")
    assert await services.delivery.tick() == 0
    assert (await _row(services, outbox_id)).status == OutboxStatus.PENDING  # left for the terminal chat


def test_backoff_grows_and_caps() -> None:
    from bot.delivery import backoff

    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff(30) == timedelta(hours=1)
    assert backoff(3, retry_after=12.5) == timedelta(seconds=12.5)


async def test_a_slow_batch_is_not_sent_twice_when_its_lease_runs_out(
    wired: tuple[Services, RecordingSender, RecordingSender], demo_config: AppConfig, clock: FixedClock
) -> None:
    services, _, _ = wired
    conv = await _conversation(services, "telegram", "42")
    for i in range(50):
        await services.store.enqueue(conv, OutgoingMessage(f"m{i}"), author="staff:lily")
    received: list[str] = []
    url = services.db.url.render_as_string(hide_password=False)

    class Slow:
        """Each send takes 2 s of (fixed) clock; at the 31st the other process ticks."""

        channel = "telegram"

        def __init__(self, other: Services | None = None) -> None:
            self.other, self.count = other, 0

        async def send(self, shop_id: str, external_id: str, message: OutgoingMessage) -> str | None:
            self.count += 1
            clock.advance(timedelta(seconds=2))
            received.append(message.text)
            if self.other is not None and self.count == 31:  # past the 60 s lease of the first batch
                await self.other.delivery.tick(limit=50)
            return str(self.count)

    second = await bootstrap(
        demo_config, clock=clock, database_url=url, migrate=False, senders_override={"telegram": Slow()}
    )
    first = await bootstrap(
        demo_config, clock=clock, database_url=url, migrate=False, senders_override={"telegram": Slow(second)}
    )
    try:
        await first.delivery.tick(limit=50)
        await second.delivery.tick(limit=50)
    finally:
        await first.close()
        await second.close()
    assert sorted(received) == sorted(f"m{i}" for i in range(50))  # every message exactly once


async def test_a_reminder_rerouted_to_wechat_is_still_a_service_notice(
    demo_config: AppConfig, clock: FixedClock, db_url: str
) -> None:
    """Telegram refuses for good (blocked bot); the fallback row on WeChat keeps what the reminder
    is (reminder_kind, the notice's facts), so outside WeChat's 48-hour window it still reaches the
    customer as a template notice, not "window closed" and a call for staff."""
    from channels.base import ChannelContext
    from channels.wechat import WeChatSender
    from core.bookings import BookingRequest
    from core.models import ChannelIdentity
    from core.results import Actor, Booked
    from tests.channels.fake_wechat import FakeWeChatApi
    from tests.helpers import MON, at
    from tests.test_wechat_templates import NoEngine, with_templates

    api = await FakeWeChatApi().start()
    config = with_templates(demo_config, api.url)
    telegram = RecordingSender("telegram")
    wechat = WeChatSender(ChannelContext(config=config, engine=NoEngine(), clock=clock))
    senders: dict[str, ChannelSender] = {"telegram": telegram, "wechat": wechat}
    services = await bootstrap(config, clock=clock, database_url=db_url, senders_override=senders)
    try:
        await _conversation(services, "telegram", "42")
        customer = await services.customers.identify("pawspa", "telegram", "42")
        async with services.db.transaction() as s:
            s.add(
                ChannelIdentity(
                    shop_id="pawspa",
                    customer_id=customer.id,
                    channel="wechat",
                    external_id="oUser_0001",
                    created_at=clock.now(),
                )
            )
        booked = await services.bookings.book(
            BookingRequest("pawspa", "dog_bath_small", at(MON, "11:00"), customer_id=customer.id), Actor.staff("lin")
        )
        assert isinstance(booked, Booked)
        assert await services.reminders.tick() == 1  # booked by staff: the customer is told at once
        telegram.failures = [DeliveryError("Forbidden: bot was blocked by the user", permanent=True)]
        api.fail_next(45015)
        await services.delivery.tick()  # Telegram refuses: queued on WeChat
        await services.delivery.tick()  # WeChat's window is closed: the template notice
        [sent] = api.templates
        assert sent["template_id"] == "TPL-CHANGE" and sent["touser"] == "oUser_0001"
        assert sent["data"]["time3"]["value"] == "2026年11月23日 11:00"
        async with services.db.reading() as s:
            rows = list(await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        assert [(r.channel, r.status) for r in rows] == [
            ("telegram", OutboxStatus.FAILED),
            ("wechat", OutboxStatus.SENT),
        ]
        assert rows[1].body["reminder_kind"] == "confirmation" and rows[1].body["fallback_of"] == rows[0].id
        assert await services.outbox.needing_staff() == []
    finally:
        await services.close()
        await api.stop()


# ----------------------------------------------------------------------------- the loop's lanes


async def _eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@dataclass
class GatedSender:
    """Telegram for two shops: pawspa's bot is stuck until ``release`` (a bot at its rate limit);
    ``fail`` = texts refused (a network error) while they are in the set."""

    channel: str = "telegram"
    release: asyncio.Event = field(default_factory=asyncio.Event)
    sent: list[tuple[str, str]] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)

    async def send(self, shop_id: str, external_id: str, message: OutgoingMessage) -> str | None:
        if message.text in self.fail:
            raise DeliveryError("timeout")
        if shop_id == "pawspa":
            await self.release.wait()
        self.sent.append((shop_id, message.text))
        return None


@pytest.fixture
def small_lanes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 4 rows, at most 2 per shop: a dozen messages need several lanes."""
    import bot.delivery

    monkeypatch.setattr(bot.delivery, "LANE_BATCH", 4)
    monkeypatch.setattr(bot.delivery, "PER_SHOP", 2)


async def test_a_slow_bot_does_not_hold_up_other_shops_and_each_chat_keeps_its_order(
    demo_config: AppConfig, clock: FixedClock, db_url: str, small_lanes: None
) -> None:
    sender = GatedSender()
    services = await bootstrap(demo_config, clock=clock, database_url=db_url, senders_override={"telegram": sender})
    try:
        paws = await _conversation(services, "telegram", "42")
        clear = await _conversation(services, "telegram", "43", shop="clearsight")
        for i in range(6):  # pawspa's messages are older: a claim in id order would take only them
            await services.store.enqueue(paws, OutgoingMessage(f"p{i}"), author="staff:lily")
        for i in range(6):
            await services.store.enqueue(clear, OutgoingMessage(f"c{i}"), author="staff:lin")
        services.delivery.start()
        services.delivery.wake()
        await _eventually(lambda: len(sender.sent) == 6)  # every clearsight message, pawspa's bot stuck
        assert sender.sent == [("clearsight", f"c{i}") for i in range(6)]
        sender.release.set()
        await _eventually(lambda: len(sender.sent) == 12)
        assert [text for shop, text in sender.sent if shop == "pawspa"] == [f"p{i}" for i in range(6)]
        await _eventually(lambda: not services.delivery._lanes)
        async with services.db.reading() as s:
            assert set(await s.scalars(select(OutboxMessage.status))) == {OutboxStatus.SENT}
    finally:
        await services.close()


async def test_a_failed_message_holds_back_its_chat_across_lanes(
    demo_config: AppConfig, clock: FixedClock, db_url: str, small_lanes: None
) -> None:
    sender = GatedSender(fail={"p0"})
    sender.release.set()
    services = await bootstrap(demo_config, clock=clock, database_url=db_url, senders_override={"telegram": sender})
    try:
        paws = await _conversation(services, "telegram", "42")
        clear = await _conversation(services, "telegram", "43", shop="clearsight")
        for i in range(6):
            await services.store.enqueue(paws, OutgoingMessage(f"p{i}"), author="staff:lily")
            await services.store.enqueue(clear, OutgoingMessage(f"c{i}"), author="staff:lin")
        services.delivery.start()
        services.delivery.wake()
        await _eventually(lambda: len(sender.sent) == 6)
        await asyncio.sleep(2.5)  # the loop looks again (a lane a second, a probe of p0): the chat waits for p0
        assert sender.sent == [("clearsight", f"c{i}") for i in range(6)]  # none of pawspa's overtook p0
        async with services.db.reading() as s:
            waiting = list(
                await s.scalars(select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.PENDING))
            )
        texts = {OutgoingMessage.from_json(r.body).text: r for r in waiting}
        assert sorted(texts) == [f"p{i}" for i in range(6)]
        assert texts["p0"].next_attempt_at == clock.now() + timedelta(seconds=5)  # its retry
        sender.fail.clear()  # the network is back
        clock.advance(timedelta(seconds=5))
        services.delivery.wake()
        await _eventually(lambda: len(sender.sent) == 12)
        assert [text for shop, text in sender.sent if shop == "pawspa"] == [f"p{i}" for i in range(6)]
    finally:
        await services.close()


async def test_a_fair_claim_takes_every_shop_not_only_the_oldest_rows(
    wired: tuple[Services, RecordingSender, RecordingSender],
) -> None:
    from core.outbox import claim_fair

    services, _, _ = wired
    paws = await _conversation(services, "telegram", "42")
    clear = await _conversation(services, "telegram", "43", shop="clearsight")
    for i in range(30):
        await services.store.enqueue(paws, OutgoingMessage(f"p{i}"), author="staff:lily")
    await services.store.enqueue(clear, OutgoingMessage("c0"), author="staff:lin")
    claimed = await claim_fair(services.outbox, ["telegram"], limit=10, per_shop=5)
    assert [c.message.text for c in claimed] == ["p0", "p1", "p2", "p3", "p4", "c0"]
    # Chat 42's later rows wait while its first five are being sent (in order, whoever sends them) ...
    assert await claim_fair(services.outbox, ["telegram"], limit=10, per_shop=5) == []
    # ... unless this process has sent those already and only their settlement is still to come.
    again = await claim_fair(services.outbox, ["telegram"], limit=10, per_shop=5, sent={c.id for c in claimed})
    assert [c.message.text for c in again] == ["p5", "p6", "p7", "p8", "p9"]
