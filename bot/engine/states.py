"""The dialog states, an explicit and listable set. Each owns its prompt (``enter``) and what it
understands (``on_payload`` for buttons, ``on_text`` for typing); returning False means "not
mine", and the engine then tries booking intents and the FAQ. Global commands (cancel, back,
human, menu, language) are handled by the engine before any state sees the message.

    idle -> choose_service -> choose_pet | pet_name -> pet_species -> pet_size -> vaccination
         -> choose_day -> choose_time -> confirm -> idle
    idle -> my_bookings -> booking_actions -> choose_day/choose_time (reschedule)
                                           -> cancel_confirm | addon_choose -> idle
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import ClassVar

from bot.engine import flows
from bot.engine.intents import addon_in, bath_for_species, normalise, pet_in, service_in, when_in, yes_no
from bot.engine.turn import Turn
from core.availability import Slot
from core.messages import Button
from core.pets import breed_in, size_in, species_in
from core.when import period_of


class State:
    name: ClassVar[str]

    async def enter(self, t: Turn) -> None:
        raise NotImplementedError

    async def on_payload(self, t: Turn, payload: str) -> bool:
        return False

    async def on_text(self, t: Turn, text: str) -> bool:
        return False

    async def leave(self, t: Turn) -> None:
        """Called when a global command abandons the state (e.g. release a hold)."""


class YesNoState(State):
    """A question answered by the yes/no buttons ("y" / "n") or by typing yes, 是的, no, 不..."""

    async def on_payload(self, t: Turn, payload: str) -> bool:
        if payload not in ("y", "n"):
            return False
        await self._answer(t, payload == "y")
        return True

    async def on_text(self, t: Turn, text: str) -> bool:
        answer = yes_no(text)
        if answer is None:
            return False
        await self._answer(t, answer)
        return True

    async def _answer(self, t: Turn, yes: bool) -> None:
        raise NotImplementedError


class Idle(State):
    name = "idle"

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
            t.data["same_again"] = {
                "service": last.service_id,
                "pet_id": last.pet_id,
                "addons": [a.addon_id for a in last.addons],
            }
            t.say(text, [t.button("btn.same_again", "m:same"), *buttons])
        elif name and not t.conv.created:
            t.say(t.t("greeting.returning", name=name), buttons)
        else:
            t.say(t.t("greeting.new", shop=t.shop.name.get(t.lang)), buttons)

    async def on_payload(self, t: Turn, payload: str) -> bool:
        if payload == "m:same" and t.data.get("same_again"):
            same = dict(t.data["same_again"])
            if same.get("pet_id") is not None:
                same["vaccinated"] = None
            await flows.start_booking(t, same)
            return True
        return False


class ChooseService(State):
    name = "choose_service"

    async def enter(self, t: Turn) -> None:
        buttons: list[Button] = []
        seen: set[str] = set()
        for service_id, service in t.shop.services.items():
            if service.category and service.category in t.shop.categories:
                if service.category not in seen:
                    seen.add(service.category)
                    buttons.append(Button(t.category_name(service.category), f"cat:{service.category}"))
                continue
            buttons.append(Button(t.service_name(service_id), f"svc:{service_id}"))
        t.say(t.t("ask.service"), buttons)

    async def on_payload(self, t: Turn, payload: str) -> bool:
        kind, _, value = payload.partition(":")
        if kind == "svc" and value in t.shop.services:
            t.draft["service"] = value
        elif kind == "cat" and value in t.shop.categories:
            t.draft["category"] = value
        else:
            return False
        await flows.advance(t)
        return True

    async def on_text(self, t: Turn, text: str) -> bool:
        species = species_in(text)
        mention = service_in(text, t.shop) or bath_for_species(text, t.shop, species)
        if mention is None:
            return False
        if mention.service_id:
            t.draft["service"] = mention.service_id
        else:
            t.draft["category"] = mention.category
        if species and not t.draft.get("species"):
            t.draft["species"] = species
        await flows.advance(t)
        return True


class ChoosePet(State):
    name = "choose_pet"

    async def enter(self, t: Turn) -> None:
        pets = flows.compatible_pets(t)
        buttons = [Button(p.name, f"pet:{p.id}") for p in pets]
        buttons.append(t.button("btn.new_pet", "pet:new"))
        t.say(t.t("ask.pet"), buttons)

    async def on_payload(self, t: Turn, payload: str) -> bool:
        if payload == "pet:new":
            await t.go("pet_name")
            return True
        if payload.startswith("pet:"):
            try:
                pet = t.pet(int(payload[4:]))
            except ValueError:
                return False
            if pet is None:
                return False
            _use_pet(t, pet.id)
            await flows.advance(t)
            return True
        return False

    async def on_text(self, t: Turn, text: str) -> bool:
        pet = pet_in(text, t.customer.pets)
        if pet is None:
            return False
        _use_pet(t, pet.id)
        await flows.advance(t)
        return True


def _use_pet(t: Turn, pet_id: int) -> None:
    pet = t.pet(pet_id)
    if pet is None:
        return
    t.draft.update(pet_id=pet.id, pet_name=pet.name, species=pet.species, size=pet.size)


class PetName(State):
    name = "pet_name"

    async def enter(self, t: Turn) -> None:
        t.say(t.t("ask.pet_name"))

    async def on_text(self, t: Turn, text: str) -> bool:
        name = text.strip()
        if not name or len(name) > 20 or any(c in name for c in "?？!！,，。.\n"):
            if len(name) > 20 or "\n" in name:
                t.say(t.t("info.pet_name_invalid"))
                return True
            return False
        t.draft["pet_name"] = name
        await flows.advance(t)
        return True


class PetSpecies(State):
    name = "pet_species"

    async def enter(self, t: Turn) -> None:
        pet = t.draft.get("pet_name", "")
        t.say(t.t("ask.species", pet=pet), [t.button("btn.dog", "sp:dog"), t.button("btn.cat", "sp:cat")])

    async def on_payload(self, t: Turn, payload: str) -> bool:
        if payload in ("sp:dog", "sp:cat"):
            t.draft["species"] = payload[3:]
            await flows.advance(t)
            return True
        return False

    async def on_text(self, t: Turn, text: str) -> bool:
        species = species_in(text)
        if species is None:
            return False
        t.draft["species"] = species
        breed = breed_in(text)
        if breed:
            t.draft["breed"] = breed
            size = size_in(text)
            if size:
                t.draft["size"] = size
        await flows.advance(t)
        return True


class PetSize(State):
    name = "pet_size"

    async def enter(self, t: Turn) -> None:
        t.say(
            t.t("ask.size", pet=t.draft.get("pet_name", "")),
            [
                t.button("btn.size_small", "sz:small"),
                t.button("btn.size_medium", "sz:medium"),
                t.button("btn.size_large", "sz:large"),
            ],
        )

    async def on_payload(self, t: Turn, payload: str) -> bool:
        if payload in ("sz:small", "sz:medium", "sz:large"):
            t.draft["size"] = payload[3:]
            await flows.advance(t)
            return True
        return False

    async def on_text(self, t: Turn, text: str) -> bool:
        size = size_in(text)
        if size is None:
            return False
        breed = breed_in(text)
        if breed:
            t.draft["breed"] = breed
            t.say(t.t("info.size_guess", pet=t.draft.get("pet_name", ""), size=t.t(f"size.{size}")))
        t.draft["size"] = size
        await flows.advance(t)
        return True


class Vaccination(YesNoState):
    name = "vaccination"

    async def enter(self, t: Turn) -> None:
        pet = t.pet(t.draft.get("pet_id"))
        t.say(
            t.t("ask.vaccinated", pet=pet.name if pet else ""),
            [t.button("btn.affirm", "y"), t.button("btn.deny", "n")],
        )

    async def _answer(self, t: Turn, yes: bool) -> None:
        if yes:
            t.draft["vaccinated"] = True
            await flows.advance(t)
            return
        pet = t.pet(t.draft.get("pet_id"))
        t.say(t.t("info.not_vaccinated", pet=pet.name if pet else ""), [t.button("btn.human", "m:human")])
        t.settle()


class ChooseDay(State):
    name = "choose_day"

    async def enter(self, t: Turn) -> None:
        start = date.fromisoformat(t.draft["day_from"]) if t.draft.get("day_from") else t.today
        days, more = await flows.open_days(t, start, flows.MAX_DAY_BUTTONS)
        if not days:
            t.say(t.t("info.no_days", days=t.shop.booking.horizon_days), [t.button("btn.human", "m:human")])
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
            await flows.pick_day(t, day)
            return True
        if kind == "dm":
            t.draft["day_from"] = day.isoformat()
            await t.reprompt()
            return True
        return False

    async def on_text(self, t: Turn, text: str) -> bool:
        when = when_in(text, t.today)
        if when.date is None:
            if when.period:
                t.draft["period"] = when.period
            return False
        await flows.pick_day(t, when.date, at=when.time, period=when.period)
        return True


class ChooseTime(State):
    name = "choose_time"

    async def enter(self, t: Turn) -> None:
        d = t.draft
        alternatives = [s for p in d.get("alternatives", []) if (s := flows.slot_from_payload(p)) is not None]
        back = Button(t.t("btn.more_days"), "days")
        if alternatives:
            slots = [Slot(s, s) for s in alternatives]
            t.say(t.t("ask.alternatives"), [*flows.time_buttons(t, slots, with_day=True), back])
            return
        day = date.fromisoformat(d["day"])
        slots = await flows.free_slots(t, day)
        if not slots:
            t.say(t.t("info.no_times_day", day=t.day_text(day)))
            d.pop("day", None)
            await t.go("choose_day", push=False)
            return
        period = d.get("period")
        if period:
            in_period = [s for s in slots if period_of(s.start.astimezone(t.shop.tz).time()) == period]
            if in_period:
                t.say(
                    t.t("ask.time_period", day=t.day_text(day), period=t.t(f"period.{period}")),
                    [*flows.time_buttons(t, in_period[: flows.MAX_TIME_BUTTONS]), back],
                )
                return
            t.say(t.t("info.no_times_period", day=t.day_text(day), period=t.t(f"period.{period}")))
            d.pop("period", None)
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
            d["period"] = payload[2:]
            d.pop("alternatives", None)
            await t.reprompt()
            return True
        if payload == "days":
            for key in ("day", "period", "alternatives", "start"):
                d.pop(key, None)
            await t.go("choose_day", push=False)
            return True
        return False

    async def on_text(self, t: Turn, text: str) -> bool:
        d = t.draft
        when = when_in(text, t.today)
        if when.date is not None:
            d.pop("alternatives", None)
            await flows.pick_day(t, when.date, at=when.time, period=when.period)
            return True
        if when.time is not None and d.get("day"):
            await flows.pick_day(t, date.fromisoformat(d["day"]), at=when.time)
            return True
        if when.period is not None:
            d["period"] = when.period
            d.pop("alternatives", None)
            await t.reprompt()
            return True
        return False


class Confirm(State):
    name = "confirm"

    async def enter(self, t: Turn) -> None:
        booking = await t.engine.bookings.get(t.shop_id, int(t.draft["hold_id"]))
        if booking is None:  # pragma: no cover - holds are never deleted
            t.settle()
            return
        t.say(
            flows.summary(t, booking),
            [t.button("btn.confirm", "c:ok"), t.button("btn.change_time", "c:other"), t.button("btn.cancel_flow", "x")],
        )

    async def on_payload(self, t: Turn, payload: str) -> bool:
        if payload == "c:ok":
            await flows.confirm(t)
            return True
        if payload == "c:other":
            await self._other_times(t)
            return True
        return False

    async def on_text(self, t: Turn, text: str) -> bool:
        answer = yes_no(text)
        if answer is True:
            await flows.confirm(t)
            return True
        if answer is False:
            await self._other_times(t)
            return True
        return False

    async def _other_times(self, t: Turn) -> None:
        await flows.release_hold(t)
        t.draft.pop("start", None)
        await t.go("choose_time", push=False)

    async def leave(self, t: Turn) -> None:
        await flows.release_hold(t)


class MyBookings(State):
    name = "my_bookings"

    async def enter(self, t: Turn) -> None:
        bookings = await flows.upcoming(t)
        if not bookings:
            t.say(t.t("manage.none"), [t.button("btn.book", "m:book")])
            t.settle()
            return
        lines = [t.t("manage.list")]
        buttons = []
        for b in bookings:
            status = t.t("manage.pending_mark") if b.status == "pending" else ""
            line = t.t(
                "manage.line", code=b.code, service=t.service_name(b.service_id), when=t.when(b.start), status=status
            )
            lines.append(line)
            buttons.append(Button(f"{t.when(b.start)} {t.service_name(b.service_id)}"[:60], f"b:{b.id}"))
        prompt = "\n".join(lines)
        if t.draft.get("action"):
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

    async def on_text(self, t: Turn, text: str) -> bool:
        norm = normalise(text).upper().replace(" ", "")
        for booking in await flows.upcoming(t):
            if booking.code in norm:
                await flows.run_action(t, booking)
                return True
        return False


class BookingActions(State):
    name = "booking_actions"

    async def enter(self, t: Turn) -> None:
        booking = await flows.booking_of(t)
        if booking is None:
            t.say(t.t("manage.not_active"))
            t.settle()
            return
        buttons = [t.button("btn.reschedule", "ba:reschedule"), t.button("btn.cancel_booking", "ba:cancel")]
        if _addons_left(t, booking.service_id, booking.addons):
            buttons.append(t.button("btn.add_service", "ba:addon"))
        t.say(
            t.t(
                "ask.booking_action",
                code=booking.code,
                service=t.service_name(booking.service_id),
                when=t.when(booking.start),
            ),
            buttons,
        )

    async def on_payload(self, t: Turn, payload: str) -> bool:
        action = {"ba:reschedule": "reschedule", "ba:cancel": "cancel", "ba:addon": "addon"}.get(payload)
        booking = await flows.booking_of(t)
        if action is None or booking is None:
            return False
        t.draft["action"] = action
        await flows.run_action(t, booking)
        return True


def _addons_left(t: Turn, service_id: str, current: tuple[str, ...]) -> list[str]:
    service = t.shop.services.get(service_id)
    return [a for a in (service.addons if service else []) if a not in current]


class CancelConfirm(YesNoState):
    name = "cancel_confirm"

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
            [t.button("btn.cancel_booking", "y"), t.button("btn.keep", "n")],
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
    name = "addon_choose"

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
        buttons = [Button(t.shop.addons[a].name.get(t.lang), f"a:{a}") for a in left]
        t.say(t.t("ask.addon", code=booking.code), buttons)

    async def on_payload(self, t: Turn, payload: str) -> bool:
        if not payload.startswith("a:") or payload[2:] not in t.shop.addons:
            return False
        await flows.do_addon(t, payload[2:])
        return True

    async def on_text(self, t: Turn, text: str) -> bool:
        addon = addon_in(text, t.shop)
        if addon is None:
            return False
        await flows.do_addon(t, addon)
        return True


STATES: dict[str, State] = {
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
        CancelConfirm(),
        AddonChoose(),
    )
}
