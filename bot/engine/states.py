"""The dialog states, an explicit and listable set (``StateName``). Each owns its prompt
(``enter``) and what it understands as the answer to it: ``on_payload`` for buttons,
``on_frame`` for a typed message already turned into a Frame. Returning False means "not an
answer to my question": the policy then fills the booking form from the message, answers a
question from the FAQ, or starts what the message asks for. Global commands (cancel, back,
human, menu, language) are handled by the policy before any state sees the message.

    idle -> choose_service -> choose_pet | pet_name -> pet_species -> pet_size -> vaccination
         -> choose_day -> choose_time -> confirm -> idle
    idle -> my_bookings -> booking_actions -> choose_day -> choose_time -> reschedule_confirm
                                           -> cancel_confirm | addon_choose -> addon_confirm -> idle
    idle (a flow put away while idle too long) -> resume_offer -> confirm | idle
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import ClassVar

from bot.engine import flows, last_visit
from bot.engine.draft import Action, Draft, Mode, StateName
from bot.engine.intents import addon_in, normalise
from bot.engine.turn import Turn
from bot.engine.understanding import Frame, Intent, looks_like_pet_name
from core.availability import Slot
from core.messages import Button
from core.money import Money
from core.results import Taken
from core.when import period_of


class State:
    name: ClassVar[StateName]

    async def enter(self, t: Turn) -> None:
        raise NotImplementedError

    async def on_payload(self, t: Turn, payload: str) -> bool:
        return False

    async def on_frame(self, t: Turn, frame: Frame) -> bool:
        return False

    async def leave(self, t: Turn) -> None:
        """Called when a global command abandons the state (e.g. release a hold)."""


class YesNoState(State):
    """A question answered by the yes/no buttons ("y" / "n") or by typing yes, 是的, 好的, no, 不..."""

    async def on_payload(self, t: Turn, payload: str) -> bool:
        if payload not in ("y", "n"):
            return False
        await self._answer(t, payload == "y")
        return True

    async def on_frame(self, t: Turn, frame: Frame) -> bool:
        if frame.answer is None or frame.question:
            return False
        await self._answer(t, frame.answer)
        return True

    async def _answer(self, t: Turn, yes: bool) -> None:
        raise NotImplementedError


def _yes_no_buttons(t: Turn, yes_key: str = "btn.affirm", no_key: str = "btn.deny") -> list[Button]:
    return [t.button(yes_key, "y"), t.button(no_key, "n")]


class Idle(State):
    name = StateName.IDLE

    async def enter(self, t: Turn) -> None:
        buttons = [
            t.button("btn.book", "m:book"),
            t.button("btn.my_bookings", "m:my"),
            t.button("btn.human", "m:human"),
        ]
        if t.data.get("greeted"):
            t.say(t.t("greeting.menu"), buttons)
            return
        t.data["greeted"] = True
        name = t.customer.display_name
        last = await t.engine.customers.last_visit(t.customer.id, t.now)
        if last is not None and last.service_id in t.shop.services and name:
            addons = [t.shop.addons[a.addon_id].name.get(t.lang) for a in last.addons if a.addon_id in t.shop.addons]
            addons_text = t.t("greeting.addons", addons=t.texts.join(addons)) if addons else ""
            pet = t.pet(last.pet_id)
            service = t.service_name(last.service_id)
            if pet is not None:
                text = t.t("greeting.last_visit_pet", name=name, pet=pet.name, service=service, addons=addons_text)
            else:
                text = t.t("greeting.last_visit", name=name, service=service, addons=addons_text)
            t.say(text, [t.button("btn.same_again", "m:same"), *buttons])
        elif name and (not t.conv.created or (t.customer.pets and _same_script(name, t.lang))):
            # a pet on file: they have been here before (greeted by a name written in the reply's language)
            t.say(t.t("greeting.returning", name=name), buttons)
        else:
            t.say(t.t("greeting.new", shop=t.shop.name.get(t.lang)), buttons)


def _same_script(name: str, lang: str) -> bool:
    return name.isascii() == (lang == "en")


class ChooseService(State):
    name = StateName.CHOOSE_SERVICE

    async def enter(self, t: Turn) -> None:
        noted = t.draft.want_day  # "周六有空位吗": the day is kept while we ask what to book
        day = t.t("info.day_noted", day=t.day_text(date.fromisoformat(noted))) if noted else ""
        among = [s for s in t.draft.among if s in t.shop.services]
        if len(among) > 1:  # "a trim": a haircut or the nails?
            names = [t.service_name(s) for s in among]
            buttons = [Button(name, f"svc:{s}") for s, name in zip(among, names, strict=True)]
            t.say(day + t.t("ask.service_among", first=names[0], second=names[1]), buttons)
            return
        buttons = []
        seen: set[str] = set()
        for service_id, service in t.shop.services.items():
            if service.category and service.category in t.shop.categories:
                if service.category not in seen:
                    seen.add(service.category)
                    buttons.append(Button(t.category_name(service.category), f"cat:{service.category}"))
                continue
            buttons.append(Button(t.service_name(service_id), f"svc:{service_id}"))
        t.say(day + t.t("ask.service"), buttons)

    async def on_payload(self, t: Turn, payload: str) -> bool:
        kind, _, value = payload.partition(":")
        if kind == "svc" and value in t.shop.services:
            t.draft.service, t.draft.category, t.draft.among = value, None, []
        elif kind == "cat" and value in t.shop.categories:
            t.draft.category, t.draft.service = value, None
        else:
            return False
        await flows.advance(t)
        return True


class ChoosePet(State):
    name = StateName.CHOOSE_PET

    async def enter(self, t: Turn) -> None:
        pets = flows.compatible_pets(t)
        buttons = [Button(p.name, f"pet:{p.id}") for p in pets]
        buttons.append(t.button("btn.new_pet", "pet:new"))
        t.say(t.t("ask.pet"), buttons)

    async def on_payload(self, t: Turn, payload: str) -> bool:
        if payload == "pet:new":
            await t.go(StateName.PET_NAME)
            return True
        if payload.startswith("pet:"):
            try:
                pet = t.pet(int(payload[4:]))
            except ValueError:
                return False
            if pet is None:
                return False
            flows.use_pet(t, pet)
            await flows.advance(t)
            return True
        return False

    async def on_frame(self, t: Turn, frame: Frame) -> bool:
        if frame.pet is None and frame.new_pet_name is None and frame.species and not frame.new_pet:
            of_kind = [p for p in flows.compatible_pets(t) if p.species == frame.species]
            if len(of_kind) == 1:  # "狗狗那个" / "the dog": the one pet of that kind on file
                flows.use_pet(t, of_kind[0])
                await flows.advance(t)
                return True
        if frame.pet is None and frame.new_pet_name is None:
            if frame.answer is not None or frame.hesitant:
                return False  # "好" / "嗯" is not a pet's name
            if frame.question or frame.fills_booking or not looks_like_pet_name(frame.text, t.shop):
                return False
            t.draft.pet_name = frame.text.strip()  # a new pet, named in reply to "which pet?"
            await flows.advance(t)
            return True
        return False  # the form picks up the pet (known or new) from the frame


class PetName(State):
    name = StateName.PET_NAME

    async def enter(self, t: Turn) -> None:
        t.say(t.t("ask.pet_name"))

    async def on_frame(self, t: Turn, frame: Frame) -> bool:
        if frame.new_pet_name or frame.pet:
            return False  # "他叫球球" / "it's Max": the form takes it
        name = frame.text.strip()
        first = re.split(r"[,，。.!！;；]", name, maxsplit=1)[0].strip()
        if first != name and first and looks_like_pet_name(first, t.shop) and frame.answer is None:
            t.draft.pet_name = first  # "Max, he's a small one": the name, and the form took the size
            await flows.advance(t)
            return True
        not_a_name = frame.answer is not None or frame.vaccinated is not None or frame.species is not None
        if frame.question or frame.command is not None or frame.when.found or frame.service is not None or not_a_name:
            return False  # a question, a request, a date, a yes: not a name (the form or the FAQ takes it)
        if len(name) > 20 or "\n" in name:
            t.say(t.t("info.pet_name_invalid"))
            return True
        t.draft.pet_name = name
        await flows.advance(t)
        return True


class PetSpecies(State):
    name = StateName.PET_SPECIES

    async def enter(self, t: Turn) -> None:
        pet = t.draft.pet_name or ""
        t.say(t.t("ask.species", pet=pet), [t.button("btn.dog", "sp:dog"), t.button("btn.cat", "sp:cat")])

    async def on_payload(self, t: Turn, payload: str) -> bool:
        if payload in ("sp:dog", "sp:cat"):
            t.draft.species = payload[3:]
            await flows.advance(t)
            return True
        return False


class PetSize(State):
    name = StateName.PET_SIZE

    async def enter(self, t: Turn) -> None:
        t.say(
            t.t("ask.size", pet=t.draft.pet_name or ""),
            [
                t.button("btn.size_small", "sz:small"),
                t.button("btn.size_medium", "sz:medium"),
                t.button("btn.size_large", "sz:large"),
            ],
        )

    async def on_payload(self, t: Turn, payload: str) -> bool:
        if payload in ("sz:small", "sz:medium", "sz:large"):
            t.draft.size = payload[3:]
            await flows.advance(t)
            return True
        return False

    async def on_frame(self, t: Turn, frame: Frame) -> bool:
        if frame.size is None:
            return False
        if frame.breed:
            t.say(t.t("info.size_guess", pet=t.draft.pet_name or "", size=t.t(f"size.{frame.size}")))
        return False  # the form takes the size


class Vaccination(YesNoState):
    name = StateName.VACCINATION

    async def enter(self, t: Turn) -> None:
        pet = t.pet(t.draft.pet_id)
        name = pet.name if pet else (t.draft.pet_name or "")
        expired = await flows.expired_vaccination_prompt(t, pet) if pet else None
        # a record on file that has run out is named with its date ("...expired on 3 May"), kindly
        t.say(expired or t.t("ask.vaccinated", pet=name), _yes_no_buttons(t))

    async def on_frame(self, t: Turn, frame: Frame) -> bool:
        if frame.vaccinated is not None:
            await self._answer(t, frame.vaccinated, frame.vaccinated_on)
            return True
        return await super().on_frame(t, frame)

    async def _answer(self, t: Turn, yes: bool, on: date | None = None) -> None:
        t.draft.vaccinated = yes
        if on is not None:
            t.draft.vaccinated_on = on.isoformat()
        if yes:
            await flows.advance(t)
            return
        await flows.refuse_unvaccinated(t)


class ChooseDay(State):
    name = StateName.CHOOSE_DAY

    async def enter(self, t: Turn) -> None:
        d = t.draft
        start = date.fromisoformat(d.day_from) if d.day_from else t.today
        days, more = await flows.open_days(t, start, flows.MAX_DAY_BUTTONS)
        if d.day_until:  # "周末想验光": Saturday or Sunday is asked, not guessed
            until = date.fromisoformat(d.day_until)
            within = [day for day in days if day <= until]
            d.day_until = None  # "more days" then pages on as usual
            if within:
                days, more = within, True
        if not days:
            t.say(t.t("info.no_days", days=t.shop.booking.horizon_days), [t.button("btn.human", "m:human")])
            return
        if d.asked_time == "earliest" and not d.day_from:  # "earliest you have?": the first free time
            d.day_from = days[0].isoformat()  # asked again (nothing free after all): the days from there
            await flows.pick_day(t, days[0], period=d.period)
            return
        buttons = flows.day_buttons(t, days)
        if more:
            buttons.append(Button(t.t("btn.more_days"), f"dm:{(days[-1] + timedelta(days=1)).isoformat()}"))
        t.say(t.t("ask.day"), buttons)

    async def on_payload(self, t: Turn, payload: str) -> bool:
        kind, _, value = payload.partition(":")
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return False
        if kind == "d":
            await flows.pick_day(t, day, period=t.draft.period)
            return True
        if kind == "dm":
            t.draft.day_from = day.isoformat()
            await t.reprompt()
            return True
        return False

    async def on_frame(self, t: Turn, frame: Frame) -> bool:
        d = t.draft
        if frame.earliest and frame.when.date is None and frame.when.time is None:
            start = date.fromisoformat(d.day_from) if d.day_from else t.today
            days, _ = await flows.open_days(t, start, 1)  # "what's the soonest you can do?": the first free time
            if days:
                d.asked_time = "earliest"
                await flows.pick_day(t, days[0], period=frame.when.period or d.period)
                return True
        if t.draft.mode != Mode.RESCHEDULE:
            return False  # a booking: the form takes the day
        when = frame.when
        if when.date is None:
            if when.period:
                t.draft.period = when.period
            return False
        at = when.time
        keeps_time = frame.same_time or t.draft.asked_time == "same"
        if at is None and when.period is None and keeps_time:
            booking = await flows.booking_of(t)  # "Wednesday then, same time": the booking's own time
            at = booking.start.astimezone(t.shop.tz).time() if booking is not None else None
        await flows.pick_day(t, when.date, at=at, period=when.period)
        return True


class ChooseTime(State):
    name = StateName.CHOOSE_TIME

    async def enter(self, t: Turn) -> None:
        d = t.draft
        alternatives = [s for p in d.alternatives if (s := flows.slot_from_payload(p)) is not None]
        back = Button(t.t("btn.more_days"), "days")
        if alternatives:
            slots = [Slot(s, s) for s in alternatives]
            t.say(t.t("ask.alternatives"), [*flows.time_buttons(t, slots, with_day=True), back])
            return
        assert d.day is not None
        day = date.fromisoformat(d.day)
        slots = await flows.free_slots(t, day)
        if not slots:
            t.say(t.t("info.no_times_day", day=t.day_text(day)))
            d.day = None
            await t.go(StateName.CHOOSE_DAY, push=False)
            return
        if d.after:  # "anytime after 4": the times from then on
            after = time.fromisoformat(d.after)
            later = [s for s in slots if s.start.astimezone(t.shop.tz).time() >= after]
            if later:
                slots = later
                if len(later) <= flows.MAX_TIME_BUTTONS and not d.period:
                    t.say(
                        t.t("ask.time_after", day=t.day_text(day), time=d.after),
                        [*flows.time_buttons(t, later), back],
                    )
                    return
            else:
                t.say(t.t("info.no_times_after", day=t.day_text(day), time=d.after))
                d.after = None
        period = d.period
        if period:
            in_period = [s for s in slots if period_of(s.start.astimezone(t.shop.tz).time()) == period]
            if in_period:
                t.say(
                    t.t("ask.time_period", day=t.day_text(day), period=t.t(f"period.{period}")),
                    [*flows.time_buttons(t, in_period[: flows.MAX_TIME_BUTTONS]), back],
                )
                return
            t.say(t.t("info.no_times_period", day=t.day_text(day), period=t.t(f"period.{period}")))
            d.period = None
        if len(slots) > flows.MAX_TIME_BUTTONS:
            counts = flows.period_counts(t, slots)
            buttons = [Button(f"{t.t(f'btn.{p}')} ({n})", f"p:{p}") for p, n in counts.items()]
            t.say(t.t("ask.time", day=t.day_text(day)), [*buttons, back])
            return
        t.say(t.t("ask.time", day=t.day_text(day)), [*flows.time_buttons(t, slots), back])

    async def on_payload(self, t: Turn, payload: str) -> bool:
        d = t.draft
        if payload.startswith("s:"):
            start = flows.slot_from_payload(payload)
            if start is None:
                return False
            await flows.pick_slot(t, start)
            return True
        if payload.startswith("p:") and payload[2:] in ("morning", "afternoon", "evening"):
            d.period = payload[2:]
            d.alternatives = []
            await t.reprompt()
            return True
        if payload == "days":
            d.day = d.start = d.period = None
            d.alternatives = []
            await t.go(StateName.CHOOSE_DAY, push=False)
            return True
        return False

    async def on_frame(self, t: Turn, frame: Frame) -> bool:
        d = t.draft
        when = frame.when
        if frame.relative and when.date is None and when.time is None and await flows.offer_relative(t, frame.relative):
            return True  # "有没有晚一点的"
        if frame.time_options and d.day and when.date in (None, date.fromisoformat(d.day)):
            await flows.pick_first_free(t, date.fromisoformat(d.day), frame.time_options)  # "11 or 2"
            return True
        if frame.after is not None and d.day and when.date in (None, date.fromisoformat(d.day)):
            await self._times_after(t, date.fromisoformat(d.day), frame.after)  # "anytime after 4"
            return True
        if d.mode != Mode.RESCHEDULE:
            return False  # a booking: the form takes days, times and parts of the day
        if when.date is not None:
            d.alternatives = []
            await flows.pick_day(t, when.date, at=when.time, period=when.period)
            return True
        if when.time is not None and d.day:
            await flows.pick_day(t, date.fromisoformat(d.day), at=when.time)
            return True
        if when.period is not None:
            d.period = when.period
            d.alternatives = []
            await t.reprompt()
            return True
        return False


    async def _times_after(self, t: Turn, day: date, after: time) -> None:
        d = t.draft
        d.after = after.strftime("%H:%M")
        if d.period and period_of(after) != d.period:
            d.period = None
        d.alternatives = []
        await t.reprompt()


def confirm_buttons(t: Turn) -> list[Button]:
    """The summary's choices: confirm, other times, cancel."""
    return [t.button("btn.confirm", "c:ok"), t.button("btn.change_time", "c:other"), t.button("btn.cancel_flow", "x")]


