"""The steps shared by the dialog states: filling the booking form, picking a day and a time,
holding, confirming, managing an existing booking, handing over to staff, answering from the FAQ.

A booking draft is a form filled in any order (buttons, free text, or one message that says it
all); ``advance`` always moves to the first slot still missing, so one-message bookings and
step-by-step bookings run through the same code. A known pet's species, size and vaccination
are reused, never asked again; what the customer corrects replaces what was there.
Nothing that exists is changed without a yes to a question that names it: a reschedule and an
add-on end in a confirmation step, a cancel starts with one.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from bot.engine.context import question_contexts
from bot.engine.draft import Action, Draft, Mode, StateName
from bot.engine.intents import language_of, looks_like_question, normalise
from bot.engine.recurrence import Recurrence, recurrence_in
from bot.engine.turn import Turn
from bot.engine.understanding import Frame, Intent
from bot.usecases import handoff
from bot.usecases.series import continue_series
from core.availability import Slot, to_utc
from core.bookings import BookingRequest
from core.config import WEEKDAYS
from core.customers import PetView
from core.messages import Button, OutgoingMessage
from core.models import ACTIVE_STATUSES, BookingStatus, ConversationMode
from core.money import Money
from core.opening import open_state
from core.pets import Species
from core.reports import record_faq_answer
from core.results import Actor, Booked, BookingResult, BookingView, NotAllowed, Reason, Taken
from core.shop_facts import opening_hours_text, render_facts
from core.when import Lang, format_day_label, period_of
from faq import FaqEntry, FaqMatcher, MatchResult

MAX_DAY_BUTTONS = 6
MAX_TIME_BUTTONS = 12
VACCINATION_VALID = timedelta(days=365)


def actor(t: Turn) -> Actor:
    return Actor.customer(t.customer.id)


def slot_payload(start: datetime) -> str:
    return f"s:{int(start.timestamp()) // 60}"


def slot_from_payload(payload: str) -> datetime | None:
    try:
        minutes = int(payload.split(":", 1)[1])
    except (IndexError, ValueError):
        return None
    if not 0 <= minutes < 10**9:
        return None
    return datetime.fromtimestamp(minutes * 60, tz=UTC)


def price_text(t: Turn, amount: Decimal | float) -> str:
    return t.texts.format_price(amount, currency=t.shop.currency)


# ------------------------------------------------------------------------- the booking form


async def start_booking(t: Turn, frame: Frame | None = None, **prefill: Any) -> None:
    """A new booking: whatever was going on is put away first (a hold is released)."""
    await release_hold(t)
    t.clear_draft()
    d = t.draft
    d.mode = Mode.BOOK
    for key, value in prefill.items():
        if value is not None:
            setattr(d, key, value)
    if frame is not None:
        await apply_frame(t, frame)
    await advance(t)


async def apply_frame(t: Turn, frame: Frame) -> bool:
    """Take every booking fact the message gives into the draft; True when anything changed.

    A fact that differs from what the draft holds replaces it (the correction pattern). A change
    to what is booked (service, pet, size, add-ons) keeps the chosen day and time as the wish and
    releases the hold, so the next step re-checks and re-holds; a new day without a time keeps
    the time asked for before ("actually make it Sunday").
    """
    d = t.draft
    before, staff_before = _what(d), d.staff
    _apply_service(t, frame)
    if frame.addons and d.mode == Mode.BOOK:  # "驱虫不要了，换成护毛素": one out, the other in
        d.addons = [a for a in d.addons if a not in frame.removed_addons]
        d.addons += [a for a in dict.fromkeys(frame.addons) if a not in d.addons and a not in frame.removed_addons]
    if t.shop.kind == "pet":
        _apply_pet(t, frame)
        await _rename_new_pet(t, frame)
        await _respecies_new_pet(t, frame)
    what_changed = before != _what(d)
    staff_changed = d.staff is not None and d.staff != staff_before
    wished_time = _chosen_time(t)
    if frame.when.time is not None:
        d.asked_time = frame.when.time.strftime("%H:%M")
    elif frame.earliest:
        d.asked_time = "earliest"
    when_changed = _apply_when(t, frame, wished_time)
    when_changed = _apply_after(t, frame) or when_changed
    when_changed = await _apply_that_day(t, frame) or when_changed
    when_changed = await _apply_same_visit(t, frame) or when_changed
    if frame.when.from_date is not None and frame.when.date is None and not (d.day or d.want_day):
        d.day_from = frame.when.from_date.isoformat()  # "next week sometime": the days offered start there
        d.day_until = frame.when.until_date.isoformat() if frame.when.until_date else None  # "周末": Sat or Sun
    if frame.earliest and not frame.when.time and (d.day or d.want_day):
        day = d.day or d.want_day
        d.forget_when()
        d.want_day = day
        when_changed = True  # "越早越好" / "whatever's free in the afternoon": the first free time of the day
    if what_changed and not when_changed and (d.start or d.hold_id or (staff_changed and d.day)):
        day = d.day  # "is dr wang in that day?": the day is checked again for that person
        d.forget_when()
        d.want_day, d.want_time = day, wished_time
    if staff_changed and d.want_day and _staff_wish(t) == d.staff and d.staff is not None:
        asked_day = date.fromisoformat(d.want_day)
        if t.shop.staff[d.staff].shifts.get(WEEKDAYS[asked_day.weekday()]):
            t.say(t.t("info.staff_in", staff=t.staff_name(d.staff), day=t.day_text(asked_day)))
    if (what_changed or when_changed) and d.hold_id:
        await release_hold(t)
    if what_changed and d.size and d.service and d.mode == Mode.BOOK:
        _resize(t)
    return what_changed or when_changed or _vaccination_changed(frame, d)


def _apply_service(t: Turn, frame: Frame) -> None:
    """The service, the exam's patient, the staff member and a series the message names."""
    d = t.draft
    if frame.service is not None and frame.service.among:
        if d.service not in frame.service.among:  # "修剪一下": grooming or the nails, asked
            d.service, d.category, d.among = None, None, list(frame.service.among)
    elif frame.service is not None:
        service, category = frame.service.service_id, frame.service.category
        other_category = category and category != d.category and not _in_category(t, category)
        if (service and service != d.service) or other_category:
            d.service, d.category, d.among = service, category, []
    elif frame.bath and not _is_bath(t, d.service, d.category):
        d.service, d.category, d.bath = None, None, True  # "make that a bath instead"
    elif frame.child is not None and not d.service and not d.category and t.shop.kind == "optician":
        # "the kids one" / "成人的": the exam for that person
        d.service = _child_service(t) if frame.child else _adult_exam(t)
    if frame.child is not None and t.shop.kind == "optician":
        d.child = frame.child
    if len(frame.party) > 1 and d.mode == Mode.BOOK:  # "me and my son": one exam after the other
        d.child = frame.party[0]
        d.next_people = ["child" if child else "adult" for child in frame.party[1:]]
    if frame.staff_id and frame.staff_id != d.staff and d.mode == Mode.BOOK:
        d.staff = frame.staff_id
    repeat = recurrence_in(frame.text) if d.mode == Mode.BOOK else None
    if repeat is not None:
        d.recurrence = repeat.as_json()  # "每6周一次": the rest of the series is booked after the first


def _apply_when(t: Turn, frame: Frame, wished_time: str | None) -> bool:
    """A day, a time or a part of day said replaces what the draft holds; True when it changed.
    A new day without a time keeps the time asked for before ("actually make it Sunday")."""
    d = t.draft
    if frame.when.date is not None:
        new_day = frame.when.date.isoformat()
        keeps_time = wished_time and (
            frame.when.period is None or period_of(time.fromisoformat(wished_time)) == frame.when.period
        )
        new_time = frame.when.time.strftime("%H:%M") if frame.when.time else (wished_time if keeps_time else None)
        if new_day == (d.day or d.want_day) and new_time == wished_time:
            return False
        d.forget_when()
        d.want_day, d.want_time = new_day, new_time
        if frame.when.period:
            d.period = frame.when.period
        return True
    if frame.when.time is not None:
        hhmm = frame.when.time.strftime("%H:%M")
        if hhmm == wished_time:
            return False
        day = d.day or d.want_day
        d.forget_when()
        d.want_day, d.want_time = day, hhmm
        return True
    if frame.when.period is not None and frame.when.period != d.period:
        d.period = frame.when.period
        if d.start is not None:
            day = d.day
            d.forget_when()
            d.want_day = day
        return True
    return False


def _apply_after(t: Turn, frame: Frame) -> bool:
    """A time after which any is fine ("周日下午两点以后都可以", "not too early"): the times offered
    start there; True when the time chosen was earlier and is dropped."""
    d = t.draft
    if frame.after is None:
        return False
    if not (d.day or d.want_day or frame.when.date) and d.after != frame.after.strftime("%H:%M"):
        t.say(t.t("info.noted_after", time=frame.after.strftime("%H:%M")))  # "not too early": noted
    d.after = frame.after.strftime("%H:%M")
    if d.start and datetime.fromisoformat(d.start).astimezone(t.shop.tz).time() < frame.after:
        d.forget_time()
        return True
    return False


