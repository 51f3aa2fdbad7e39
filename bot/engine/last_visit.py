"""Same as last time, in chat: before the summary of a grooming or bath booking for a pet whose
last completed visit of that kind has visit notes (products, blade length, the groomer's notes,
recorded by staff at completion: core/records.py), the bot asks once "上次豆豆用的是：……这次要不要继续
使用？" / "Last time Max had: …. Same again this time?" with two buttons. Yes puts those notes on
the new booking as its note for staff (``records.note_on_booking``, in the booking's events);
no goes on to the summary. Either way the summary follows and the booking is confirmed as usual.

What is offered is a pure function of the pet's last visit record (``offer_for``): only what a
customer recognises (products, blade) is shown to them; the groomer's notes travel to the
booking's note for staff but are never shown in chat. A visit whose notes are empty, a pet with
no completed visit of that kind, an optician, or a booking without a pet is not asked. Notes are
read for the booking's own customer and pet only (another customer's pet never leaks, even with
the same name).

"Once": the conversation's data keeps what was offered (``last_visit``: the visit the notes come
from, the pet, the holds of this booking dialog, the answer). Choosing another time re-holds the
booking: the answer carries over (a yes is put on the new hold and said again), it is not asked
again. A new booking dialog (the previous hold became a booking, or a day went by) asks afresh.

Hooks (bot/engine/states.py ``Confirm``): ``ask`` at the top of ``enter`` (True: the question
was asked, the summary waits), ``on_payload`` and ``on_frame`` for the answer (buttons ``lv:y``
/ ``lv:n``, or a typed yes/no). Texts: core/locales ``visit.*``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.engine.draft import StateName
from core import records
from core.i18n import texts
from core.messages import Button
from core.records import VisitNotes, same_as_last_text
from core.results import Actor, BookingView

if TYPE_CHECKING:
    from bot.engine.turn import Turn
    from bot.engine.understanding import Frame

YES, NO = "lv:y", "lv:n"
# typed answers read as such while the question is open (besides a plain yes / no); "不用了" is
# also a "cancel" word: here it declines the offer, not the booking (the policy asks ``no_thanks``)
SAME_WORDS: tuple[str, ...] = (
    "一样",
    "一样的",
    "和上次一样",
    "跟上次一样",
    "还是一样",
    "好 和上次一样",
    "same",
    "same again",
    "the same",
)
SAME_WORDS += ("yes same again",)
NO_THANKS = ("不用了", "不用", "不用啦", "这次不用", "这次不用了", "not this time", "no thanks", "no thank you")
KEY = "last_visit"  # in the conversation's data
FRESH = timedelta(days=1)  # an answer older than this is not carried into a booking dialog
MAX_HOLDS = 10


@dataclass(frozen=True)
class Offer:
    """What to ask before the summary, and what a yes puts on the booking."""

    source: int  # the booking (completed visit) the notes were recorded at
    question: str  # for the customer, in their language
    note: str  # for staff, in the shop's language: products, blade, the groomer's notes


def offer_for(notes: VisitNotes | None, pet_name: str, lang: str, staff_lang: str) -> Offer | None:
    """The offer for a pet whose last visit record is ``notes`` (None: nothing to offer)."""
    if notes is None:
        return None
    question = same_as_last_text(notes, pet_name, lang)
    if question is None:  # nothing a customer would recognise (the groomer's notes are for staff)
        return None
    st = texts(staff_lang)
    details = [st.t("visit.products", text=notes.products)] if notes.products else []
    if notes.blade:
        details.append(st.t("visit.blade", text=notes.blade))
    if notes.notes:
        details.append(st.t("visit.groomer_notes", text=notes.notes))
    note = st.t(
        "visit.booking_note", date=st.format_date(notes.visit_on), details=st.t("visit.detail_sep").join(details)
    )
    return Offer(notes.booking_id, question, note)


# ------------------------------------------------------------------------------------ the hooks


async def ask(t: Turn, booking: BookingView) -> bool:
    """Before the summary of the held ``booking``: ask once when there is something to offer.
    True when the question was asked (the summary waits for the answer)."""
    offer = await _offer(t, booking)
    if offer is None:
        t.data.pop(KEY, None)
        return False
    record = await _same_dialog(t, booking, offer)
    if record is None:
        record = {"source": offer.source, "pet": booking.pet_id, "holds": [booking.id], "answer": None}
        record["at"] = t.now.isoformat()
        t.data[KEY] = record
    elif booking.id not in record["holds"]:  # another time chosen in the same dialog
        record["holds"] = [*record["holds"], booking.id][-MAX_HOLDS:]
        if record["answer"] is True:
            await _put_on_booking(t, booking.id, offer)
    if record["answer"] is None:
        t.say(offer.question, _buttons(t))
        return True
    return False


async def on_payload(t: Turn, payload: str) -> bool:
    """The yes / no buttons under the question."""
    if payload not in (YES, NO) or _record_for_hold(t) is None:
        return False
    await _answer(t, payload == YES)
    return True


async def on_frame(t: Turn, frame: Frame) -> bool:
    """A typed yes / no to the open question (a correction or a question is not an answer)."""
    if not _open(t):
        return False
    if frame.norm in SAME_WORDS or frame.norm in NO_THANKS:
        await _answer(t, frame.norm in SAME_WORDS)
        return True
    if frame.answer is None or frame.question or frame.fills_booking:
        return False
    await _answer(t, frame.answer)
    return True


def no_thanks(t: Turn, frame: Frame) -> bool:
    """ "不用了" / "no thanks" answering the open question: a no to it (not the end of the booking)."""
    return frame.norm in NO_THANKS and _open(t)


# ------------------------------------------------------------------------------------ inside


def _buttons(t: Turn) -> list[Button]:
    return [t.button("visit.btn_same", YES), t.button("visit.btn_not_same", NO)]


async def _offer(t: Turn, booking: BookingView) -> Offer | None:
    if t.shop.kind != "pet" or booking.pet_id is None or booking.customer_id != t.customer.id:
        return None
    pet = t.pet(booking.pet_id)  # only this customer's pets are in the turn
    if pet is None:
        return None
    notes = await records.last_visit_record(
        t.engine.db, t.shop, t.shop_id, t.customer.id, pet.id, booking.service_id, before=booking.start
    )
    return offer_for(notes, pet.name, t.lang, t.shop.default_language)


async def _same_dialog(t: Turn, booking: BookingView, offer: Offer) -> dict[str, Any] | None:
    """The record of this booking dialog's offer, if it is about the same visit notes and pet
    (else None: a new dialog asks again)."""
    record = t.data.get(KEY)
    if not isinstance(record, dict) or record.get("source") != offer.source or record.get("pet") != booking.pet_id:
        return None
    holds = [h for h in record.get("holds") or [] if isinstance(h, int)]
    try:
        fresh = t.now - datetime.fromisoformat(str(record.get("at"))) < FRESH
    except ValueError:
        fresh = False
    if not holds or not fresh:
        return None
    if booking.id not in holds and await _was_booked(t, holds[-1]):
        return None  # the previous hold became a booking: this is another booking
    record["holds"] = holds
    return record


async def _was_booked(t: Turn, booking_id: int) -> bool:
    return any(e.action == "confirmed" for e in await t.engine.bookings.history(booking_id))


def _open(t: Turn) -> bool:
    record = _record_for_hold(t)
    return record is not None and record["answer"] is None and t.state == StateName.CONFIRM


def _record_for_hold(t: Turn) -> dict[str, Any] | None:
    record = t.data.get(KEY)
    hold = t.draft.hold_id
    if not isinstance(record, dict) or hold is None or int(hold) not in (record.get("holds") or []):
        return None
    return record


async def _answer(t: Turn, yes: bool) -> None:
    record = _record_for_hold(t)
    assert record is not None and t.draft.hold_id is not None
    record["answer"] = yes
    if yes:
        booking = await t.engine.bookings.get(t.shop_id, int(t.draft.hold_id))
        offer = await _offer(t, booking) if booking is not None else None
        if offer is not None:
            await _put_on_booking(t, int(t.draft.hold_id), offer)
    await t.reprompt()  # the summary, with the confirm buttons


async def _put_on_booking(t: Turn, booking_id: int, offer: Offer) -> None:
    actor = Actor.customer(t.customer.id)
    if await records.note_on_booking(
        t.engine.db, t.engine.clock, t.shop_id, booking_id, t.customer.id, offer.note, actor
    ):
        t.say(t.t("visit.same_yes"))