class Confirm(State):
    name = StateName.CONFIRM

    async def enter(self, t: Turn) -> None:
        assert t.draft.hold_id is not None
        booking = await t.engine.bookings.get(t.shop_id, int(t.draft.hold_id))
        if booking is None:  # pragma: no cover - holds are never deleted
            t.settle()
            return
        if await last_visit.ask(t, booking):  # asked once; the summary follows the answer
            return
        t.say(flows.summary(t, booking), confirm_buttons(t))

    async def on_payload(self, t: Turn, payload: str) -> bool:
        if await last_visit.on_payload(t, payload):
            return True
        if payload == "c:ok":
            await flows.confirm(t)
            return True
        if payload == "c:other":
            await self._other_times(t)
            return True
        return False

    async def on_frame(self, t: Turn, frame: Frame) -> bool:
        if await last_visit.on_frame(t, frame):  # a yes/no to "same as last time?"
            return True
        if frame.relative and frame.when.date is None and await flows.offer_relative(t, frame.relative):
            return True  # "anything earlier?"
        if frame.fills_booking or frame.question:
            return False  # a correction ("不对，改周日") or a question: not a yes/no
        if frame.answer is True:
            await flows.confirm(t)
            return True
        if frame.answer is False:
            await self._other_times(t)
            return True
        return False

    async def _other_times(self, t: Turn) -> None:
        await flows.release_hold(t)
        t.draft.start = None
        await t.go(StateName.CHOOSE_TIME, push=False)

    async def leave(self, t: Turn) -> None:
        await flows.release_hold(t)