async def _apply_that_day(t: Turn, frame: Frame) -> bool:
    """That day ("can I also bring my son in that day?"): the day of the one booking on file."""
    d = t.draft
    that_day = any(w in frame.norm for w in SAME_DAY_WORDS)
    if frame.when.date is not None or d.day or d.want_day or d.mode != Mode.BOOK or not that_day:
        return False
    days = {b.start.astimezone(t.shop.tz).date() for b in await upcoming(t)}
    if len(days) != 1:
        return False
    new_time = frame.when.time.strftime("%H:%M") if frame.when.time else d.want_time
    d.want_day, d.want_time = days.pop().isoformat(), new_time
    return True


# "豆豆周六那个能不能顺便剪个指甲" / "can I also get her nails done saturday": one more service on
# the day of a booking on file, offered right after it
_SAME_VISIT = re.compile(
    r"顺便|顺带|顺道|一起做|同时|也想|也要|也帮|也给|再加个|"
    r"\balso\b|\btoo\b|\bas well\b|\bwhile (?:he|she|they|we|i)(?:'s|'re|'m| is| are| am)? (?:there|in)\b|"
    r"\bsame visit\b|\bright after\b|\bstraight after\b"
)


async def _apply_same_visit(t: Turn, frame: Frame) -> bool:
    """Another service on the day of a booking on file (for the same pet), no time said: the time
    right after that booking, said so; the summary then asks."""
    d = t.draft
    day = d.day or d.want_day
    if d.mode != Mode.BOOK or not day or d.start or d.want_time or frame.when.time is not None:
        return False
    if not _SAME_VISIT.search(frame.text.lower()) or not (d.service or d.category or d.bath):
        return False
    if t.shop.kind == "pet" and d.pet_id is None:
        return False
    on_day = [
        b
        for b in await upcoming(t)
        if b.start.astimezone(t.shop.tz).date().isoformat() == day
        and (d.pet_id is None or b.pet_id == d.pet_id)
        and b.service_id != d.service
    ]
    if len(on_day) != 1:
        return False
    visit = on_day[0]
    end = visit.end.astimezone(t.shop.tz).strftime("%H:%M")
    pet = t.pet(visit.pet_id)
    t.say(t.t("info.right_after", pet=pet.name if pet else "", service=t.service_name(visit.service_id), time=end))
    d.want_time = end
    return True


def _what(d: Draft) -> tuple[Any, ...]:
    """The parts of a draft that say what is booked (a change to any re-checks the time)."""
    return (
        d.bath, d.service, d.category, d.pet_id, d.pet_name, d.species, d.size, tuple(d.addons), d.child, d.staff,
        tuple(d.next_pets), tuple(d.next_people),
    )  # fmt: skip


def _vaccination_changed(frame: Frame, d: Draft) -> bool:
    return frame.vaccinated is not None and d.vaccinated == frame.vaccinated


def _chosen_time(t: Turn) -> str | None:
    """The time of day the customer chose or asked for so far (HH:MM, shop time)."""
    d = t.draft
    if d.start:
        return datetime.fromisoformat(d.start).astimezone(t.shop.tz).strftime("%H:%M")
    return d.want_time or (d.asked_time if d.asked_time != "earliest" else None)


def _resize(t: Turn) -> None:
    """A corrected size moves a sized service to its sibling ("he's medium actually")."""
    d = t.draft
    assert d.service is not None
    service = t.shop.services[d.service]
    if not service.category or not service.pet_size or service.pet_size == d.size:
        return
    sibling = _service_for_pet(t, service.category, d.size, d.species)
    if sibling:
        d.service = sibling


def _in_category(t: Turn, category: str) -> bool:
    d = t.draft
    return bool(d.service and t.shop.services.get(d.service) and t.shop.services[d.service].category == category)


def _same_start(t: Turn, day: str, hhmm: str) -> bool:
    d = t.draft
    if not d.start:
        return False
    local = datetime.fromisoformat(d.start).astimezone(t.shop.tz)
    return local.date().isoformat() == day and local.strftime("%H:%M") == hhmm


def _apply_pet(t: Turn, frame: Frame) -> bool:
    d = t.draft
    changed = False
    if frame.new_pet and frame.pet is None and d.pet_id is None:
        d.new_pet = True
    if frame.pet is not None and frame.pet.id != d.pet_id:
        use_pet(t, frame.pet)
        changed = True
    if len(frame.pets) > 1 and d.mode == Mode.BOOK:  # "baths for max and bella": one after the other
        d.next_pets = [p.id for p in frame.pets if p.id != d.pet_id]
    elif frame.pet is not None:  # "just max" / "actually only bella": the others are not booked
        d.next_pets = []
    elif frame.new_pet_name and d.pet_id is None and frame.new_pet_name != d.pet_name:
        d.pet_name = frame.new_pet_name
        changed = True
    if frame.species and not d.species and d.pet_id is None:
        d.species = frame.species
        changed = True
    if frame.breed and d.pet_id is None and not d.breed:
        d.breed = frame.breed
        changed = True
    if frame.size and (d.size != frame.size):
        d.size = frame.size
        changed = True
    if frame.vaccinated is not None and d.vaccinated is None:
        d.vaccinated = frame.vaccinated
        d.vaccinated_on = frame.vaccinated_on.isoformat() if frame.vaccinated_on else None
        changed = True
    return changed


async def _respecies_new_pet(t: Turn, frame: Frame) -> None:
    """"oops Pumpkin is my cat, not a dog": the pet put on file a moment ago gets its species (a
    dog's size dropped); the service is then checked for that species by advance()."""
    d = t.draft
    if not frame.species or d.pet_id is None or d.pet_id != d.created_pet or frame.species == d.species:
        return
    if not (frame.has(Intent.CORRECTION) or frame.names_pet or frame.new_pet_name == d.pet_name):
        return
    species: Species = "cat" if frame.species == "cat" else "dog"
    if await t.engine.customers.update_pet(t.customer.id, d.pet_id, species=species) is not None:
        d.species = species
        if frame.species != "dog":
            d.size = None
        await _reload_customer(t)


async def _rename_new_pet(t: Turn, frame: Frame) -> None:
    """ "oops her name is Mumu not Momo": the pet put on file a moment ago gets the right name."""
    d = t.draft
    name = frame.new_pet_name
    if not name or frame.pet is not None or d.pet_id is None or d.pet_id != d.created_pet or name == d.pet_name:
        return
    if not (frame.has(Intent.CORRECTION) or frame.names_pet):
        return
    if await t.engine.customers.update_pet(t.customer.id, d.pet_id, name=name) is not None:
        d.pet_name = name
        await _reload_customer(t)



def use_pet(t: Turn, pet: PetView) -> None:
    d = t.draft
    switching = d.pet_id is not None and d.pet_id != pet.id
    d.pet_id, d.pet_name, d.species = pet.id, pet.name, pet.species
    d.size = pet.size if switching else (pet.size or d.size)
    d.breed = pet.breed or ("" if switching else d.breed)
    if switching:
        d.vaccinated = None
    if d.vaccinated is None and vaccination_valid(t, pet):
        d.vaccinated = True


async def expired_vaccination_prompt(t: Turn, pet: PetView) -> str | None:
    """The question to ask when the pet's record on file has expired (None: no record, or valid)."""
    from core.vaccinations import vaccination_prompt, vaccination_status

    service = t.draft.service
    if service is None:
        return None
    visit = date.fromisoformat(t.draft.day) if t.draft.day else t.today
    status = await vaccination_status(t.engine.db, t.shop, pet.id, service, visit)
    return vaccination_prompt(status, t.shop, pet.name, t.lang) if status.state == "expired" else None


async def _record_vaccination(t: Turn, pet_id: int) -> None:
    """ "打过了": a record (general, given today unless the customer said when) with its expiry,
    in the audit trail; the pet's ``vaccinated_on`` follows the newest record."""
    from core.audit import RecordError
    from core.vaccinations import record_vaccination

    given = date.fromisoformat(t.draft.vaccinated_on) if t.draft.vaccinated_on else t.today
    try:
        await record_vaccination(
            t.engine.db, t.engine.clock, t.shop_id, t.shop, pet_id, None, given, actor(t), today=t.today
        )
    except RecordError:
        await record_vaccination(t.engine.db, t.engine.clock, t.shop_id, t.shop, pet_id, None, t.today, actor(t))


def vaccination_valid(t: Turn, pet: PetView | None) -> bool:
    if pet is None or pet.vaccinated_on is None:
        return False
    visit = date.fromisoformat(t.draft.day) if t.draft.day else t.today
    return pet.vaccinated_on + VACCINATION_VALID >= visit


def _service_duration(t: Turn) -> int:
    d = t.draft
    if d.duration:
        return int(d.duration)
    assert d.service is not None
    return t.engine.bookings.duration_min(t.shop, d.service, d.addons)


