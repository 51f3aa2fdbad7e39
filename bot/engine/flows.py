"""The steps shared by the dialog states: filling a booking, picking a day and a time, holding,
confirming, managing an existing booking, handing over to staff, answering from the FAQ.

A booking draft is filled in any order (buttons, free text, or one message that says it all);
``advance`` always moves to the first thing still missing, so one-message bookings and
step-by-step bookings run through the same code.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from bot.engine.intents import language_of, looks_like_question, normalise
from bot.engine.turn import Turn
from core.availability import Slot, to_utc
from core.bookings import BookingRequest
from core.messages import Button
from core.models import ACTIVE_STATUSES, BookingStatus, ConversationMode
from core.results import Actor, Booked, BookingResult, BookingView, NotAllowed, Reason, Taken
from core.when import format_day_label, period_of

MAX_DAY_BUTTONS = 6
MAX_TIME_BUTTONS = 12
BOOK_WORDS = ("预约", "约个", "约一下", "想约", "我要约", "订个", "book", "appointment", "schedule", "reserve")


def actor(t: Turn) -> Actor:
    return Actor.customer(t.customer.id)


def slot_payload(start: datetime) -> str:
    return f"s:{int(start.timestamp()) // 60}"


def slot_from_payload(payload: str) -> datetime | None:
    try:
        minutes = int(payload.split(":", 1)[1])
    except (IndexError, ValueError):
        return None
    from datetime import UTC

    return datetime.fromtimestamp(minutes * 60, tz=UTC)


# ------------------------------------------------------------------------- booking draft


async def start_booking(t: Turn, prefill: dict[str, Any]) -> None:
    await release_hold(t)
    t.clear_draft()
    t.draft.update({k: v for k, v in prefill.items() if v is not None})
    t.draft["mode"] = "book"
    await advance(t)


def _service_duration(t: Turn) -> int:
    d = t.draft
    if d.get("duration"):
        return int(d["duration"])
    return t.engine.bookings.duration_min(t.shop, d["service"], d.get("addons", []))


async def advance(t: Turn) -> None:
    """Go to the first step the draft still needs; hold the slot once everything is known."""
    d = t.draft
    shop = t.shop
    if d.get("mode") == "reschedule":
        if not d.get("day") and d.get("want_day"):
            await _wanted_day(t)
        elif not d.get("day"):
            await t.go("choose_day")
        elif not d.get("start"):
            await t.go("choose_time")
        else:
            await do_reschedule(t)
        return
    if not d.get("service") and not d.get("category"):
        await t.go("choose_service")
        return
    if shop.kind == "pet":
        if not d.get("pet_id"):
            if d.get("pet_name") is None:
                if compatible_pets(t):
                    await t.go("choose_pet")
                else:
                    await t.go("pet_name")
                return
            if not d.get("species"):
                implied = _implied_species(t)
                if implied is None:
                    await t.go("pet_species")
                    return
                d["species"] = implied
            if d["species"] == "dog" and not d.get("size") and _needs_size(t):
                await t.go("pet_size")
                return
            pet = await t.engine.customers.add_pet(
                t.customer.id,
                name=d["pet_name"],
                species=d["species"],
                size=d.get("size"),
                breed=d.get("breed", ""),
            )
            t.customer = await t.engine.customers.get(t.customer.id) or t.customer
            d["pet_id"] = pet.id
            t.say(t.t("info.new_pet", pet=pet.name))
        pet = t.pet(d["pet_id"])
        if pet is not None and d.get("category"):
            service_id = _service_for_pet(t, d["category"], pet.size)
            if service_id is None:
                d.pop("category", None)
                await t.go("choose_service")
                return
            d["service"] = service_id
            d.pop("category", None)
        service = shop.services[d["service"]]
        if pet is not None and service.species and pet.species not in service.species:
            t.say(
                t.t(
                    "info.not_for_species",
                    service=t.service_name(d["service"]),
                    species=t.t(f"species.{pet.species}"),
                )
            )
            d.pop("service", None)
            await t.go("choose_service")
            return
        if service.requires_vaccination and d.get("vaccinated") is None:
            await t.go("vaccination")
            return
    elif d.get("category"):
        d["service"] = next(sid for sid, s in shop.services.items() if s.category == d["category"])
        d.pop("category", None)
    if not d.get("day") and d.get("want_day"):
        await _wanted_day(t)
        return
    if not d.get("day"):
        await t.go("choose_day")
        return
    if not d.get("start"):
        await t.go("choose_time")
        return
    await hold(t)


async def _wanted_day(t: Turn) -> None:
    """A day (and maybe a time) the customer named before we asked for it."""
    d = t.draft
    day = date.fromisoformat(d.pop("want_day"))
    raw_time = d.pop("want_time", None)
    at = time.fromisoformat(raw_time) if raw_time else None
    await pick_day(t, day, at=at, period=d.pop("want_period", None))


def compatible_pets(t: Turn) -> list[Any]:
    species = _implied_species(t)
    return [p for p in t.customer.pets if species is None or p.species == species]


def _implied_species(t: Turn) -> str | None:
    d, shop = t.draft, t.shop
    if d.get("species"):
        return str(d["species"])
    members = (
        [s for s in shop.services.values() if s.category == d["category"]]
        if d.get("category")
        else [shop.services[d["service"]]]
        if d.get("service")
        else []
    )
    species = {sp for s in members for sp in s.species}
    return species.pop() if len(species) == 1 else None


def _needs_size(t: Turn) -> bool:
    d = t.draft
    if d.get("category"):
        return any(s.pet_size for s in t.shop.services.values() if s.category == d["category"])
    return False


def _service_for_pet(t: Turn, category: str, size: str | None) -> str | None:
    members = {s.pet_size: sid for sid, s in t.shop.services.items() if s.category == category}
    if not members:
        return None
    return members.get(size) or members.get("medium") or next(iter(members.values()))


# ------------------------------------------------------------------------- days and times


async def free_slots(t: Turn, day: date) -> list[Slot]:
    d = t.draft
    exclude = d.get("booking_id") if d.get("mode") == "reschedule" else None
    addons = list(d.get("addons", []))
    if d.get("add_addon"):
        addons.append(d["add_addon"])
    return await t.engine.bookings.free_slots(t.shop_id, d["service"], day, addons=addons, exclude_booking=exclude)


async def open_days(t: Turn, start: date, count: int) -> tuple[list[date], bool]:
    """The next ``count`` days from ``start`` with a free slot, and whether more exist."""
    d = t.draft
    exclude = d.get("booking_id") if d.get("mode") == "reschedule" else None
    addons = [*d.get("addons", []), *([d["add_addon"]] if d.get("add_addon") else [])]
    return await t.engine.bookings.days_with_slots(
        t.shop_id, d["service"], start, count, addons=addons, exclude_booking=exclude
    )


def day_buttons(t: Turn, days: list[date]) -> list[Button]:
    lang = "en" if t.lang == "en" else "zh"
    return [Button(format_day_label(d, t.today, lang), f"d:{d.isoformat()}") for d in days]


async def pick_day(t: Turn, day: date, *, at: time | None = None, period: str | None = None) -> None:
    """Take a day the customer chose (by button or text); explain when it cannot be booked."""
    d = t.draft
    rules = t.shop.booking
    if day < t.today:
        t.say(t.t("info.past_day"))
        await t.go("choose_day", push=False)
        return
    if day > t.today + timedelta(days=rules.horizon_days):
        t.say(t.t("info.too_far", days=rules.horizon_days))
        await t.go("choose_day", push=False)
        return
    if not t.shop.hours_on(day):
        t.say(t.t("info.closed_day", day=t.day_text(day)))
        await t.go("choose_day", push=False)
        return
    slots = await free_slots(t, day)
    if not slots:
        join = [] if d.get("mode") == "reschedule" else [Button(t.t("waitlist.join", day=t.day_text(day)), f"wl:{day}")]
        t.say(t.t("info.no_times_day", day=t.day_text(day)), join)
        await t.go("choose_day", push=False)
        return
    d["day"] = day.isoformat()
    d.pop("start", None)
    d.pop("alternatives", None)
    if period:
        d["period"] = period
    if at is not None:
        start = to_utc(day, at.hour * 60 + at.minute, t.shop.tz)
        if any(s.start == start for s in slots):
            d["start"] = start.isoformat()
            await advance(t)
            return
        nearest = sorted(slots, key=lambda s: abs((s.start - start).total_seconds()))[:3]
        d["alternatives"] = [slot_payload(s.start) for s in sorted(nearest, key=lambda s: s.start)]
        if start < t.now + timedelta(minutes=rules.lead_time_min):
            t.say(t.t("info.too_soon", hours=_hours(rules.lead_time_min)))
        else:
            t.say(t.t("info.time_not_free", time=at.strftime("%H:%M"), day=t.day_text(day)))
        await t.go("choose_time")
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
    t.draft["start"] = start.isoformat()
    t.draft["day"] = start.astimezone(t.shop.tz).date().isoformat()
    t.draft.pop("alternatives", None)
    await advance(t)


# ------------------------------------------------------------------------- hold and confirm


async def hold(t: Turn) -> None:
    d = t.draft
    start = datetime.fromisoformat(d["start"])
    request = BookingRequest(
        t.shop_id,
        d["service"],
        start,
        customer_id=t.customer.id,
        pet_id=d.get("pet_id"),
        addons=tuple(d.get("addons", [])),
    )
    result = await t.engine.bookings.hold(request, actor(t))
    if isinstance(result, Booked):
        d["hold_id"] = result.booking.id
        await t.go("confirm")
        return
    await explain_failure(t, result)


async def explain_failure(t: Turn, result: BookingResult) -> None:
    """Taken: apologise and offer the nearest free times; not allowed: say why."""
    d = t.draft
    d.pop("start", None)
    if isinstance(result, Taken):
        if result.alternatives:
            d["alternatives"] = [slot_payload(s.start) for s in result.alternatives]
            t.say(t.t("booked.taken"))
            await t.go("choose_time", push=False)
        else:
            d.pop("day", None)
            t.say(t.t("booked.taken_none"))
            await t.go("choose_day", push=False)
        return
    assert isinstance(result, NotAllowed)
    t.say(t.t("booked.failed", reason=reason_text(t, result)))
    d.pop("day", None)
    await t.go("choose_day", push=False)


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


async def release_hold(t: Turn) -> None:
    hold_id = t.draft.get("hold_id")
    if hold_id:
        await t.engine.bookings.cancel(t.shop_id, int(hold_id), actor(t), reason="customer left the confirmation")
        t.draft.pop("hold_id", None)


async def confirm(t: Turn) -> None:
    d = t.draft
    result = await t.engine.bookings.confirm(t.shop_id, int(d["hold_id"]), actor(t))
    if isinstance(result, Booked):
        b = result.booking
        key = "booked.pending" if b.status == BookingStatus.PENDING else "booked.confirmed"
        t.say(
            t.t(
                key,
                code=b.code,
                service=t.service_name(b.service_id),
                when=t.when(b.start),
                address=t.shop.address.get(t.lang),
            ),
            [t.button("btn.my_bookings", "m:my"), *([] if t.customer.notices else [t.button("notices.offer", "n:on")])],
        )
        t.settle()
        return
    d.pop("hold_id", None)
    await explain_failure(t, result)


def summary(t: Turn, booking: BookingView) -> str:
    icon = "👓" if t.shop.kind == "optician" else "✂️"
    lines = [t.t("summary.title"), t.t("summary.service", icon=icon, service=t.service_name(booking.service_id))]
    pet = t.pet(booking.pet_id)
    if pet is not None:
        lines.append(t.t("summary.pet", pet=pet.name))
    lines.append(t.t("summary.when", when=t.when(booking.start)))
    if booking.staff_id:
        lines.append(t.t("summary.staff", staff=t.shop.staff[booking.staff_id].name.get(t.lang)))
    lines.append(t.t("summary.price", price=t.texts.format_price(booking.price_cents / 100)))
    lines.append(t.t("summary.address", address=t.shop.address.get(t.lang)))
    lines.append(t.t("summary.held", minutes=t.shop.booking.hold_ttl_min))
    if t.shop.services[booking.service_id].confirmation == "staff":
        lines.append(t.t("summary.approval"))
    return "\n".join(lines)


# ------------------------------------------------------------------------- existing bookings


async def upcoming(t: Turn) -> list[BookingView]:
    return await t.engine.bookings.upcoming(t.shop_id, t.customer.id)


async def start_manage(t: Turn, action: str | None, **extra: Any) -> None:
    await release_hold(t)
    t.clear_draft()
    t.draft.update({"mode": "manage", "action": action, **{k: v for k, v in extra.items() if v is not None}})
    bookings = await upcoming(t)
    if action and len(bookings) == 1:
        await run_action(t, bookings[0])
        return
    await t.go("my_bookings")


async def run_action(t: Turn, booking: BookingView) -> None:
    d = t.draft
    d["booking_id"] = booking.id
    action = d.get("action")
    if booking.status not in ACTIVE_STATUSES:
        t.say(t.t("manage.not_active"))
        t.settle()
        return
    left = booking.start - t.now
    phone = t.shop.phone or ""
    rules = t.shop.booking
    if action == "reschedule":
        if left < timedelta(minutes=rules.reschedule_cutoff_min):
            t.say(
                t.t("manage.reschedule_too_late", hours=_hours(rules.reschedule_cutoff_min), phone=phone),
                [t.button("btn.human", "m:human")],
            )
            t.settle()
            return
        d.update(mode="reschedule", service=booking.service_id)
        d["duration"] = booking.duration_min
        t.say(t.t("manage.reschedule_day", service=t.service_name(booking.service_id), when=t.when(booking.start)))
        await advance(t)
    elif action == "cancel":
        if left < timedelta(minutes=rules.cancel_cutoff_min) and booking.status != BookingStatus.HELD:
            t.say(
                t.t("manage.cancel_too_late", hours=_hours(rules.cancel_cutoff_min), phone=phone),
                [t.button("btn.human", "m:human")],
            )
            t.settle()
            return
        await t.go("cancel_confirm")
    elif action == "addon":
        if d.get("addon"):
            await do_addon(t, d["addon"])
            return
        await t.go("addon_choose")
    else:
        await t.go("booking_actions")


async def booking_of(t: Turn) -> BookingView | None:
    booking_id = t.draft.get("booking_id")
    if booking_id is None:
        return None
    booking = await t.engine.bookings.get(t.shop_id, int(booking_id))
    return booking if booking is not None and booking.customer_id == t.customer.id else None


async def do_reschedule(t: Turn) -> None:
    d = t.draft
    start = datetime.fromisoformat(d["start"])
    result = await t.engine.bookings.reschedule(
        t.shop_id, int(d["booking_id"]), start, actor(t), add_addon=d.get("add_addon")
    )
    if isinstance(result, Booked):
        b = result.booking
        if d.get("add_addon"):
            t.say(
                t.t(
                    "manage.addon_added",
                    addon=t.shop.addons[d["add_addon"]].name.get(t.lang),
                    service=t.service_name(b.service_id),
                    when=t.when(b.start),
                    end=b.end.astimezone(t.shop.tz).strftime("%H:%M"),
                )
            )
        else:
            t.say(t.t("manage.rescheduled", code=b.code, when=t.when(b.start)))
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
        b = result.booking
        t.say(
            t.t(
                "manage.addon_added",
                addon=name,
                service=t.service_name(b.service_id),
                when=t.when(b.start),
                end=b.end.astimezone(t.shop.tz).strftime("%H:%M"),
            )
        )
        t.settle()
        return
    if isinstance(result, Taken):
        if not result.alternatives:
            t.say(t.t("manage.addon_no_fit", addon=name))
            t.settle()
            return
        d.update(mode="reschedule", service=booking.service_id, add_addon=addon_id)
        d["duration"] = booking.duration_min + t.shop.addons[addon_id].duration_min
        d["alternatives"] = [slot_payload(s.start) for s in result.alternatives]
        d["day"] = booking.start.astimezone(t.shop.tz).date().isoformat()
        t.say(t.t("manage.addon_no_fit", addon=name))
        await t.go("choose_time")
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
    t.conv.state = "idle"
    t.conv.mode = ConversationMode.HANDOFF
    await t.engine.store.set_mode(
        t.conv.id, ConversationMode.HANDOFF, route=route or t.data.get("route") or "front_desk", reason=reason
    )
    t.say(t.t("handoff.to_staff", eta=_eta(t)))


def _eta(t: Turn) -> str:
    tz = t.shop.tz
    local = t.now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    for r in t.shop.hours_on(local.date()):
        if r.start_min <= minute < r.end_min:
            return t.t("handoff.open_now")
    for offset in range(0, 14):
        day = local.date() + timedelta(days=offset)
        for r in sorted(t.shop.hours_on(day)):
            opening = to_utc(day, r.start_min, tz)
            if opening > t.now:
                return t.t("handoff.closed_now", when=t.when(opening))
    return t.t("handoff.open_now")


async def answer_from_faq(t: Turn, text: str) -> bool:
    """Answer, suggest or record the question; False when the FAQ has nothing at all."""
    matcher = t.engine.faq_matcher(t.shop_id)
    if matcher is None:
        return False
    result = matcher.match(text)
    if result.decision == "answer" and result.entry is not None:
        entry = result.entry
        t.say(entry.answer.for_language(t.lang) + "".join(f"\n{link}" for link in entry.links))
        if entry.route:
            t.data["route"] = entry.route
        if entry.handoff:
            await escalate(t, route=entry.route, reason=f"faq:{entry.id}")
        elif t.conv.state != "idle":
            t.say(t.t("faq.followup"))
            await t.reprompt()
        return True
    if result.decision == "suggest" and result.candidates:
        buttons = []
        for candidate in result.candidates:
            entry = matcher.faq.entry(candidate.id)
            label = _question_label(t, entry) if entry is not None else candidate.id
            buttons.append(Button(label, f"faq:{candidate.id}"))
        t.say(t.t("faq.suggest"), buttons)
        return True
    if looks_like_question(text) or len(normalise(text)) >= 4:
        await t.engine.record_unanswered(t.shop_id, text, result.entry_id, int(result.score))
    return False


def _question_label(t: Turn, entry: Any) -> str:
    wanted = "zh" if t.lang == "zh" else "en"
    for question in entry.questions:
        if language_of(question) == wanted:
            return _trim(question)
    return _trim(entry.questions[0]) if entry.questions else entry.id


def _trim(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def wants_booking(text: str) -> bool:
    norm = normalise(text)
    return any(w in norm for w in BOOK_WORDS)