class MyBookings(State):
    name = StateName.MY_BOOKINGS

    async def enter(self, t: Turn) -> None:
        bookings = await flows.upcoming(t)
        if not bookings:
            t.say(t.t("manage.none"), [t.button("btn.book", "m:book")])
            t.settle()
            return
        lines = [t.t("manage.list")]
        buttons = []
        for b in bookings:
            lines.append(flows.booking_line(t, b))
            buttons.append(Button(f"{t.when(b.start)} {t.service_name(b.service_id)}"[:60], f"b:{b.id}"))
        prompt = "\n".join(lines)
        if t.draft.action:
            prompt += "\n" + t.t("ask.which_booking")
        t.say(prompt, buttons)

    async def on_payload(self, t: Turn, payload: str) -> bool:
        if not payload.startswith("b:"):
            return False
        try:
            booking_id = int(payload[2:])
        except ValueError:
            return False
        booking = next((b for b in await flows.upcoming(t) if b.id == booking_id), None)
        if booking is None:
            return False
        await flows.run_action(t, booking)
        return True

    async def on_frame(self, t: Turn, frame: Frame) -> bool:
        bookings = await flows.upcoming(t)
        norm = normalise(frame.text).upper().replace(" ", "")
        chosen = next((b for b in bookings if b.code in norm), None) or flows.pick_booking(t, bookings, frame)
        if chosen is None:
            return False
        await flows.run_action(t, chosen)
        return True