async def advance(t: Turn) -> None:
    """Go to the first slot the draft still needs; hold the slot once everything is known."""
    d = t.draft
    shop = t.shop
    if d.mode == Mode.RESCHEDULE:
        if not await _day_and_time_asked(t):
            await t.go(StateName.RESCHEDULE_CONFIRM)
        return
    if not d.service and not d.category and not d.bath:
        await t.go(StateName.CHOOSE_SERVICE)
        return
    if shop.kind == "pet":
        if not await _pet_ready(t):
            return
    else:
        if d.category and not d.service:
            d.service = next(sid for sid, s in shop.services.items() if s.category == d.category)
            d.category = None
        _whose_exam(t)
    assert d.service is not None
    _drop_addons_not_offered(t)
    _drop_unqualified_staff(t, d.service)
    if not await _day_and_time_asked(t):
        await hold(t)


async def _day_and_time_asked(t: Turn) -> bool:
    """Ask for the day, then the time, when the draft lacks them; False when both are known."""
    d = t.draft
    if not d.day and d.want_day:
        await _wanted_day(t)
    elif not d.day:
        await t.go(StateName.CHOOSE_DAY)
    elif not d.start:
        await t.go(StateName.CHOOSE_TIME)
    else:
        return False
    return True


def _drop_unqualified_staff(t: Turn, service_id: str) -> None:
    """A staff member asked for who does not do this service is told and dropped."""
    d = t.draft
    if d.staff and d.staff not in t.shop.qualified_staff(service_id):
        if d.staff in t.shop.staff:
            t.say(t.t("info.staff_cannot", staff=t.staff_name(d.staff), service=t.service_name(service_id)))
        d.staff = None


def _whose_exam(t: Turn) -> None:
    """An exam for a child books the child's exam (the service whose aliases say child)."""
    d = t.draft
    if d.child is None or d.service is None:
        return
    current = t.shop.services[d.service]
    if not current.resources:
        return
    siblings = [
        sid
        for sid, s in t.shop.services.items()
        if s.resources == current.resources and s.staff_required and "exam" in sid
    ]
    if d.service not in siblings:
        return  # "contacts fitting for my daughter (15)": the service named is not an exam
    if d.child and not _for_child(t, d.service):
        match = next((sid for sid in siblings if _for_child(t, sid)), None)
        if match:
            d.service = match
    elif d.child is False and _for_child(t, d.service):
        match = next((sid for sid in siblings if not _for_child(t, sid)), None)
        if match:
            d.service = match


def _is_bath(t: Turn, service: str | None, category: str | None) -> bool:
    if category:
        return True
    if service is None:
        return False
    s = t.shop.services[service]
    return "bath" in s.name.en.lower() or "洗澡" in s.name.zh


def _for_child(t: Turn, service_id: str) -> bool:
    """Whether a service is the children's one: its names or aliases carry a child word."""
    from bot.engine.understanding import CHILD_WORDS

    s = t.shop.services[service_id]
    words = [normalise(a) for a in s.aliases] + [normalise(s.name.en), normalise(s.name.zh)]
    return any(normalise(w) in x for w in CHILD_WORDS for x in words)


def _child_service(t: Turn) -> str | None:
    return next((sid for sid in t.shop.services if _for_child(t, sid)), None)


def _adult_exam(t: Turn) -> str | None:
    """The exam whose sibling is the children's one (same resources), for a grown-up."""
    child = _child_service(t)
    if child is None:
        return None
    resources = t.shop.services[child].resources
    return next((sid for sid, s in t.shop.services.items() if sid != child and s.resources == resources), None)


def _drop_addons_not_offered(t: Turn) -> None:
    d = t.draft
    if d.service is None:
        return
    offered = t.shop.services[d.service].addons
    d.addons = [a for a in d.addons if a in offered]


async def _pet_ready(t: Turn) -> bool:
    """Everything about the pet the booking needs; False when a question was asked."""
    d = t.draft
    if d.pet_id is None and not await _pet_known(t):
        return False
    if d.pet_id is None and not await _new_pet_made(t):
        return False
    pet = t.pet(d.pet_id)
    if pet is not None:
        _resolve_bath(t, pet.species)
    if not d.service and not d.category:
        d.bath = False
        await t.go(StateName.CHOOSE_SERVICE)
        return False
    if pet is not None and d.size and pet.size != d.size and pet.species == "dog":
        await t.engine.customers.update_pet(t.customer.id, pet.id, size=d.size)
        await _reload_customer(t)
        pet = t.pet(d.pet_id)
    if d.category and not await _sized_service(t, pet):
        return False
    if not await _service_fits_species(t, pet):
        return False
    assert d.service is not None
    service = t.shop.services[d.service]
    if service.requires_vaccination and d.vaccinated is None:
        if vaccination_valid(t, pet):
            d.vaccinated = True
        else:
            await t.go(StateName.VACCINATION)
            return False
    if service.requires_vaccination and d.vaccinated is False:
        await refuse_unvaccinated(t)
        return False
    return True


async def _pet_known(t: Turn) -> bool:
    """The pet on file named, or the only one; a new pet's name; False when a question was asked."""
    d = t.draft
    if d.pet_name:
        known = next((p for p in t.customer.pets if normalise(p.name) == normalise(d.pet_name)), None)
        if known is not None:
            use_pet(t, known)
    if d.pet_id is not None or d.pet_name:
        return True
    pets = compatible_pets(t)
    if d.new_pet:
        await t.go(StateName.PET_NAME)  # "our new dog": not the one on file
        return False
    if len(pets) == 1 and len(t.customer.pets) == 1:
        use_pet(t, pets[0])  # their only pet: named in the summary, where it can be corrected
        return True
    await t.go(StateName.CHOOSE_PET if pets else StateName.PET_NAME)
    return False


async def _new_pet_made(t: Turn) -> bool:
    """A new pet put on file once its species (and a dog's size, when prices differ) is known;
    False when a question was asked."""
    d = t.draft
    if not d.species:
        implied = _implied_species(t)
        if implied is None:
            await t.go(StateName.PET_SPECIES)
            return False
        d.species = implied
    _resolve_bath(t, d.species)
    if d.species == "dog" and not d.size and _needs_size(t):
        await t.go(StateName.PET_SIZE)
        return False
    assert d.pet_name is not None and d.species is not None
    new_pet = await t.engine.customers.add_pet(
        t.customer.id, name=d.pet_name, species=d.species, size=d.size, breed=d.breed or ""
    )
    await _reload_customer(t)
    d.pet_id = d.created_pet = new_pet.id
    t.say(t.t("info.new_pet", pet=new_pet.name))
    return True


async def _sized_service(t: Turn, pet: PetView | None) -> bool:
    """A category ("a bath") becomes the service for the pet's size; never a guessed size."""
    d = t.draft
    assert d.category is not None
    size = (pet.size if pet else None) or d.size
    if size is None and _needs_size(t) and (pet is None or pet.species == "dog"):
        await t.go(StateName.PET_SIZE)  # never guess a size (and a price) for a dog we do not know
        return False
    service_id = _service_for_pet(t, d.category, size, pet.species if pet else d.species)
    d.category = None
    if service_id is None:
        await t.go(StateName.CHOOSE_SERVICE)
        return False
    d.service = service_id
    return True


async def _service_fits_species(t: Turn, pet: PetView | None) -> bool:
    """A service for another species becomes this species' own, or the customer is told."""
    d = t.draft
    assert d.service is not None
    service = t.shop.services[d.service]
    species = pet.species if pet else d.species
    if not species or not service.species or species in service.species:
        return True
    other = _same_kind_for_species(t, d.service, species)
    if other is not None:
        d.service = other
        return True
    t.say(t.t("info.not_for_species", service=t.service_name(d.service), species=t.t(f"species.{species}")))
    d.service = None
    await t.go(StateName.CHOOSE_SERVICE)
    return False


def _resolve_bath(t: Turn, species: str | None) -> None:
    """ "A bath" becomes the dog bath (by size) or the cat bath once the species is known."""
    d = t.draft
    if not d.bath or d.service or d.category or species is None:
        return
    from bot.engine.intents import bath_for_species

    mention = bath_for_species("bath", t.shop, species)
    if mention is not None:
        d.service, d.category = mention.service_id, mention.category
    d.bath = False


def _same_kind_for_species(t: Turn, service_id: str, species: str) -> str | None:
    """A dog bath asked for a cat is the cat bath: the same kind of service for that species."""
    words = ("bath", "洗澡")
    current = t.shop.services[service_id]
    if not any(w in current.name.en.lower() or w in current.name.zh for w in words):
        return None
    for sid, s in t.shop.services.items():
        if species in s.species and any(w in s.name.en.lower() or w in s.name.zh for w in words):
            return sid
    return None


async def refuse_unvaccinated(t: Turn) -> None:
    pet = t.pet(t.draft.pet_id)
    t.say(t.t("info.not_vaccinated", pet=pet.name if pet else ""), [t.button("btn.human", "m:human")])
    t.settle()


