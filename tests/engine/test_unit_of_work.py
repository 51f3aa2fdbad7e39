"""One message, one unit of work (issue 10 part 3), as a customer and an operator would notice:

- a turn whose policy fails after a booking operation leaves no half-written state: no hold is
  kept for a slot the customer was never shown, the chat is where it was, and the customer is
  told something went wrong (once; the message counts as answered);
- the hot FAQ turn stays a handful of statements in ONE transaction (a regression bound on the
  statement count, not a timing);
- core/db.py's unit of work: blocks inside it share its transaction (a failed block rolls back
  alone), its reads see its own writes, wake-ups run only after the commit and never after a
  rollback, and another task is never drawn into it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.bootstrap import Services
from core.models import Booking, Conversation, Customer, InboundMessage, TranscriptEntry
from tests.engine.conftest import LANGS, SUN, ChatFactory, day_text, say, with_pet
from tests.helpers import statements as counted

pytestmark = pytest.mark.asyncio
BATH_FOR_PET = {"zh": "明天给豆豆洗澡", "en": "bath for Max tomorrow"}


@pytest.mark.parametrize("lang", LANGS)
async def test_a_turn_that_fails_after_its_hold_keeps_no_hold_and_says_so(
    services: Services, make_chat: ChatFactory, lang: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer, pet = await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push(BATH_FOR_PET[lang])
    await chat.press(say(lang, "btn.affirm"))
    assert say(lang, "ask.time", day=day_text(lang, SUN)) in chat.text
    async with services.db.reading() as s:
        before = await s.scalar(select(Conversation).where(Conversation.customer_id == customer.id))
        assert before is not None
        state_before, data_before = before.state, dict(before.data)

    real_hold = services.bookings.hold
    holds: list[Any] = []

    async def hold_then_fail(*args: Any, **kwargs: Any) -> Any:
        holds.append(await real_hold(*args, **kwargs))  # the slot is claimed in the turn's transaction...
        raise RuntimeError("the policy broke after the hold")  # ...then the turn fails

    monkeypatch.setattr(services.bookings, "hold", hold_then_fail)
    await chat.push("15:00")
    assert holds, "the tap reached the booking operation"
    assert chat.text == say(lang, "misc.error")

    async with services.db.reading() as s:
        assert await s.scalar(select(func.count()).select_from(Booking)) == 0  # the hold went with the turn
        after = await s.scalar(select(Conversation).where(Conversation.id == before.id))
        assert after is not None
        assert (after.state, {k: v for k, v in after.data.items() if k != "buttons"}) == (
            state_before,
            {k: v for k, v in data_before.items() if k != "buttons"},
        )
        texts_out = list(
            await s.scalars(
                select(TranscriptEntry.text)
                .where(TranscriptEntry.conversation_id == before.id)
                .order_by(TranscriptEntry.id.desc())
                .limit(2)
            )
        )
        assert texts_out == [say(lang, "misc.error"), "15:00"]  # the message and the apology, once each
        done = await s.scalar(select(func.count()).select_from(InboundMessage).where(InboundMessage.done.is_(False)))
        assert done == 0

    monkeypatch.setattr(services.bookings, "hold", real_hold)
    await chat.push("15:00")  # the customer tries again: the slot is free, the summary shows it
    assert say(lang, "summary.title") in chat.text
    assert pet.name in chat.text


async def test_an_faq_turn_is_a_handful_of_statements_in_one_transaction(
    services: Services, make_chat: ChatFactory
) -> None:
    chat = make_chat("zh", shop="clearsight", user="faq-count")
    await chat.push("营业时间是几点？")  # first contact: the customer and the chat are created
    with counted(services) as statements:
        await chat.push("营业时间是几点？")
    assert chat.replies and chat.text
    begins = [s for s in statements if s.startswith(("BEGIN", "SAVEPOINT"))]
    commits = [s for s in statements if s.startswith(("COMMIT", "RELEASE"))]
    assert len([s for s in begins if s.startswith("BEGIN")]) <= 1, statements  # one transaction (SQLite)
    assert len(statements) - len(begins) - len(commits) <= 7, statements  # claim, customer, chat, 4 writes


async def test_blocks_share_the_unit_of_work_and_a_failed_block_rolls_back_alone(services: Services) -> None:
    db = services.db
    woken: list[str] = []
    async with db.unit_of_work() as uow:
        uow.after_commit(lambda: woken.append("committed"))
        async with db.transaction() as s:
            kept = _customer(services, "kept")
            s.add(kept)
        with pytest.raises(IntegrityError):
            async with db.transaction() as s:  # a duplicate id: this block fails, the unit goes on
                s.add(_customer(services, "lost"))
                await s.flush()
                s.add(_customer(services, "duplicate", id=kept.id))
        async with db.reading() as s:  # the unit's own write is seen before the commit
            assert await s.scalar(select(Customer.display_name).where(Customer.display_name == "kept")) == "kept"
        other = asyncio.get_running_loop().create_task(_names(services))  # another task: not drawn in
        await asyncio.sleep(0.05)
        assert woken == []
    assert woken == ["committed"]
    # SQLite: it waited for the write lock, so it reads after our commit; PostgreSQL: it read at once,
    # and saw nothing uncommitted
    assert await other == (["kept"] if services.db.dialect == "sqlite" else [])
    assert await _names(services) == ["kept"]


async def test_a_unit_of_work_that_fails_writes_nothing_and_wakes_no_one(services: Services) -> None:
    woken: list[str] = []
    with pytest.raises(RuntimeError):
        async with services.db.unit_of_work() as uow:
            uow.after_commit(lambda: woken.append("committed"))
            async with services.db.transaction() as s:
                s.add(_customer(services, "gone"))
            raise RuntimeError("the work failed")
    assert woken == []
    assert await _names(services) == []


async def _names(services: Services) -> list[str]:
    async with services.db.transaction() as s:
        return list(await s.scalars(select(Customer.display_name).order_by(Customer.id)))


def _customer(services: Services, name: str, **values: Any) -> Customer:
    now = services.clock.now()
    return Customer(shop_id="pawspa", display_name=name, language="zh", notes="", created_at=now, **values)