class BookingActions(State):
    name = StateName.BOOKING_ACTIONS

    async def enter(self, t: Turn) -> None:
        booking = await flows.booking_of(t)
        if booking is None:
            t.say(t.t("manage.not_active"))
            t.settle()
            return
        buttons = [t.button("btn.reschedule", "ba:reschedule"), t.button("btn.cancel_booking", "ba:cancel")]
        if _addons_left(t, booking.service_id, booking.addons):
            buttons.append(t.button("btn.add_service", "ba:addon"))
        status = flows.pending_mark(t, booking)
        t.say(
            t.t(
                "ask.booking_action",
                code=booking.code,
                service=t.service_name(booking.service_id),
                when=t.when(booking.start) + status,  # a request still waiting for the shop says so
            ),
            buttons,
        )

    async def on_payload(self, t: Turn, payload: str) -> bool:
        action = {"ba:reschedule": Action.RESCHEDULE, "ba:cancel": Action.CANCEL, "ba:addon": Action.ADDON}.get(
            payload
        )
        booking = await flows.booking_of(t)
        if action is None or booking is None:
            return False
        t.draft.action = action
        await flows.run_action(t, booking)
        return True


def _addons_left(t: Turn, service_id: str, current: tuple[str, ...]) -> list[str]:
    service = t.shop.services.get(service_id)
    return [a for a in (service.addons if service else []) if a not in current]