async def introduce_pet(t: Turn, frame: Frame) -> bool:
    """A new pet described before anything is asked ("hi, I have a little shih tzu called Pepper,
    5kg, fully vaccinated in july"): put on file with what was said, greeted by name; the next
    request ("can she get a bath tomorrow?") is then for that pet. False when the message asks or
    requests something, or says too little about the pet."""
    from core.pets import BREEDS

    name = frame.new_pet_name
    if t.shop.kind != "pet" or not name or frame.pet is not None or frame.question or frame.service_named:
        return False
    if frame.intents & {Intent.BOOK, Intent.AVAILABILITY, Intent.RESCHEDULE, Intent.CANCEL_BOOKING}:
        return False
    if not (frame.names_pet or (frame.breed and (frame.size or frame.vaccinated is not None))):
        return False  # "我家狗狗怕吹风机" says something about a dog; it names none
    species = frame.species or (BREEDS[frame.breed][0] if frame.breed in BREEDS else None)
    if species not in ("dog", "cat") or any(p.name.lower() == name.lower() for p in t.customer.pets):
        return False
    size = frame.size or (BREEDS[frame.breed][1] if frame.breed in BREEDS else None)
    await t.engine.customers.add_pet(
        t.customer.id,
        name=name,
        species=species,
        size=size if species == "dog" else None,
        breed=frame.breed or "",
        vaccinated_on=frame.vaccinated_on if frame.vaccinated else None,
    )
    await _reload_customer(t)
    t.say(t.t("info.new_pet", pet=name))
    await t.reprompt()
    return True


async def _reload_customer(t: Turn) -> None:
    t.customer = await t.engine.customers.get(t.customer.id) or t.customer


async def _wanted_day(t: Turn) -> None:
    """A day (and maybe a time) the customer named before we asked for it."""
    d = t.draft
    assert d.want_day is not None
    day = date.fromisoformat(d.want_day)
    at = time.fromisoformat(d.want_time) if d.want_time else None
    d.want_day = d.want_time = None
    await pick_day(t, day, at=at, period=d.period)


def compatible_pets(t: Turn) -> list[PetView]:
    species = _implied_species(t)
    return [p for p in t.customer.pets if species is None or p.species == species]


def _implied_species(t: Turn) -> str | None:
    d, shop = t.draft, t.shop
    if d.species:
        return d.species
    if d.category:
        members = [s for s in shop.services.values() if s.category == d.category]
    elif d.service:
        members = [shop.services[d.service]]
    else:
        members = []
    species = {sp for s in members for sp in s.species}
    return species.pop() if len(species) == 1 else None


def _needs_size(t: Turn) -> bool:
    d = t.draft
    if d.category:
        return any(s.pet_size for s in t.shop.services.values() if s.category == d.category)
    return False


async def eye_result(t: Turn) -> None:
    """ "我的验光结果" / "my results": the customer's latest exam in plain words (only to them)."""
    from core.eye_records import eye_summary, latest_eye_record, recall_for

    record = await latest_eye_record(t.engine.db, t.shop_id, t.customer.id)
    if record is None:
        t.say(t.t("info.no_eye_result"))
        return
    t.say(eye_summary(record, t.lang, recall_on=recall_for(t.shop, record)))


def price_of_named(t: Turn, frame: Frame) -> bool:
    """ "可乐洗一次澡多少钱呀" / "how much is a bath for Biscuit?": the price of that very service,
    from config (a known pet's size picks the bath), with its add-ons; False when it is not one service."""
    from bot.engine.intents import bath_for_species

    pet = frame.pet
    mention = frame.service
    if mention is None and frame.bath and pet is not None and pet.species:
        mention = bath_for_species("bath", t.shop, pet.species)
    service_id = mention.service_id if mention else None
    if service_id is None and mention is not None and mention.category and pet is not None:
        service_id = _service_for_pet(t, mention.category, pet.size, pet.species)
    if service_id is None and mention is not None and mention.category and frame.size:
        service_id = _service_for_pet(t, mention.category, frame.size, frame.species)  # "a medium-sized dog"
    if service_id is None or service_id not in t.shop.services:
        return False
    service = t.shop.services[service_id]
    addons = [a for a in frame.addons if a in t.shop.addons]
    total = service.price + sum((t.shop.addons[a].price for a in addons), Decimal(0))
    pet_text = f"（{pet.name}）" if pet is not None and t.lang == "zh" else (f" for {pet.name}" if pet else "")
    minutes = service.duration_min + sum(t.shop.addons[a].duration_min for a in addons)
    if addons:  # "with the coat conditioner": each price, then the total
        parts = " + ".join(
            f"{t.shop.addons[a].name.get(t.lang)} {price_text(t, t.shop.addons[a].price)}" for a in addons
        )
        t.say(
            t.t(
                "info.price_of_addons",
                service=t.service_name(service_id),
                pet=pet_text,
                price=price_text(t, service.price),
                addons=parts,
                total=price_text(t, total),
                minutes=minutes,
            )
        )
        return True
    t.say(
        t.t(
            "info.price_of",
            service=t.service_name(service_id),
            pet=pet_text,
            price=price_text(t, total),
            minutes=service.duration_min,
        )
    )
    return True


def day_hours(t: Turn, day: date) -> None:
    """ "Are you open on Sunday?" / "周三下午有空吗": that day's opening hours from config, and an
    offer to book that day (the day is kept for the request that follows)."""
    ranges = t.shop.hours_on(day)
    label = t.day_text(day)
    if ranges:
        t.say(t.t("info.day_open", day=label, hours=", ".join(str(r) for r in ranges)))
    else:
        t.say(t.t("info.day_closed", day=label, hours=opening_hours_text(t.shop, t.lang)))


def _service_for_pet(t: Turn, category: str, size: str | None, species: str | None) -> str | None:
    members: dict[str | None, str] = {s.pet_size: sid for sid, s in t.shop.services.items() if s.category == category}
    if not members:
        return None
    if size is None:
        return None
    return members.get(size)


# ------------------------------------------------------------------------- days and times


def _addons_for_slots(t: Turn) -> list[str]:
    d = t.draft
    return [*d.addons, *([d.add_addon] if d.add_addon else [])]


async def free_slots(t: Turn, day: date) -> list[Slot]:
    d = t.draft
    exclude = d.booking_id if d.mode == Mode.RESCHEDULE else None
    assert d.service is not None
    return await t.engine.bookings.free_slots(
        t.shop_id, d.service, day, addons=_addons_for_slots(t), exclude_booking=exclude, staff_id=_staff_wish(t)
    )


def _staff_wish(t: Turn) -> str | None:
    d = t.draft
    return d.staff if d.mode == Mode.BOOK and d.staff and d.service in t.shop.staff[d.staff].services else None


async def open_days(t: Turn, start: date, count: int) -> tuple[list[date], bool]:
    """The next ``count`` days from ``start`` with a free slot, and whether more exist."""
    d = t.draft
    exclude = d.booking_id if d.mode == Mode.RESCHEDULE else None
    assert d.service is not None
    return await t.engine.bookings.days_with_slots(
        t.shop_id,
        d.service,
        start,
        count,
        addons=_addons_for_slots(t),
        exclude_booking=exclude,
        staff_id=_staff_wish(t),
    )


def day_buttons(t: Turn, days: list[date]) -> list[Button]:
    lang: Lang = "en" if t.lang == "en" else "zh"
    return [Button(format_day_label(d, t.today, lang), f"d:{d.isoformat()}") for d in days]


async def pick_day(t: Turn, day: date, *, at: time | None = None, period: str | None = None) -> None:
    """Take a day the customer chose (by button or text); explain when it cannot be booked."""
    d = t.draft
    rules = t.shop.booking
    if day < t.today:
        t.say(t.t("info.past_day"))
        await t.go(StateName.CHOOSE_DAY, push=False)
        return
    if day > t.today + timedelta(days=rules.horizon_days):
        t.say(t.t("info.too_far", days=rules.horizon_days))
        await t.go(StateName.CHOOSE_DAY, push=False)
        return
    if not t.shop.hours_on(day):
        t.say(t.t("info.closed_day", day=t.day_text(day)))
        await t.go(StateName.CHOOSE_DAY, push=False)
        return
    wish = _staff_wish(t)
    if wish and not t.shop.staff[wish].shifts.get(WEEKDAYS[day.weekday()]):
        t.say(t.t("info.staff_off_day", staff=t.staff_name(wish), day=t.day_text(day)))
        await t.go(StateName.CHOOSE_DAY, push=False)
        return
    slots = await free_slots(t, day)
    if not slots:
        join = (
            []
            if d.mode == Mode.RESCHEDULE
            else [Button(t.t("waitlist.join", day=t.day_text(day)), f"wl:{day}:{period or ''}")]
        )
        t.say(t.t("info.no_times_day", day=t.day_text(day)), join)
        await t.go(StateName.CHOOSE_DAY, push=False)
        return
    d.day = day.isoformat()
    d.start = None
    d.alternatives = []
    if period:
        d.period = period
    if d.asked_time == "earliest" and at is None:
        d.asked_time = None
        tz = t.shop.tz
        later = [s for s in slots if not d.after or s.start.astimezone(tz).time() >= time.fromisoformat(d.after)]
        in_period = [s for s in later if d.period and period_of(s.start.astimezone(tz).time()) == d.period]
        d.start = (in_period or later or slots)[0].start.isoformat()  # "下午……最早那个": the afternoon's first
        await advance(t)
        return
    if at is not None:
        start = to_utc(day, at.hour * 60 + at.minute, t.shop.tz)
        if any(s.start == start for s in slots):
            d.start = start.isoformat()
            await advance(t)
            return
        nearest = sorted(slots, key=lambda s: abs((s.start - start).total_seconds()))[:3]
        d.alternatives = [slot_payload(s.start) for s in sorted(nearest, key=lambda s: s.start)]
        times = t.t("format.list_sep").join(
            s.start.astimezone(t.shop.tz).strftime("%H:%M") for s in sorted(nearest, key=lambda s: s.start)
        )  # said in the text too, not only on the buttons
        if start < t.now + timedelta(minutes=rules.lead_time_min):
            t.say(t.t("info.too_soon", hours=_hours(rules.lead_time_min), times=times))
        elif wish:
            staff = t.staff_name(wish)
            clock = at.strftime("%H:%M")
            t.say(t.t("info.staff_time_not_free", staff=staff, time=clock, day=t.day_text(day), times=times))
        else:
            t.say(t.t("info.time_not_free", time=at.strftime("%H:%M"), day=t.day_text(day), times=times))
        await t.go(StateName.CHOOSE_TIME)
        return
    await advance(t)