class RescheduleConfirm(YesNoState):
    """ "Move <service> <code> from <old> to <new>?": nothing moves without a yes."""

    name = StateName.RESCHEDULE_CONFIRM

    async def enter(self, t: Turn) -> None:
        booking = await flows.booking_of(t)
        d = t.draft
        if booking is None or d.start is None:
            t.say(t.t("manage.not_active"))
            t.settle()
            return
        new = datetime.fromisoformat(d.start)
        free = await flows.free_slots(t, new.astimezone(t.shop.tz).date())
        if not any(s.start == new for s in free):  # taken since it was offered: never confirm a busy time
            nearest = sorted(free, key=lambda s: abs((s.start - new).total_seconds()))[:3]
            await flows.explain_failure(t, Taken(tuple(sorted(nearest, key=lambda s: s.start))))
            return
        if d.add_addon:
            text = t.t(
                "manage.addon_move_confirm",
                addon=t.shop.addons[d.add_addon].name.get(t.lang),
                price=flows.addon_price(t, d.add_addon),
                code=booking.code,
                service=t.service_name(booking.service_id),
                old=t.when(booking.start),
                new=t.when(new),
            )
        else:
            text = t.t(
                "manage.reschedule_confirm",
                code=booking.code,
                service=t.service_name(booking.service_id),
                old=t.when(booking.start),
                new=t.when(new),
            )
        t.say(text, _yes_no_buttons(t, "btn.confirm_change", "btn.keep"))

    async def on_frame(self, t: Turn, frame: Frame) -> bool:
        if frame.when.found and frame.answer is None:
            d = t.draft
            day = frame.when.date or (date.fromisoformat(d.day) if d.day else None)
            if day is None or (frame.when.date is None and frame.when.time is None and frame.when.period is None):
                return False
            only_period = frame.when.date is None and frame.when.time is None
            if only_period and d.start and not frame.question:
                proposed = datetime.fromisoformat(d.start).astimezone(t.shop.tz).time()
                if period_of(proposed) == frame.when.period:
                    await self._answer(t, True)  # "下午都行" to a move at 15:00: that is a yes
                    return True
            d.start = None
            d.alternatives = []
            d.asked_time = None
            # "下午都行": that day's afternoon times are offered (the booking still moves only on a yes)
            await flows.pick_day(t, day, at=frame.when.time, period=frame.when.period)
            return True
        return await super().on_frame(t, frame)

    async def _answer(self, t: Turn, yes: bool) -> None:
        if not yes:
            t.say(t.t("manage.kept"))
            t.settle()
            return
        await flows.do_reschedule(t)


class CancelConfirm(YesNoState):
    name = StateName.CANCEL_CONFIRM

    async def on_frame(self, t: Turn, frame: Frame) -> bool:
        from bot.engine.intents import Command

        if frame.command in (Command.CANCEL_FLOW, Command.CANCEL_BOOKING) and frame.answer is not False:
            await self._answer(t, True)  # "取消" / "cancel it" answers "cancel this booking?"
            return True
        return await super().on_frame(t, frame)

    async def enter(self, t: Turn) -> None:
        booking = await flows.booking_of(t)
        if booking is None:
            t.say(t.t("manage.not_active"))
            t.settle()
            return
        t.say(
            t.t(
                "manage.cancel_confirm",
                service=t.service_name(booking.service_id),
                when=t.when(booking.start),
                code=booking.code,
            ),
            _yes_no_buttons(t, "btn.cancel_booking", "btn.keep"),
        )

    async def _answer(self, t: Turn, yes: bool) -> None:
        booking = await flows.booking_of(t)
        if not yes or booking is None:
            t.say(t.t("manage.kept"))
            t.settle()
            return
        result = await t.engine.bookings.cancel(t.shop_id, booking.id, flows.actor(t), reason="customer in chat")
        if result.ok:
            t.say(t.t("manage.cancelled", code=booking.code))
        else:
            cutoff = t.shop.booking.cancel_cutoff_min
            t.say(
                t.t("manage.cancel_too_late", hours=f"{cutoff / 60:g}", phone=t.shop.phone or ""),
                [t.button("btn.human", "m:human")],
            )
        t.settle()