def time_buttons(t: Turn, slots: list[Slot], *, with_day: bool = False) -> list[Button]:
    tz = t.shop.tz
    buttons = []
    for slot in slots:
        local = slot.start.astimezone(tz)
        label = t.when(slot.start) if with_day else local.strftime("%H:%M")
        buttons.append(Button(label, slot_payload(slot.start)))
    return buttons


def period_counts(t: Turn, slots: list[Slot]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for slot in slots:
        period = period_of(slot.start.astimezone(t.shop.tz).time())
        counts[period] = counts.get(period, 0) + 1
    return counts


async def pick_slot(t: Turn, start: datetime) -> None:
    d = t.draft
    d.start = start.isoformat()
    d.day = start.astimezone(t.shop.tz).date().isoformat()
    d.alternatives = []
    await advance(t)


# ------------------------------------------------------------------------- hold and confirm


async def hold(t: Turn) -> None:
    d = t.draft
    assert d.start is not None and d.service is not None
    start = datetime.fromisoformat(d.start)
    request = BookingRequest(
        t.shop_id,
        d.service,
        start,
        customer_id=t.customer.id,
        pet_id=d.pet_id,
        addons=tuple(d.addons),
        staff_id=_staff_wish(t),
    )
    result = await t.engine.bookings.hold(request, actor(t))
    if isinstance(result, Booked):
        d.hold_id = result.booking.id
        if d.autoconfirm:
            await confirm(t)
            return
        await t.go(StateName.CONFIRM)
        return
    d.autoconfirm = False
    await explain_failure(t, result)


async def explain_failure(t: Turn, result: BookingResult) -> None:
    """Taken: apologise and offer the nearest free times; not allowed: say why."""
    d = t.draft
    d.start = None
    if isinstance(result, Taken):
        if result.alternatives:
            d.alternatives = [slot_payload(s.start) for s in result.alternatives]
            t.say(t.t("booked.taken"))
            await t.go(StateName.CHOOSE_TIME, push=False)
        else:
            d.day = None
            t.say(t.t("booked.taken_none"))
            await t.go(StateName.CHOOSE_DAY, push=False)
        return
    assert isinstance(result, NotAllowed)
    t.say(t.t("booked.failed", reason=reason_text(t, result)))
    d.day = None
    await t.go(StateName.CHOOSE_DAY, push=False)


def reason_text(t: Turn, result: NotAllowed) -> str:
    rules = t.shop.booking
    match result.reason:
        case Reason.TOO_SOON:
            return t.t("reason.too_soon", hours=_hours(rules.lead_time_min))
        case Reason.TOO_FAR:
            return t.t("reason.too_far", days=rules.horizon_days)
        case Reason.CLOSED:
            return t.t("reason.closed")
        case Reason.OUTSIDE_HOURS:
            return t.t("reason.outside_hours")
        case Reason.STAFF_NOT_WORKING:
            return t.t("reason.staff_not_working")
        case _:
            return t.t("reason.other")


def _hours(minutes: int) -> str:
    return f"{minutes / 60:g}"


async def pick_first_free(t: Turn, day: date, options: tuple[time, ...]) -> None:
    """ "11 or 2, the earlier one if it's free": the first of the times asked for that is free."""
    free = {s.start for s in await free_slots(t, day)}
    for at in options:
        start = to_utc(day, at.hour * 60 + at.minute, t.shop.tz)
        if start in free:
            t.draft.start = start.isoformat()
            await advance(t)
            return
    await pick_day(t, day, at=options[0])  # none free: the nearest times are offered


async def offer_relative(t: Turn, direction: str) -> bool:
    """ "anything earlier?" at the summary or under the times: that day's free times before (or
    after) the one chosen, else the ones shown; False when no day is chosen yet."""
    d = t.draft
    if not d.day:
        return False
    day = date.fromisoformat(d.day)
    offered = [s for p in t.data.get("buttons", []) if p.startswith("s:") and (s := slot_from_payload(p))]
    if d.start:
        ref = datetime.fromisoformat(d.start)
    elif offered:
        ref = min(offered) if direction == "earlier" else max(offered)
    else:
        return False
    await release_hold(t)
    slots = await free_slots(t, day)
    if direction == "earlier":
        found = [s for s in slots if s.start < ref][-MAX_TIME_BUTTONS:]
    else:
        found = [s for s in slots if s.start > ref][:MAX_TIME_BUTTONS]
    d.start = None
    d.period = None
    d.after = None
    d.asked_time = None
    if not found:
        key = "info.none_earlier" if direction == "earlier" else "info.none_later"
        t.say(t.t(key, day=t.day_text(day), time=ref.astimezone(t.shop.tz).strftime("%H:%M")))
        d.alternatives = []
    else:
        d.alternatives = [slot_payload(s.start) for s in found]
    await t.go(StateName.CHOOSE_TIME, push=False)
    return True


async def release_hold(t: Turn) -> None:
    d = t.draft
    if d.hold_id:
        await t.engine.bookings.cancel(t.shop_id, int(d.hold_id), actor(t), reason="customer left the confirmation")
        d.hold_id = None


async def confirm(t: Turn) -> None:
    d = t.draft
    assert d.hold_id is not None
    pet_id, vaccinated, following, addons = d.pet_id, d.vaccinated, list(d.next_pets), list(d.addons)
    people = list(d.next_people)
    result = await t.engine.bookings.confirm(t.shop_id, int(d.hold_id), actor(t))
    if isinstance(result, Booked):
        b = result.booking
        if vaccinated and pet_id is not None:
            pet = t.pet(pet_id)
            if pet is not None and not vaccination_valid(t, pet):
                await _record_vaccination(t, pet_id)
        link = await calendar_link(t, b)
        t.say(booked_text(t, b), [t.button("btn.my_bookings", "m:my"), *_notice_offer(t)], link=link)
        repeat = Recurrence.from_json(d.recurrence) if d.recurrence else None
        if repeat is not None:  # the other visits, each under the same guarantee, told one by one
            reply = await continue_series(t.engine.bookings, b, repeat, t.lang)
            for message in reply.messages:
                t.say(message.text, list(message.buttons))
        t.settle()
        t.data["topic"] = {
            "service": b.service_id,
            "pet_id": b.pet_id,
            "day": b.start.astimezone(t.shop.tz).date().isoformat(),
            "at": t.now.isoformat(),
        }
        if following:
            await _book_next_pet(t, b, following, addons)
        elif people:
            await _book_next_person(t, b, people)
        return
    d.hold_id = None
    await explain_failure(t, result)


async def _book_next_person(t: Turn, booked: BookingView, people: list[str]) -> None:
    """"Me and my son both need eye exams": once the first is booked, the next person's (the
    child's or the adult's exam), the same day and time, with its own summary and yes."""
    d = t.draft
    d.mode = Mode.BOOK
    d.service = booked.service_id  # an exam becomes the child's or the adult's one in advance()
    d.child = people[0] == "child"
    d.next_people = people[1:]
    local = booked.start.astimezone(t.shop.tz)
    d.want_day, d.want_time = local.date().isoformat(), local.strftime("%H:%M")
    t.say(t.t("info.next_person"))
    await advance(t)


async def _book_next_pet(t: Turn, booked: BookingView, following: list[int], addons: list[str]) -> None:
    """"Baths for max and bella": once the first is booked, the next pet's booking, the same kind
    of service (sized for this pet), day and time, with its own summary and yes."""
    pet = t.pet(following[0])
    if pet is None:
        return
    service = t.shop.services[booked.service_id]
    d = t.draft
    d.mode = Mode.BOOK
    if service.species and pet.species not in service.species:  # a dog's bath, then the cat's bath
        d.service = _same_kind_for_species(t, booked.service_id, pet.species)
    elif service.category:
        d.category = service.category
    else:
        d.service = booked.service_id
    use_pet(t, pet)
    d.next_pets = following[1:]
    d.addons = addons
    local = booked.start.astimezone(t.shop.tz)
    d.want_day, d.want_time = local.date().isoformat(), local.strftime("%H:%M")
    t.say(t.t("info.next_pet", pet=pet.name))
    await advance(t)


async def calendar_link(t: Turn, b: BookingView) -> tuple[str, str] | None:
    """ "Add to calendar": the booking's private .ics link (None without a public server URL)."""
    from core.calendar import CalendarService

    service = getattr(t.engine, "calendar", None)
    if service is None:
        service = CalendarService(t.engine.db, t.engine.config, t.engine.clock)
        t.engine.calendar = service
    url = await service.booking_link(t.shop_id, b.code)
    return (t.t("calendar.add"), url) if url else None


def booked_text(t: Turn, b: BookingView) -> str:
    """The truthful answer to a booking: confirmed, or a request waiting for the shop."""
    key = "booked.pending" if b.status == BookingStatus.PENDING else "booked.confirmed"
    return t.t(
        key,
        code=b.code,
        service=t.service_name(b.service_id),
        when=t.when(b.start),
        address=t.shop.address.get(t.lang),
        price=price_text(t, Money(b.price_cents).amount),
        closing=t.t(f"closing.{t.shop.kind}"),
    )


def _notice_offer(t: Turn) -> list[Button]:
    return [] if t.customer.notices else [t.button("notices.offer", "n:on")]


def draft_summary(t: Turn, draft: Draft) -> str:
    """What a saved draft would book (service, pet, time, price), before anything is held."""
    lines = []
    if draft.service and draft.service in t.shop.services:
        icon = "👓" if t.shop.kind == "optician" else "✂️"
        lines.append(t.t("summary.service", icon=icon, service=t.service_name(draft.service)))
        addons = [a for a in draft.addons if a in t.shop.addons]
        if addons:
            names = [t.shop.addons[a].name.get(t.lang) for a in addons]
            lines.append(t.t("summary.addons", addons=t.texts.join(names)))
        pet = t.pet(draft.pet_id)
        if pet is not None:
            lines.append(t.t("summary.pet", pet=pet.name))
        if draft.start:
            lines.append(t.t("summary.when", when=t.when(datetime.fromisoformat(draft.start))))
        price = t.shop.services[draft.service].price + sum(t.shop.addons[a].price for a in addons)
        lines.append(t.t("summary.price", price=price_text(t, float(price))))
    return "\n".join(lines)


def summary(t: Turn, booking: BookingView) -> str:
    icon = "👓" if t.shop.kind == "optician" else "✂️"
    lines = [t.t("summary.title"), t.t("summary.service", icon=icon, service=t.service_name(booking.service_id))]
    if booking.addons:
        names = [
            f"{t.shop.addons[a].name.get(t.lang)} +{addon_price(t, a)}" for a in booking.addons if a in t.shop.addons
        ]
        lines.append(t.t("summary.addons", addons=t.texts.join(names)))
    pet = t.pet(booking.pet_id)
    if pet is not None:
        lines.append(t.t("summary.pet", pet=pet.name))
    lines.append(t.t("summary.when", when=t.when(booking.start)))
    if booking.staff_id:
        lines.append(t.t("summary.staff", staff=t.shop.staff[booking.staff_id].name.get(t.lang)))
    lines.append(t.t("summary.price", price=price_text(t, Money(booking.price_cents).amount)))
    lines.append(t.t("summary.address", address=t.shop.address.get(t.lang)))
    lines.append(t.t("summary.held", minutes=t.shop.booking.hold_ttl_min))
    if t.shop.services[booking.service_id].confirmation == "staff":
        lines.append(t.t("summary.approval"))
    following = [p.name for p in map(t.pet, t.draft.next_pets) if p is not None]
    if following:
        lines.append(t.t("summary.next_pets", pets=t.texts.join(following)))
    if t.draft.next_people:
        lines.append(t.t("summary.next_people", count=len(t.draft.next_people)))
    return "\n".join(lines)


# ------------------------------------------------------------------------- existing bookings


async def upcoming(t: Turn) -> list[BookingView]:
    return await t.engine.bookings.upcoming(t.shop_id, t.customer.id)


async def start_manage(
    t: Turn,
    action: Action | None,
    frame: Frame | None = None,
    addon: str | None = None,
    shift: int | None = None,
    *,
    the_only: bool = False,
) -> None:
    """Show the customer's bookings, or the one meant (``the_only``: the only one on file is meant)."""
    await release_hold(t)
    t.clear_draft()
    d = t.draft
    d.mode, d.action = Mode.MANAGE, action
    if addon:
        d.add_addon = addon
    if shift is None and frame is not None and action == Action.RESCHEDULE:
        shift = frame.shift_minutes  # "下周六有事，能往后挪一天吗": the day named is the booking's
    moving = frame is not None and action == Action.RESCHEDULE and shift is None
    target = _new_when(t, frame) if frame is not None and moving else None
    if frame is not None and target is not None and target.date is not None:
        d.want_day = target.date.isoformat()
        d.want_time = target.time.strftime("%H:%M") if target.time else None
        d.period = target.period
        if not target.time and (frame.same_time or not target.period):
            d.asked_time = "same"  # "move it to Tuesday": the same time, named in the confirmation
    bookings = await upcoming(t)
    chosen = pick_booking(t, bookings, frame) if frame is not None else None
    refers = the_only or (frame is not None and frame.has_day_or_reference)
    if chosen is None and len(bookings) == 1 and (action or refers):
        chosen = bookings[0]
    if chosen is not None and frame is not None and target is not None and shift is None:
        _aim_move(t, frame, target, chosen)
    if chosen is not None and shift is not None:
        moved = chosen.start + timedelta(minutes=shift)
        local = moved.astimezone(t.shop.tz)
        d.want_day, d.want_time = local.date().isoformat(), local.strftime("%H:%M")
    if chosen is not None and action:
        await run_action(t, chosen)
        return
    if chosen is not None and frame is not None and not action and _asks_about_it(frame):
        tell_booking(t, chosen)  # "我周三约的验光是几点来着？" / "how much will my appointment cost?"
        return
    if chosen is not None and (frame is not None or the_only):
        d.booking_id = chosen.id
        await t.go(StateName.BOOKING_ACTIONS)
        return
    await t.go(StateName.MY_BOOKINGS)


def _asks_about_it(frame: Frame) -> bool:
    """A question about a booking (its time, its status, its price), not a wish to change it."""
    from bot.engine.understanding import status_question

    changes = frame.has(Intent.RESCHEDULE) or frame.has(Intent.CANCEL_BOOKING) or frame.has(Intent.ADD_ADDON)
    asks_when = frame.wh_question and frame.has(Intent.MY_BOOKINGS)  # "what time is rocky's appointment?"
    return not changes and (frame.price_question or asks_when or status_question(frame.norm))


def pending_mark(t: Turn, b: BookingView) -> str:
    """ " (awaiting confirmation)" for a request the shop has not approved yet, else ""."""
    return t.t("manage.pending_mark") if b.status == BookingStatus.PENDING else ""


def booking_line(t: Turn, b: BookingView) -> str:
    """ "K9JBG2 · Dog bath (small) · Thu 26 Nov, 11:00 (awaiting confirmation)"."""
    service = t.service_name(b.service_id)
    return t.t("manage.line", code=b.code, service=service, when=t.when(b.start), status=pending_mark(t, b))


def tell_booking(t: Turn, b: BookingView) -> None:
    """One booking as it stands: code, service, time, whether it awaits the shop, its price."""
    price = t.t("summary.price", price=price_text(t, Money(b.price_cents).amount))
    t.say(f"{booking_line(t, b)}\n{price}", [t.button("btn.my_bookings", "m:my")])
    t.settle()


MOVE_CUES = ("改到", "改成", "换到", "挪到", "推到", "调到", "改为", " to ", "move it to", "instead")


def _aim_move(t: Turn, frame: Frame, target: Any, booking: BookingView) -> None:
    """Where a move goes, read against the booking itself: "to 4pm same day" is that day; the
    booking's own day said without a move cue ("周六豆豆的预约想改一下时间") only names the booking;
    "the following Sunday" of a Sunday booking is a week later; a move to the very same time is
    no move (the day or time is asked instead)."""
    d = t.draft
    own = booking.start.astimezone(t.shop.tz)
    lowered = frame.text.lower()
    cue = any(c in lowered for c in MOVE_CUES)
    day = target.date
    if day is None and target.time is not None:
        day = own.date()  # "push it to 4pm (same day)"
    if day is None:
        return
    if day == own.date() and target.time is None and not cue and not target.period:
        d.want_day = d.want_time = None  # the day names the booking, not where it goes
        d.asked_time = None
        return
    if day <= own.date() and _FOLLOWING.search(lowered):
        day += timedelta(days=7 * ((own.date() - day).days // 7 + 1))  # "the following Sunday"
    same_time = target.time is None and (frame.same_time or d.asked_time == "same")
    at = target.time or (own.time() if same_time else None)
    if day == own.date() and at is not None and at.replace(second=0) == own.time().replace(second=0, microsecond=0):
        d.want_day = d.want_time = None  # "move it to Sunday 11:00" when it is Sunday 11:00: which time, then?
        return
    d.want_day = day.isoformat()
    d.want_time = at.strftime("%H:%M") if at is not None else None
    d.period = target.period


SAME_DAY_WORDS = ("same day", "that day", "同一天", "那天", "当天", "同一日")  # "that day": a day already in the chat
_FOLLOWING = re.compile(r"\bfollowing\b|\bthe week after\b|下一个|再下一个|之后的那个|后面那个")


def _new_when(t: Turn, frame: Frame) -> Any:
    """Where a reschedule goes: "把11月28日的预约改到11月29日下午3点" -> 29 Nov 15:00."""
    from bot.engine.understanding import _when

    text = frame.text
    lowered = text.lower()
    for cue in MOVE_CUES:
        at = lowered.rfind(cue)
        if at >= 0:
            rest = text[at + len(cue) :]
            instead_of = cue == "instead" and rest.lstrip().lower().startswith("of ")
            after = _when(rest, t.today, t.lang) if not instead_of else None  # "at 11 instead of 10": 10 is the old
            if after is not None and after.found:
                return after
            if cue == "instead":  # "something came up saturday, can we do sunday instead?": before the cue
                before = _when(re.split(r"[,.;!?，。；！？]", text[:at])[-1], t.today, t.lang)
                if before.found:
                    return before
    return frame.when


def _booking_day(t: Turn, frame: Frame) -> date | None:
    """The day a message names for the booking on file (before any "改到" / "to")."""
    from bot.engine.understanding import _when

    if t.draft.action != Action.RESCHEDULE:
        return frame.when.date
    lowered = frame.text.lower()
    for cue in MOVE_CUES:
        at = lowered.rfind(cue)
        if at > 0:
            return _when(frame.text[:at], t.today, t.lang).date
    return None


def pick_booking(t: Turn, bookings: list[BookingView], frame: Frame | None) -> BookingView | None:
    """The booking a message points at: its code, or the only one on a named day, of a named pet
    or service ("周日孩子那个验光"); None when the message does not single one out."""
    if frame is None or not bookings:
        return None
    if frame.booking_code:
        found = next((b for b in bookings if b.code == frame.booking_code), None)
        if found:
            return found
    candidates = bookings
    day = _booking_day(t, frame)
    filters: list[Any] = []
    if day is not None:
        filters.append(lambda b: b.start.astimezone(t.shop.tz).date() == day)
    if frame.pet is not None:
        pet_id = frame.pet.id
        filters.append(lambda b: b.pet_id == pet_id)
    if frame.child is not None and t.shop.kind == "optician":
        child = _child_service(t)
        filters.append(lambda b: (b.service_id == child) == bool(frame.child))
    elif frame.service is not None:
        mention = frame.service
        filters.append(
            lambda b: b.service_id == mention.service_id
            or bool(mention.category and t.shop.services[b.service_id].category == mention.category)
        )
    for keep in filters:
        narrowed = [b for b in candidates if keep(b)]
        if narrowed:
            candidates = narrowed
    if len(candidates) == 1 and filters:
        return candidates[0]
    return None


async def run_action(t: Turn, booking: BookingView) -> None:
    d = t.draft
    d.booking_id = booking.id
    action = d.action
    if booking.status not in ACTIVE_STATUSES:
        t.say(t.t("manage.not_active"))
        t.settle()
        return
    left = booking.start - t.now
    phone = t.shop.phone or ""
    rules = t.shop.booking
    if action == Action.RESCHEDULE:
        if left < timedelta(minutes=rules.reschedule_cutoff_min):
            t.say(
                t.t("manage.reschedule_too_late", hours=_hours(rules.reschedule_cutoff_min), phone=phone),
                [t.button("btn.human", "m:human")],
            )
            t.settle()
            return
        d.mode, d.service = Mode.RESCHEDULE, booking.service_id
        d.duration = booking.duration_min
        if d.want_day and not d.want_time and d.asked_time == "same":
            d.want_time = booking.start.astimezone(t.shop.tz).strftime("%H:%M")
        if not d.want_day:  # a day already named goes straight to "move it from ... to ...?"
            t.say(t.t("manage.reschedule_day", service=t.service_name(booking.service_id), when=t.when(booking.start)))
        await advance(t)
    elif action == Action.CANCEL:
        if left < timedelta(minutes=rules.cancel_cutoff_min) and booking.status != BookingStatus.HELD:
            t.say(
                t.t("manage.cancel_too_late", hours=_hours(rules.cancel_cutoff_min), phone=phone),
                [t.button("btn.human", "m:human")],
            )
            t.settle()
            return
        await t.go(StateName.CANCEL_CONFIRM)
    elif action == Action.ADDON:
        if d.add_addon:
            await t.go(StateName.ADDON_CONFIRM)
            return
        await t.go(StateName.ADDON_CHOOSE)
    else:
        await t.go(StateName.BOOKING_ACTIONS)


async def booking_of(t: Turn) -> BookingView | None:
    booking_id = t.draft.booking_id
    if booking_id is None:
        return None
    booking = await t.engine.bookings.get(t.shop_id, int(booking_id))
    return booking if booking is not None and booking.customer_id == t.customer.id else None


def addon_price(t: Turn, addon_id: str) -> str:
    return price_text(t, t.shop.addons[addon_id].price)


async def do_reschedule(t: Turn) -> None:
    d = t.draft
    assert d.start is not None and d.booking_id is not None
    start = datetime.fromisoformat(d.start)
    result = await t.engine.bookings.reschedule(t.shop_id, int(d.booking_id), start, actor(t), add_addon=d.add_addon)
    if isinstance(result, Booked):
        b = result.booking
        if d.add_addon:
            t.say(_addon_added(t, b, d.add_addon))
        else:
            t.say(t.t("manage.rescheduled", code=b.code, when=t.when(b.start)), link=await calendar_link(t, b))
        t.settle()
        return
    if isinstance(result, NotAllowed) and result.reason == Reason.CUTOFF_PASSED:
        t.say(
            t.t(
                "manage.reschedule_too_late",
                hours=_hours(t.shop.booking.reschedule_cutoff_min),
                phone=t.shop.phone or "",
            )
        )
        t.settle()
        return
    await explain_failure(t, result)


def _addon_added(t: Turn, b: BookingView, addon_id: str) -> str:
    return t.t(
        "manage.addon_added",
        addon=t.shop.addons[addon_id].name.get(t.lang) if addon_id in t.shop.addons else addon_id,
        price=addon_price(t, addon_id) if addon_id in t.shop.addons else "",
        total=price_text(t, Money(b.price_cents).amount),
        service=t.service_name(b.service_id),
        when=t.when(b.start),
        end=b.end.astimezone(t.shop.tz).strftime("%H:%M"),
    )


async def do_addon(t: Turn, addon_id: str) -> None:
    d = t.draft
    booking = await booking_of(t)
    if booking is None:
        t.say(t.t("manage.not_active"))
        t.settle()
        return
    result = await t.engine.bookings.add_addon(t.shop_id, booking.id, addon_id, actor(t))
    name = t.shop.addons[addon_id].name.get(t.lang) if addon_id in t.shop.addons else addon_id
    if isinstance(result, Booked):
        t.say(_addon_added(t, result.booking, addon_id))
        t.settle()
        return
    if isinstance(result, Taken):
        if not result.alternatives:
            t.say(t.t("manage.addon_no_fit", addon=name))
            t.settle()
            return
        d.mode, d.service, d.add_addon = Mode.RESCHEDULE, booking.service_id, addon_id
        d.duration = booking.duration_min + t.shop.addons[addon_id].duration_min
        d.alternatives = [slot_payload(s.start) for s in result.alternatives]
        d.day = booking.start.astimezone(t.shop.tz).date().isoformat()
        t.say(t.t("manage.addon_no_fit", addon=name))
        await t.go(StateName.CHOOSE_TIME)
        return
    assert isinstance(result, NotAllowed)
    if result.reason in (Reason.ADDON_ALREADY_ADDED, Reason.ADDON_NOT_OFFERED, Reason.UNKNOWN_ADDON):
        t.say(t.t("manage.addon_none_left"))
    else:
        t.say(t.t("manage.not_active"))
    t.settle()


# ------------------------------------------------------------------------- people and the FAQ


async def escalate(t: Turn, *, route: str | None, reason: str) -> None:
    """Hand the conversation to staff; the engine stays silent until they hand it back."""
    await release_hold(t)
    t.clear_draft()
    t.conv.state = StateName.IDLE.value
    t.conv.mode = ConversationMode.HANDOFF
    await handoff.hand_to_staff(
        t.engine.store, t.conv.id, route=route or t.data.get("route"), reason=reason, shop_id=t.shop_id, shop=t.shop
    )  # the staff alert rides in the same transaction (bot/usecases/handoff.py)
    t.say(t.t("handoff.to_staff", eta=_eta(t)))


def _eta(t: Turn) -> str:
    """When staff reply: now when the shop is open, else when it next opens (core/opening.py)."""
    state = open_state(t.shop, t.now)
    if state.open or state.opens_at is None:
        return t.t("handoff.open_now")
    return t.t("handoff.closed_now", when=t.when(state.opens_at))


def faq_answer_text(t: Turn, entry: Any) -> str:
    """An FAQ answer in the customer's language, shop facts filled in from config."""
    return render_facts(entry.answer.for_language(t.lang), t.shop, t.lang) + "".join(
        f"\n{link}" for link in entry.links
    )


# A question the FAQ is fairly sure of (its calibrated score: the estimated chance the best entry is
# right) is answered the way a receptionist would, with the next-best entry when it is as likely
# ("do I need to bring the vaccine book?" is about what to bring AND about vaccination), instead of
# "did you mean" buttons; below this the customer picks.
LIKELY = 75.0
LIKELY_OUT_OF_FLOW = 85.0
LIKELY_MARGIN = 12.0  # a second entry this close to the best is answered too


def _answers(matcher: FaqMatcher, result: MatchResult, text: str, *, in_flow: bool) -> list[FaqEntry]:
    """The FAQ entries to answer with outright: none when the customer should pick (also when a
    vague question, "价格" / "how much", fits two entries equally: which one is asked).

    In the middle of a flow a question is about the visit being booked, so a likely entry is
    answered; out of the blue ("Can you repair my car?" scores 83 on glasses repairs) the bar is higher.
    """
    if result.decision == "answer" and result.entry is not None:
        return [] if _vague_tie(result, text) else [result.entry]
    likely = LIKELY if in_flow else LIKELY_OUT_OF_FLOW
    if result.decision != "suggest" or not result.candidates or result.candidates[0].score < likely:
        return []
    best, *rest = result.candidates
    chosen = [best]
    if rest and rest[0].score >= best.score - LIKELY_MARGIN:
        if rest[0].score < LIKELY or _vague(text):
            return []  # two readings, only one of them likely, or too few words to tell: the customer picks
        chosen.append(rest[0])
    entries = [matcher.faq.entry(c.id) for c in chosen]
    return [e for e in entries if e is not None]


def _vague_tie(result: MatchResult, text: str) -> bool:
    """ "how much?" / "价格" scoring two entries alike: which one is meant is asked, not guessed."""
    cands = result.candidates
    if result.decision != "answer" or len(cands) < 2:
        return False
    return cands[1].score >= cands[0].score - VAGUE_TIE and _vague(text)


VAGUE_TIE = 3.0  # points: two entries this close on a few words are one question with two readings


def _answer_in_context(matcher: FaqMatcher, result: MatchResult, text: str, context: str) -> list[FaqEntry]:
    """The entry a question asked mid-flow means when read with the flow's topic ("what counts as
    medium?" at the size question): only one the question alone already ranks near the top, and
    only when the reading is likely and clearly ahead (the topic chooses; it does not answer)."""
    if not context or not result.candidates:
        return []
    own = {c.id: c.score for c in result.candidates}
    top = result.candidates[0].score
    read = matcher.match(f"{text} {context}")
    if not read.candidates:
        return []
    best, *rest = read.candidates
    if own.get(best.id, -1.0) < max(CONTEXT_OWN_FLOOR, top - CONTEXT_SLACK) or best.score < LIKELY:
        return []
    if rest and rest[0].score >= best.score - LIKELY_MARGIN:
        return []
    entry = matcher.faq.entry(best.id)
    return [entry] if entry is not None else []


CONTEXT_OWN_FLOOR = 30.0  # the question alone must point at the entry this much
CONTEXT_SLACK = 15.0  # and rank it about as high as its own best reading


def _vague(text: str) -> bool:
    norm = normalise(text)
    return len(norm.split()) < 3 if norm.isascii() else len(norm.replace(" ", "")) < 5


async def _health_worry(t: Turn, matcher: FaqMatcher, result: MatchResult, text: str) -> bool:
    """A symptom the FAQ is not sure of: the likeliest entry that hands over to staff is said, and
    staff take the chat (a receptionist does not make a worried customer pick from buttons)."""
    ranked = [*result.candidates, *(c for c in matcher.scores(text) if c.score > 0)]  # then the whole FAQ
    for candidate in ranked:
        entry = matcher.faq.entry(candidate.id)
        if entry is not None and entry.handoff and candidate.score >= HEALTH_FLOOR:
            t.say(faq_answer_text(t, entry))
            await escalate(t, route=entry.route, reason=f"faq:{entry.id}")
            return True
    return False


HEALTH_FLOOR = 0.5  # a health entry this unlikely is not said (staff still get a symptom below)


async def take_complaint(t: Turn, text: str) -> None:
    """A complaint goes to staff at once: the FAQ entry for it when one answers outright and hands
    over ("the groomer cut my dog's ear"), else an apology; never a booking or "did you mean"."""
    matcher = t.engine.faq_matcher(t.shop_id)
    if matcher is not None:
        result = matcher.match(text)
        entry = next((e for e in _answers(matcher, result, text, in_flow=False) if e.handoff), None)
        if entry is not None:
            t.say(faq_answer_text(t, entry))
            await escalate(t, route=entry.route, reason=f"faq:{entry.id}")
            return
    t.say(t.t("handoff.sorry"))
    await escalate(t, route=None, reason="complaint")


async def answer_from_faq(t: Turn, text: str, *, only_answer: bool = False, health: bool = False) -> bool:
    """Answer, suggest or record the question; False when the FAQ has nothing at all.

    ``only_answer``: an answer or nothing (a question in the middle of a flow that the FAQ cannot
    answer outright may still be an answer to the open question).
    """
    matcher = t.engine.faq_matcher(t.shop_id)
    if matcher is None:
        return False
    result = matcher.match(text)
    entries = _answers(matcher, result, text, in_flow=t.state != StateName.IDLE)
    for context in [] if entries else question_contexts(t):
        entries = _answer_in_context(matcher, result, text, context)
        if entries:
            break
    # an open question ("how much?" answered with a choice) is read with the next fragment ("for a cat bath")
    t.data.pop("faq_open", None)
    choice = not entries and (result.decision == "suggest" or _vague_tie(result, text))
    if (len(entries) > 1 or choice) and not only_answer:
        t.data["faq_open"] = {"text": text[:200], "at": t.now.isoformat()}
    if entries:
        await say_answers(t, entries)
        return True
    if only_answer:
        return False
    if health and await _health_worry(t, matcher, result, text):
        return True
    if choice and result.candidates:
        t.say(t.t("faq.suggest"), [_suggestion(t, matcher, c.id) for c in result.candidates])
        return True
    if looks_like_question(text) or len(normalise(text)) >= 4:
        await t.engine.record_unanswered(t.shop_id, text, result.entry_id, int(result.score))
    return False


async def say_answers(t: Turn, entries: list[FaqEntry]) -> None:
    """The answers, counted in the reports; an entry that hands over goes to staff, and in a
    flow the open question is asked again."""
    for entry in entries:
        t.say(faq_answer_text(t, entry))
        await record_faq_answer(t.engine.db, t.shop_id, entry.id, t.now)  # counted in the reports
        if entry.route:
            t.data["route"] = entry.route
    handoff = next((e for e in entries if e.handoff), None)
    if handoff is not None:
        await escalate(t, route=handoff.route, reason=f"faq:{handoff.id}")
    elif t.state != StateName.IDLE:
        t.say(t.t("faq.followup"))
        await t.reprompt()


def _suggestion(t: Turn, matcher: FaqMatcher, entry_id: str) -> Button:
    suggested = matcher.faq.entry(entry_id)
    return Button(_question_label(t, suggested) if suggested is not None else entry_id, f"faq:{entry_id}")


def open_faq_question(t: Turn) -> str | None:
    """The question the last reply answered with a choice, while it is recent."""
    asked = t.data.get("faq_open") or {}
    try:
        at = datetime.fromisoformat(asked.get("at", ""))
    except ValueError:
        return None
    return str(asked.get("text") or "") or None if t.now - at <= FAQ_FOLLOW_UP else None


FAQ_FOLLOW_UP = timedelta(minutes=10)


def _question_label(t: Turn, entry: Any) -> str:
    wanted = "zh" if t.lang == "zh" else "en"
    for question in entry.questions:
        if language_of(question) == wanted:
            return _trim(question)
    return _trim(entry.questions[0]) if entry.questions else entry.id


def _trim(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def last_reply_has_buttons(t: Turn) -> bool:
    return any(r.buttons for r in t.out)


def draft_of(data: dict[str, Any]) -> Draft:
    return Draft.from_json(data.get("draft"))


__all__ = ["OutgoingMessage"]