class AddonChoose(State):
    name = StateName.ADDON_CHOOSE

    async def enter(self, t: Turn) -> None:
        booking = await flows.booking_of(t)
        if booking is None:
            t.say(t.t("manage.not_active"))
            t.settle()
            return
        left = _addons_left(t, booking.service_id, booking.addons)
        if not left:
            t.say(t.t("manage.addon_none_left"))
            t.settle()
            return
        buttons = [
            Button(f"{t.shop.addons[a].name.get(t.lang)} +{flows.addon_price(t, a)}", f"a:{a}") for a in left
        ]
        t.say(t.t("ask.addon", code=booking.code), buttons)

    async def on_payload(self, t: Turn, payload: str) -> bool:
        if not payload.startswith("a:") or payload[2:] not in t.shop.addons:
            return False
        t.draft.add_addon = payload[2:]
        await t.go(StateName.ADDON_CONFIRM)
        return True

    async def on_frame(self, t: Turn, frame: Frame) -> bool:
        addon = frame.addons[0] if frame.addons else addon_in(frame.text, t.shop)
        if addon is None:
            return False
        t.draft.add_addon = addon
        await t.go(StateName.ADDON_CONFIRM)
        return True


class AddonConfirm(YesNoState):
    """ "Add <add-on> (+price, minutes) to <booking>?": the price is said before anything changes."""

    name = StateName.ADDON_CONFIRM

    async def enter(self, t: Turn) -> None:
        booking = await flows.booking_of(t)
        addon_id = t.draft.add_addon
        if booking is None or addon_id is None or addon_id not in t.shop.addons:
            t.say(t.t("manage.not_active"))
            t.settle()
            return
        if addon_id in booking.addons:
            t.say(t.t("manage.addon_already", addon=t.shop.addons[addon_id].name.get(t.lang)))
            t.settle()
            return
        service = t.shop.services.get(booking.service_id)
        if service is None or addon_id not in service.addons:
            t.say(
                t.t(
                    "manage.addon_not_offered",
                    addon=t.shop.addons[addon_id].name.get(t.lang),
                    service=t.service_name(booking.service_id),
                )
            )
            t.settle()
            return
        addon = t.shop.addons[addon_id]
        t.say(
            t.t(
                "manage.addon_confirm",
                addon=addon.name.get(t.lang),
                price=flows.addon_price(t, addon_id),
                minutes=addon.duration_min,
                code=booking.code,
                service=t.service_name(booking.service_id),
                when=t.when(booking.start),
                total=flows.price_text(t, (Money(booking.price_cents) + Money.of(addon.price)).amount),
            ),
            _yes_no_buttons(t, "btn.add_it", "btn.no_thanks"),
        )

    async def _answer(self, t: Turn, yes: bool) -> None:
        addon_id = t.draft.add_addon
        if not yes or addon_id is None:
            t.say(t.t("manage.kept"))
            t.settle()
            return
        t.draft.add_addon = None
        await flows.do_addon(t, addon_id)


class ResumeOffer(YesNoState):
    """A booking put away after a long pause: shown again in full; a yes books it (the time is
    re-checked), new facts ("no, Sunday at 11 instead") correct it, a no starts over."""

    name = StateName.RESUME_OFFER

    async def enter(self, t: Turn) -> None:
        saved = Draft.from_json(t.data.get("resume", {}).get("draft"))
        what = t.service_name(saved.service) if saved.service else ""
        when = ""
        if saved.start:
            when = t.when(datetime.fromisoformat(saved.start))
        text = t.t("resume.offer", service=what, when=when) + "\n" + flows.draft_summary(t, saved)
        t.say(text.rstrip(), _yes_no_buttons(t, "btn.resume", "btn.start_over"))

    async def on_frame(self, t: Turn, frame: Frame) -> bool:
        if frame.fills_booking and frame.answer is not True:
            self._restore(t, autoconfirm=False)
            await flows.apply_frame(t, frame)
            await flows.advance(t)
            return True
        return await super().on_frame(t, frame)

    def _restore(self, t: Turn, *, autoconfirm: bool) -> None:
        saved = t.data.pop("resume", {})
        t.clear_draft()
        draft = Draft.from_json(saved.get("draft"))
        draft.hold_id = None
        draft.autoconfirm = autoconfirm
        if draft.start:  # check the time again (someone may have taken it meanwhile)
            local = datetime.fromisoformat(draft.start).astimezone(t.shop.tz)
            draft.start = None
            draft.day = None
            draft.want_day = local.date().isoformat()
            draft.want_time = local.strftime("%H:%M")
        t._draft = draft

    async def _answer(self, t: Turn, yes: bool) -> None:
        if not yes:
            t.data.pop("resume", None)
            t.settle()
            await t.go(StateName.IDLE, push=False)
            return
        # "yes, book it" books what the offer showed; "继续" / "continue" shows the summary again
        books = any(w in t.msg.text.lower() for w in ("book", "确认", "预约", "约吧", "confirm"))
        self._restore(t, autoconfirm=books)
        await flows.advance(t)


STATES: dict[StateName, State] = {
    state.name: state
    for state in (
        Idle(),
        ChooseService(),
        ChoosePet(),
        PetName(),
        PetSpecies(),
        PetSize(),
        Vaccination(),
        ChooseDay(),
        ChooseTime(),
        Confirm(),
        MyBookings(),
        BookingActions(),
        RescheduleConfirm(),
        CancelConfirm(),
        AddonChoose(),
        AddonConfirm(),
        ResumeOffer(),
    )
}
assert set(STATES) == set(StateName), "every state name has exactly one state"
_ = Intent
