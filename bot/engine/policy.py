"""The dialog policy: what the engine does with one message, in named steps (patterns).

A pressed button (or its number typed) goes to the global button table, then to the current
state. Typed text is first understood (bot/engine/understanding.py: one Frame, whatever the
state), then:

1. language: the language the customer writes in wins over the channel's hint;
2. stale flow: a flow left idle longer than the shop's ``flow_idle_min`` is put away (its hold
   released); a later "hi" is offered to resume it, any request starts fresh;
3. global commands (cancel, back, human, menu, my bookings, reschedule, cancel booking, notices,
   language): checked once here, never re-declared by states;
4. a new request never continues an old one: asking for a new booking while a reschedule or
   cancel is open starts a new booking (the existing booking is left alone);
5. the current state's answer (yes/no, a pet's name, a picked booking...);
6. the booking form: any booking fact fills its slot, a different one replaces it (correction);
7. digression: a question is answered from the FAQ and the open question is asked again;
8. intents that start something (book, same as last time, add-on, availability);
9. the FAQ for anything else; then one clarifying question with buttons (in idle, a second
   miss in a row hands over to staff).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.engine import flows, last_visit
from bot.engine.draft import Action, Draft, Mode, StateName
from bot.engine.intents import Command, normalise
from bot.engine.states import STATES, confirm_buttons
from bot.engine.turn import Turn
from bot.engine.understanding import HELP_WORDS, Frame, Intent, ordinal_choice, understand
from bot.notice_texts import compose_shop_change
from bot.usecases import notices, series
from core import ratings
from core.models import BookingStatus
from core.results import Actor, Booked
from core.when import parse_when

MISUNDERSTOOD_LIMIT = 2
RESUMABLE = (
    StateName.CONFIRM,
    StateName.CHOOSE_TIME,
    StateName.RESCHEDULE_CONFIRM,
    StateName.ADDON_CONFIRM,
    StateName.CANCEL_CONFIRM,
)
ASK_AGAIN = (StateName.RESCHEDULE_CONFIRM, StateName.ADDON_CONFIRM, StateName.CANCEL_CONFIRM)


async def respond(t: Turn, text: str) -> None:
    """Build the replies to one message into ``t.out`` (and change state, bookings...)."""
    try:
        await _Policy(t.engine).dispatch(t, text)
    finally:
        t.save_draft()
        t.data["seen_at"] = t.now.isoformat()


class _Policy:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.bookings = engine.bookings
        self.customers = engine.customers
        self.waitlist = engine.waitlist

    async def dispatch(self, t: Turn, text: str) -> None:
        payload = t.msg.payload
        stripped = text.strip()
        if payload is None and stripped.isascii() and stripped.isdigit():  # not "²" or "٣"
            buttons = t.data.get("buttons", [])
            number = int(stripped) if len(stripped) < 4 else 0
            at_hour = _time_button_at(t, buttons, number) if t.state == StateName.CHOOSE_TIME else None
            if at_hour is not None:
                payload = at_hour  # "10" among 10:00, 10:30, 11:00 is ten o'clock, not the tenth button
            elif 1 <= number <= len(buttons):
                payload = buttons[number - 1]
            elif t.state == StateName.CHOOSE_TIME and 1 <= number <= 23:
                # "11" under "morning / afternoon / evening" is eleven o'clock (1-7 read as the afternoon)
                stripped = text = f"{number + 12 if number <= 7 else number}:00"
        chosen = ordinal_choice(stripped) if payload is None else None
        if chosen is not None and parse_when(stripped, t.today).date is not None:
            chosen = None  # "the 2nd" names a day of the month, not the second button
        buttons = t.data.get("buttons", [])
        if chosen is not None and buttons and -1 <= chosen <= len(buttons) and chosen != 0:
            payload = buttons[chosen - 1] if chosen > 0 else buttons[-1]  # "第二个": the second button
        state = STATES[t.state]
        if payload is not None:  # a tap answers the prompt it belongs to, however old
            if await self._global_button(t, payload) or await state.on_payload(t, payload):
                t.data["misses"] = 0
                return
            t.say(t.t("misc.stale_button"))
            await t.reprompt()
            return
        if not stripped:
            t.say(t.t("misc.no_text"))
            await t.reprompt()
            return
        await self._put_away_if_stale(t)
        local_now = t.now.astimezone(t.shop.tz).time()
        frame = understand(stripped, t.shop, t.customer.pets, t.today, lang=t.lang, now=local_now)
        await self._follow_language(t, frame)
        if await self._rating_comment(t, frame, stripped):
            return
        if await self._understood(t, frame):
            t.data["misses"] = 0
            return
        await self._not_understood(t, frame)

    async def _understood(self, t: Turn, frame: Frame) -> bool:
        """The patterns a message is tried against, in order: a flow put away and taken up again,
        a command, the open question (with digressions and corrections), then free talk."""
        return (
            await self._resumed(t, frame)
            or await self._commanded(t, frame)
            or await self._in_flow(t, frame)
            or await self._free_talk(t, frame)
        )

    async def _resumed(self, t: Turn, frame: Frame) -> bool:
        """A flow put away after a break: picked up again, or offered back; the saved flow is
        forgotten otherwise."""
        resume = t.data.get("resume") if t.state == StateName.IDLE else None
        if resume and resume.get("state") == StateName.CONFIRM and _picks_up_summary(frame):
            # "还在吗？刚才那个帮我确认一下吧" after a break at the summary: the summary again (its time
            # checked and held again); booked only on the yes that follows
            t.data.pop("resume", None)
            t.clear_draft()
            t._draft = Draft.from_json(resume.get("draft"))
            await flows.advance(t)
            return True
        if t.state == StateName.IDLE and t.data.get("resume") and _only_small_talk(frame):
            saved = t.data["resume"]
            try:
                saved_state = StateName(saved.get("state", ""))
            except ValueError:
                saved_state = StateName.IDLE
            if saved_state in ASK_AGAIN:  # a question about a booking on file: asked again, never acted on
                t.data.pop("resume", None)
                t.clear_draft()
                t._draft = Draft.from_json(saved.get("draft"))
                await t.go(saved_state, push=False)
                return True
            await t.go(StateName.RESUME_OFFER, push=False)
            return True
        if t.state == StateName.IDLE and t.data.get("resume") and frame.when.found and _only_when(frame):
            self._take_up_again(t)  # "下午3点" after a break answers the question left open; what it
            # leads to (a confirmation naming the booking) is asked, never done
        t.data.pop("resume", None) if t.state != StateName.RESUME_OFFER else None
        return False

    async def _commanded(self, t: Turn, frame: Frame) -> bool:
        """A command, "same as last time", a follow-up question, a new request over an old flow,
        or a named staff member asked for."""
        command = self._command_meant(t, frame)
        about_command = command in (
            Command.RESCHEDULE,
            Command.CANCEL_BOOKING,
            Command.BOOK,
            Command.HUMAN,  # "你们是人工验光还是电脑验光？" asks about the exam, not for a person
        )
        # "改期要收费吗" asks about rescheduling: a confident FAQ answer first, then the flow goes on
        asks_about = command is not None and about_command and frame.question and not frame.request_form
        if asks_about and await flows.answer_from_faq(t, frame.focus or frame.text, only_answer=True):
            return True
        if command is not None and await self._command(t, command, frame):
            return True
        offered_same = t.state == StateName.IDLE and "m:same" in t.data.get("buttons", [])
        agrees = frame.answer is True or (frame.answer is None and _has_any(frame.norm, SAME_AGAIN_REPLIES))
        same = offered_same and agrees and not frame.question and not _has_any(frame.norm, NOT_SAME)
        if same and await self._same_again(t, frame):  # "对，一样的，明天下午2点" to "same as last time?"
            return True
        if await self._follow_up_question(t, frame):
            return True
        if await self._new_request_over_old(t, frame):
            return True
        if frame.staff_id and _has_any(frame.norm, TALK_WORDS) and not frame.service_named:
            await self._leave(t)  # "Can I speak to Dr. Wang?": that person's role takes it
            role = t.shop.staff[frame.staff_id].role
            await flows.escalate(t, route=role, reason="asked")
            return True
        return False

    async def _in_flow(self, t: Turn, frame: Frame) -> bool:
        """The open question: "thanks", hesitation, the price at the summary, a question asked in
        passing, the form's facts, then the state's own reading; a booking on file referred to."""
        state = STATES[t.state]
        d = t.draft
        if t.state == StateName.MY_BOOKINGS and frame.has(Intent.THANKS) and not frame.fills_booking:
            await self._leave(t)  # "thanks" under the list of bookings: nothing more to do
            t.clear_draft()
            t.settle()
            t.say(t.t("misc.you_are_welcome"))
            return True
        if t.state in ASKS_YES_NO and frame.hesitant and not frame.fills_booking:
            minutes = t.shop.booking.hold_ttl_min
            key = "info.take_your_time_held" if t.state == StateName.CONFIRM else "info.take_your_time"
            # "嗯…我再想想": nothing is done, the question stays open with its buttons
            if t.state == StateName.CONFIRM:
                t.say(t.t(key, minutes=minutes), confirm_buttons(t))
            else:
                t.say(t.t(key, minutes=minutes))
                await t.reprompt()
            return True
        if t.state in SHOWS_PRICE and frame.price_question and not (frame.fills_booking or frame.addons):
            await t.reprompt()  # "一共多少钱?" at the summary: the summary again, with its total
            return True
        digression = frame.question and t.state != StateName.IDLE and not _answers_open_question(t, frame)
        if digression and await flows.answer_from_faq(t, frame.focus or frame.text, only_answer=True):
            return True
        # "验光前隐形眼镜要停戴多久啊" at the day question asks about contacts; it does not change the service
        asks_about_it = frame.wh_question and not (frame.request_form or frame.has(Intent.CORRECTION))
        only_asks = frame.question and (
            asks_about_it or not (frame.when.found or frame.service or frame.pet or frame.staff_id)
        )
        in_form = d.mode == Mode.BOOK and t.state != StateName.IDLE and frame.fills_booking and not only_asks
        # the form takes every fact first, then the open question reads its own answer from the
        # same message ("yes. oh wait, he's medium actually" answers yes AND corrects the size)
        changed = await flows.apply_frame(t, frame) if in_form else False
        if await state.on_frame(t, frame):
            return True
        if changed:
            await flows.advance(t)
            return True
        return await self._about_existing_booking(t, frame)

    async def _free_talk(self, t: Turn, frame: Frame) -> bool:
        """No flow took the message: a complaint, a price, a day's hours, the FAQ, an intent."""
        self._remember_topic(t, frame)
        # "可乐洗一次澡多少钱呀": the FAQ's answer when it has one, else that very service's price from
        # config (the topic stays for "那就约周六")
        # "how much is a bath for a medium-sized dog, with the coat conditioner?": with the add-on
        if frame.complaint and not frame.intents & {Intent.BOOK, Intent.RESCHEDULE, Intent.CANCEL_BOOKING}:
            await flows.take_complaint(t, frame.text)  # "your groomer cut my dog's ear, not happy"
            return True
        if t.state == StateName.IDLE and await flows.introduce_pet(t, frame):
            return True  # "hi, I have a little shih tzu called Pepper, 5kg, vaccinated in july"
        named = frame.service is not None and (frame.service.service_id is not None or frame.size is not None)
        price_of = t.state == StateName.IDLE and frame.price_question and not frame.when.found
        price_of = price_of and (not frame.addons or named)
        if price_of and frame.addons and flows.price_of_named(t, frame):
            return True  # "how much for a medium dog bath with deworming and teeth brushing?": the total
        if price_of and await flows.answer_from_faq(t, frame.focus, only_answer=True):
            return True
        if price_of and flows.price_of_named(t, frame):
            return True
        if t.state == StateName.IDLE and _asks_about_day(frame):
            flows.day_hours(t, frame.when.date)  # type: ignore[arg-type]  # _asks_about_day: a date
            t.data["topic"] = {**t.data.get("topic", {}), "offered_day": True}
            return True
        asks_faq = (frame.question or frame.symptom) and not _wants_booking(frame, False)
        if asks_faq and await flows.answer_from_faq(t, frame.focus, health=frame.symptom):
            return True
        if await self._intent(t, frame):
            return True
        asked = asks_faq  # already put to the FAQ above
        if not asked and await flows.answer_from_faq(t, frame.focus or frame.text):
            self._remember_topic(t, frame)
            return True
        if frame.has(Intent.THANKS) and t.state == StateName.IDLE:
            t.say(t.t("misc.you_are_welcome"))
            return True
        return False


    # ------------------------------------------------------------------ patterns

    def _command_meant(self, t: Turn, frame: Frame) -> Command | None:
        """The global command a message gives, read in the light of the open question."""
        command = frame.command
        if command is None:
            return None
        if t.state == StateName.CANCEL_CONFIRM and command in (Command.CANCEL_FLOW, Command.CANCEL_BOOKING):
            return None  # "取消" answering "cancel this booking?" means yes (the state reads it)
        if command == Command.CANCEL_FLOW and last_visit.no_thanks(t, frame):
            return None  # "不用了" answering "same as last time?" is a no to that (bot/engine/last_visit.py)
        in_booking = (t.draft.mode == Mode.BOOK and t.state != StateName.IDLE) or t.state == StateName.RESUME_OFFER
        if in_booking and command == Command.RESCHEDULE and not _has_any(frame.norm, STRONG_RESCHEDULE):
            return None  # "改到周日" while booking is a correction of the new booking
        if in_booking and command == Command.BOOK:
            return None  # "预约" again while booking: go on with this booking
        refers = frame.when.date is not None or frame.service_named or _has_any(frame.norm, BOOKING_NOUNS)
        if in_booking and command == Command.CANCEL_BOOKING and not refers:
            return Command.CANCEL_FLOW  # "算了，取消吧" while booking ends this booking, not one on file
        return command

    def _take_up_again(self, t: Turn) -> None:
        """Restore the flow put away at a day or time question, without its prompt."""
        saved = t.data.pop("resume", None) or {}
        try:
            state = StateName(saved.get("state", ""))
        except ValueError:
            return
        if state not in (StateName.CHOOSE_DAY, StateName.CHOOSE_TIME):
            return
        t.clear_draft()
        t._draft = Draft.from_json(saved.get("draft"))
        t.conv.state = state.value

    async def _put_away_if_stale(self, t: Turn) -> None:
        """A flow left alone too long is put away: nothing old is acted on by a new message."""
        if t.state == StateName.IDLE or not _stale(t):
            return
        state = t.state
        d = t.draft
        if state in RESUMABLE and (d.service or d.booking_id):
            saved = Draft.from_json(d.to_json())
            saved.hold_id = None
            t.data["resume"] = {"draft": saved.to_json(), "state": state.value}
        await STATES[state].leave(t)
        await flows.release_hold(t)
        t.clear_draft()
        t.conv.state = StateName.IDLE.value

    async def _follow_language(self, t: Turn, frame: Frame) -> None:
        if frame.command in (Command.TO_ENGLISH, Command.TO_CHINESE):
            return
        lang = frame.lang
        naming = t.state in (StateName.PET_NAME, StateName.CHOOSE_PET) and frame.new_pet_name is None
        if naming and len(frame.norm) <= 6:
            return  # "豆豆" answering "what's your pet's name?" is a name, not a language
        hint = (t.msg.language_hint or "")[:2].lower()
        if lang is None and hint == "en" and t.lang != "en" and normalise(frame.text) in EN_GREETINGS:
            lang = "en"  # "hi" on an English page: English, though the customer wrote Chinese before
        if lang and lang != t.lang:
            t.conv.language = lang
            await self.customers.update(t.customer.id, language=lang)

    async def _new_request_over_old(self, t: Turn, frame: Frame) -> bool:
        """ "给豆豆再约一次洗澡" while a reschedule/cancel is open: a new booking, the old one untouched."""
        d = t.draft
        if d.mode not in (Mode.MANAGE, Mode.RESCHEDULE) or t.state == StateName.IDLE:
            return False
        if frame.has(Intent.RESCHEDULE) or frame.has(Intent.CANCEL_BOOKING):
            return False
        new_booking = frame.has(Intent.BOOK) and (frame.service is not None or frame.has(Intent.SAME_AGAIN))
        if not new_booking:
            return False
        await flows.start_booking(t, frame)
        return True

    async def _about_existing_booking(self, t: Turn, frame: Frame) -> bool:
        """ "add deworming to Max's bath" / "is my grooming appointment confirmed?": the booking on file."""
        if t.draft.mode == Mode.BOOK and t.state != StateName.IDLE:
            return False
        refers = _has_any(frame.norm, EXISTING_REFERENCES)
        adding_new = not refers and (frame.when.date is not None or (frame.has(Intent.BOOK) and frame.service_named))
        price_question = frame.wh_question and not frame.request_form  # "加护毛素要多少钱？" asks a price
        if frame.has(Intent.ADD_ADDON) and frame.addons and (adding_new or price_question):
            bookings = await flows.upcoming(t)
            # "can you add teeth brushing to Biscuit's bath on the 28th?", "咪咪那次洗澡加个护毛素多少钱":
            # the add-on for the booking on file that day or of that pet (its price and total are asked)
            # "can you add teeth brushing to Biscuit's bath on the 28th?": the bath on file that day
            if bookings and flows.pick_booking(t, bookings, frame) is not None:
                await flows.start_manage(t, Action.ADDON, frame, addon=frame.addons[0])
                return True
        if frame.has(Intent.ADD_ADDON) and not adding_new and not price_question:
            bookings = await flows.upcoming(t)
            if bookings or frame.service is None:
                await flows.start_manage(t, Action.ADDON, frame, addon=frame.addons[0] if frame.addons else None)
                return True
        if frame.has(Intent.MY_BOOKINGS) and not frame.has(Intent.BOOK):
            await flows.start_manage(t, None, frame)
            return True
        changes = frame.request_form and _has_any(frame.norm, CHANGE_WORDS) and not frame.has(Intent.BOOK)
        if changes and not (frame.service_named or frame.when.found) and await flows.upcoming(t):
            await flows.start_manage(t, None, frame, the_only=True)  # "can I change something?": which change?
            return True
        if frame.has(Intent.CANT_COME) or frame.shift_minutes is not None:
            bookings = await flows.upcoming(t)
            if bookings:
                if frame.shift_minutes is not None:  # "could I come an hour later on Saturday?"
                    await flows.start_manage(t, Action.RESCHEDULE, frame, shift=frame.shift_minutes)
                else:  # "I won't make it on Saturday": show that booking, move or cancel it
                    await flows.start_manage(t, None, frame)
                return True
        return False

    async def _follow_up_question(self, t: Turn, frame: Frame) -> bool:
        """ "how much?" -> (which one?) -> "for a cat bath": the fragment completes the question."""
        asked = flows.open_faq_question(t) if t.state == StateName.IDLE else None
        if asked is None:
            return False
        t.data.pop("faq_open", None)
        fragment = not (
            frame.has(Intent.BOOK)
            or frame.has(Intent.AVAILABILITY)
            or frame.when.found
            or frame.command is not None
            or frame.long
            or frame.answer is not None
        )
        if not fragment or len(frame.norm) > 30:
            return False
        return await flows.answer_from_faq(t, f"{asked} {frame.focus or frame.text}", only_answer=True)

    def _remember_topic(self, t: Turn, frame: Frame) -> None:
        """The service and pet a question was about ("小型犬洗澡多少钱?"), for "好的那帮我约周六" next."""
        topic = dict(t.data.get("topic") or {})
        if frame.service is not None:
            topic.update(service=frame.service.service_id, category=frame.service.category)
        if frame.pet is not None:
            topic["pet_id"] = frame.pet.id
        if frame.child is not None:
            topic["child"] = frame.child
        if frame.pet is None and (frame.size or frame.species):  # "我家泰迪洗澡多少钱": a small dog
            topic.update(size=frame.size, species=frame.species)
        if frame.question and frame.when.date is not None and not frame.when.past:
            topic.update(day=frame.when.date.isoformat(), asked_day=True)  # "下周四你们开门不"
        if topic:
            topic["at"] = t.now.isoformat()
            t.data["topic"] = topic

    async def _intent(self, t: Turn, frame: Frame) -> bool:
        """Requests that start something, whatever the state."""
        if frame.has(Intent.SAME_AGAIN) and await self._same_again(t, frame):
            return True

        if frame.has(Intent.RESULTS) and t.shop.kind == "optician":
            await flows.eye_result(t)  # "我的验光结果": the latest exam in plain words
            return True
        if frame.has(Intent.RESULTS):
            return False
        topic = _topic(t)
        if not _wants_booking(frame, bool(topic)):
            return False
        prefill: dict[str, Any] = {}
        if not frame.service_named and (topic.get("service") or topic.get("category")):
            prefill = {"service": topic.get("service"), "category": topic.get("category"), "child": topic.get("child")}
            if frame.pet is None and not (frame.size or frame.species):
                prefill.update(size=topic.get("size"), species=topic.get("species"))
        if frame.pet is None and frame.new_pet_name is None and topic.get("pet_id"):
            pet = t.pet(topic["pet_id"])
            if pet is not None and _refers_back(frame):
                prefill.update(pet_id=pet.id, pet_name=pet.name, species=pet.species, size=pet.size)
        # "下周四开门吗" -> "那约个验光"; "is Wed afternoon open?" -> (the day's hours) -> "eye exam for me"
        asked_about_day = topic.get("asked_day") and (frame.norm.startswith(THEN_WORDS) or topic.get("offered_day"))
        that_day = _has_any(frame.norm, flows.SAME_DAY_WORDS)
        if frame.when.date is None and topic.get("day") and (that_day or asked_about_day):
            prefill["want_day"] = topic["day"]
            if frame.when.time is not None:
                prefill["want_time"] = frame.when.time.strftime("%H:%M")
        if frame.when.past and frame.when.date is None:
            t.say(t.t("info.past_day"))  # "能约上周六的验光吗": that day is gone, ask another
        await flows.start_booking(t, frame, **prefill)
        return True

    async def _same_again(self, t: Turn, frame: Frame) -> bool:
        last = await self.customers.last_visit(t.customer.id, t.now)
        if last is None or last.service_id not in t.shop.services:
            return False
        addons = [a.addon_id for a in last.addons if a.addon_id in t.shop.addons]
        pet = t.pet(last.pet_id)
        await flows.release_hold(t)
        t.clear_draft()
        d = t.draft
        d.mode, d.service, d.addons = Mode.BOOK, last.service_id, addons
        if pet is not None:
            flows.use_pet(t, pet)
        if frame.text:
            await flows.apply_frame(t, frame)
        await flows.advance(t)
        return True

    async def _not_understood(self, t: Turn, frame: Frame) -> None:
        misses = int(t.data.get("misses", 0)) + 1
        t.data["misses"] = misses
        if t.state == StateName.IDLE:
            # never straight to a person: the menu's buttons (a person among them) resolve it
            if not t.data.get("greeted"):
                if frame.question:  # a question we cannot answer: said so, then who we are
                    t.say(t.t("faq.none"))
                await t.reprompt()  # a first message we cannot place: introduce ourselves
                return
            t.say(t.t("faq.none") if frame.question else t.t("misc.not_understood"))
            await t.reprompt()
            return
        # inside a flow the open question has buttons: ask it again rather than hand over
        t.say(t.t("faq.none") if frame.question else t.t("misc.not_understood"))
        await t.reprompt()

    # ------------------------------------------------------------------ buttons

    async def _rating_button(self, t: Turn, payload: str) -> bool:
        """A star tapped under "how was your visit?" (core/ratings.py records it once)."""
        service = self.engine.ratings
        if service is None:
            return False
        reply = await service.answer_button(payload, t.customer.id, t.lang)
        for message in reply.messages:
            t.say(message.text, message.buttons)
        ratings.remember_pending(t.data, reply.comment_for, t.now)
        return True

    async def _rating_comment(self, t: Turn, frame: Frame, text: str) -> bool:
        """The words after the stars ("the groomer was lovely"): the rating's comment."""
        service = self.engine.ratings
        booking_id = ratings.take_pending(t.data, t.now)
        if service is None or booking_id is None or t.state != StateName.IDLE:
            return False
        requests = {Intent.BOOK, Intent.AVAILABILITY, Intent.RESCHEDULE, Intent.CANCEL_BOOKING, Intent.ADD_ADDON}
        if frame.command is not None or frame.intents & requests or frame.when.found:
            return False  # a new request ("bath for Max next Saturday"), not a comment
        reply = await service.answer_comment(booking_id, t.customer.id, text, t.lang)
        for message in reply.messages:
            t.say(message.text, message.buttons)
        return True

    async def _global_button(self, t: Turn, payload: str) -> bool:
        """A button any state understands, through the one table of button handlers."""
        for prefixes, handler in _BUTTONS:
            if payload.startswith(prefixes):
                return await handler(self, t, payload)
        return await self._menu_button(t, payload)

    async def _series_button(self, t: Turn, payload: str) -> bool:
        """A time chosen for a visit of a series whose day was full."""
        reply = await series.answer_button(self.engine.bookings, payload, t.customer.id, t.lang)
        for message in reply.messages:
            t.say(message.text, list(message.buttons))
        return True

    async def _faq_button(self, t: Turn, payload: str) -> bool:
        """A "did you mean" entry tapped: its answer, as if it had been asked."""
        matcher = self.engine.faq_matcher(t.shop_id)
        entry = matcher.faq.entry(payload[4:]) if matcher else None
        if entry is None:
            return False
        await flows.say_answers(t, [entry])
        return True

    async def _menu_button(self, t: Turn, payload: str) -> bool:
        match payload:
            case "m:book":
                await flows.start_booking(t)
            case "m:my":
                await flows.start_manage(t, None)
            case "m:same":
                return await self._same_again(t, _empty_frame(t))
            case "m:human":
                await self._leave(t)
                await flows.escalate(t, route=None, reason="asked")
            case "x":
                await self._cancel_flow(t)
            case "n:on" | "n:off":
                t.say(t.t(await notices.subscribe(self.customers, t.customer.id, payload == "n:on")))
            case "lang:en" | "lang:zh":
                await self._switch_language(t, payload[5:])
            case _:
                return False
        return True

    async def _reminder_button(self, t: Turn, payload: str) -> bool:
        """Confirm / Reschedule / Cancel pressed on a reminder."""
        try:
            booking_id = int(payload[3:])
        except ValueError:
            return False
        booking = await self.bookings.get(t.shop_id, booking_id)
        if booking is None or booking.customer_id != t.customer.id:
            return False
        if payload.startswith("rc:"):
            result = await self.bookings.acknowledge(t.shop_id, booking_id, flows.actor(t))
            t.say(t.t("reminder.thanks") if result.ok else t.t("manage.not_active"))
            return True
        await flows.release_hold(t)
        t.clear_draft()
        t.draft.mode = Mode.MANAGE
        t.draft.action = Action.RESCHEDULE if payload.startswith("rr:") else Action.CANCEL
        await flows.run_action(t, booking)
        return True

    async def _waitlist_button(self, t: Turn, payload: str) -> bool:
        kind, _, value = payload.partition(":")
        if kind == "wl":  # join the waitlist for the day the draft is about
            day_text, _, period = value.partition(":")
            service = t.draft.service
            try:
                day = date.fromisoformat(day_text)
            except ValueError:
                return False
            if not service:
                return False
            await self.waitlist.join(
                t.shop_id, t.customer.id, service, day, period=period or None, pet_id=t.draft.pet_id
            )
            t.say(t.t("waitlist.joined", day=t.day_text(day)))
            t.settle()
            return True
        try:
            booking_id = int(value)
        except ValueError:
            return False
        if kind == "wn":
            await self.waitlist.decline(t.shop_id, booking_id, t.customer.id)
            t.say(t.t("waitlist.passed"))
            return True
        result = await self.waitlist.accept(t.shop_id, booking_id, t.customer.id)
        if isinstance(result, Booked):
            b = result.booking
            key = "waitlist.requested" if b.status == BookingStatus.PENDING else "waitlist.taken"
            t.say(t.t(key, code=b.code, when=t.when(b.start)))
        else:
            t.say(t.t("waitlist.missed"), [t.button("btn.book", "m:book")])
        return True

    async def _shop_change_button(self, t: Turn, payload: str) -> bool:
        """The customer picked one of the alternatives the shop offered when it had to move them."""
        try:
            _, booking_part, minutes_part, staff_part = payload.split(":", 3)
            booking_id, minutes = int(booking_part), int(minutes_part)
            start = datetime.fromtimestamp(minutes * 60, tz=UTC)
        except (ValueError, OverflowError, OSError):
            return False
        booking = await self.bookings.get(t.shop_id, booking_id)
        if booking is None or booking.customer_id != t.customer.id:
            return False
        result = await self.bookings.reschedule(
            t.shop_id,
            booking_id,
            start,
            Actor.system(f"customer:{t.customer.id} accepted the shop's offer"),
            staff_id=staff_part or None,
        )
        if isinstance(result, Booked):
            b = result.booking
            staff = t.shop.staff[b.staff_id].name.get(t.lang) if b.staff_id in t.shop.staff else ""
            t.say(t.t("reminder.rebooked", code=b.code, when=t.when(b.start), staff=staff))
            return True
        options = await self.bookings.change_options(t.shop_id, booking_id)
        pet = t.pet(booking.pet_id)
        offer = compose_shop_change(booking, t.shop, pet.name if pet else None, t.lang, options)
        t.say(t.t("booked.taken").rstrip("：:") + "\n" + offer.text, list(offer.buttons))
        return True

    # ------------------------------------------------------------------ commands

    async def _command(self, t: Turn, command: Command, frame: Frame) -> bool:
        """A typed command, through the one table of command handlers; False when not handled."""
        handler = _COMMANDS.get(command)
        return handler is not None and await handler(self, t, command, frame)

    async def _cmd_cancel_flow(self, t: Turn, command: Command, frame: Frame) -> bool:
        if t.state == StateName.IDLE:
            await flows.start_manage(t, Action.CANCEL, frame)  # "取消" with nothing open: a booking
        else:
            await self._cancel_flow(t)
        return True

    async def _cmd_back(self, t: Turn, command: Command, frame: Frame) -> bool:
        stack: list[str] = t.data.get("stack", [])
        if not stack:
            t.say(t.t("misc.at_start"))
            await t.reprompt()
            return True
        await STATES[t.state].leave(t)
        previous = stack.pop()
        try:
            target = StateName(previous)
        except ValueError:
            target = StateName.IDLE
        await t.go(target, push=False)
        return True

    async def _cmd_human(self, t: Turn, command: Command, frame: Frame) -> bool:
        await self._leave(t)
        await flows.escalate(t, route=None, reason="asked")
        return True

    async def _cmd_menu(self, t: Turn, command: Command, frame: Frame) -> bool:
        await self._leave(t)
        t.clear_draft()
        t.conv.state = StateName.IDLE.value
        await t.reprompt()
        return True

    async def _cmd_greet(self, t: Turn, command: Command, frame: Frame) -> bool:
        await t.reprompt()
        return True

    async def _cmd_my_bookings(self, t: Turn, command: Command, frame: Frame) -> bool:
        if frame.has(Intent.BOOK) and frame.service is not None:
            return False
        if frame.has(Intent.ADD_ADDON):
            await flows.start_manage(t, Action.ADDON, frame, addon=frame.addons[0] if frame.addons else None)
        else:
            await flows.start_manage(t, None, frame)
        return True

    async def _cmd_reschedule(self, t: Turn, command: Command, frame: Frame) -> bool:
        await flows.start_manage(t, Action.RESCHEDULE, frame)
        return True

    async def _cmd_cancel_booking(self, t: Turn, command: Command, frame: Frame) -> bool:
        await flows.start_manage(t, Action.CANCEL, frame)
        return True

    async def _cmd_notices(self, t: Turn, command: Command, frame: Frame) -> bool:
        wanted = command == Command.NOTICES_ON
        t.say(t.t(await notices.subscribe(self.customers, t.customer.id, wanted)))
        return True

    async def _cmd_book(self, t: Turn, command: Command, frame: Frame) -> bool:
        await flows.start_booking(t, frame)
        return True

    async def _cmd_leave_waitlist(self, t: Turn, command: Command, frame: Frame) -> bool:
        left = await self.waitlist.leave(t.shop_id, t.customer.id)
        t.say(t.t("waitlist.left") if left else t.t("waitlist.nothing"))
        return True

    async def _cmd_language(self, t: Turn, command: Command, frame: Frame) -> bool:
        rest = _without_language_request(frame.text)  # "3pm works, english pls": 3pm still counts
        await self._switch_language(t, "en" if command == Command.TO_ENGLISH else "zh", reprompt=not rest)
        if rest:
            local_now = t.now.astimezone(t.shop.tz).time()
            again = understand(rest, t.shop, t.customer.pets, t.today, lang=t.lang, now=local_now)
            if not await self._understood(t, again):
                await t.reprompt()
        return True

    async def _cancel_flow(self, t: Turn) -> None:
        changing = t.draft.mode in (Mode.MANAGE, Mode.RESCHEDULE) and t.draft.booking_id is not None
        await self._leave(t)
        t.clear_draft()
        t.conv.state = StateName.IDLE.value
        if changing:  # "leave it as is" half-way through a change: the booking stays, say so (not "cancelled")
            t.say(t.t("manage.kept"), [t.button("btn.book", "m:book"), t.button("btn.my_bookings", "m:my")])
            return
        t.say(t.t("misc.flow_cancelled"), [t.button("btn.book", "m:book"), t.button("btn.my_bookings", "m:my")])

    async def _leave(self, t: Turn) -> None:
        await STATES[t.state].leave(t)

    async def _switch_language(self, t: Turn, lang: str, *, reprompt: bool = True) -> None:
        t.conv.language = lang
        await self.customers.update(t.customer.id, language=lang)
        t.say(t.t("misc.lang_switched"))
        if reprompt:
            await t.reprompt()


_CLAUSE_BREAK = re.compile(r"[，,。.!！?？;；\n]+|(?<=[\u4e00-\u9fff])\s+|\s+(?=[\u4e00-\u9fff])")
_LANGUAGE_WORDS = re.compile(r"english|chinese|mandarin|中文|英文|英语|汉语|普通话|国语", re.IGNORECASE)


def _without_language_request(text: str) -> str:
    """The message without its clauses about the language ("算了还是说中文吧 周六下午两点可以吗" ->
    "周六下午两点可以吗"); empty when it says nothing else."""
    kept = [c.strip() for c in _CLAUSE_BREAK.split(text) if c.strip() and not _LANGUAGE_WORDS.search(c)]
    rest = " ".join(kept)
    words = [w for w in normalise(rest).split() if w not in _SWITCH_FILLERS]
    return rest if len("".join(words)) >= 2 else ""


_SWITCH_FILLERS = frozenset(
    (
        *("sorry", "hi", "hey", "hello", "ok", "okay", "please", "pls", "thanks", "thank", "you", "um", "uh", "oh"),
        *("so", "then", "算了", "好的", "好", "还是", "那", "那就", "麻烦", "谢谢", "不好意思", "抱歉"),
    )
)


EXISTING_REFERENCES = (
    *("的预约", "那次", "那个预约", "预约加"),
    *("my booking", "my appointment", "booking on", "appointment on"),
)
TALK_WORDS = ("speak to", "talk to", "speak with", "talk with", "聊", "问问", "咨询", "联系")
BOOKING_NOUNS = ("预约", "booking", "appointment", "那个", "那次")
SAME_AGAIN_REPLIES = ("一样", "照旧", "same", "the usual", "like last time")
NOT_SAME = ("not the same", "不一样", "不要一样", "换个", "换一个", "different", "something else", "这次不")
THEN_WORDS = (
    *("那", "那就", "那么", "好的那", "好那", "行那"),
    *("then", "ok then", "okay then", "great then", "in that case"),
)
REFER_BACK = (" him", " her", " them", " it", "他", "她", "它", "宝贝", "again", "another", "再", "也")


def _idle_window(t: Turn) -> timedelta:
    """How long a flow (or what the chat was about) stays current: the shop's ``flow_idle_min``."""
    return timedelta(minutes=t.shop.booking.flow_idle_min)


def _topic(t: Turn) -> dict[str, Any]:
    """What the chat was just about (a service asked about, the booking just made), while fresh."""
    topic = t.data.get("topic") or {}
    try:
        at = datetime.fromisoformat(topic.get("at", ""))
    except ValueError:
        return {}
    idle = _idle_window(t)
    return dict(topic) if t.now - at <= idle else {}


def _refers_back(frame: Frame) -> bool:
    return _has_any(f" {frame.norm} ", REFER_BACK)


def _wants_booking(frame: Frame, has_topic: bool) -> bool:
    """Whether a message asks to book (rather than asking about something or telling a story)."""
    booking_words = frame.has(Intent.BOOK) or frame.has(Intent.AVAILABILITY)
    if frame.booking_question:
        return False  # "can i just walk in or do i need to book?": the FAQ answers it
    past_story = frame.when.past and not booking_words and frame.when.date is None
    if past_story:
        return False  # "Max came back from his bath last week with a cut": not a booking
    if frame.wh_question and not booking_words:
        return False  # "给旺财洗澡多少钱" asks a price: the FAQ answers it
    if frame.symptom and not booking_words and frame.when.date is None:
        return False  # "戴隐形眼镜眼睛疼，还有点红": a health worry, the FAQ (and staff) answer it
    if booking_words and not frame.question:
        return True  # "I want to book an appointment" (what is missing is asked)
    concrete = frame.service_named and (frame.when.found or frame.pet is not None or frame.new_pet_name)
    if frame.request_form and frame.pet is not None and not frame.when.past and _has_any(frame.norm, HELP_WORDS):
        return True  # "can you do something about Max's fur?": a service for Max, which one is asked
    if frame.question and frame.request_form and frame.when.found and _has_any(f" {frame.norm} ", COME_WORDS):
        return True  # "can I come at 3?": a visit at that time, what for is asked
    if frame.question and frame.request_form and frame.service_named and not frame.wh_question:
        return True  # "can we get him checked?", "能不能给豆豆洗个澡？": a request phrased as a question
    if frame.question:
        # "can luna get a nail trim on wednesday at 11?" asks to book; "洗澡多少钱?" asks the FAQ
        return bool(
            concrete
            or (booking_words and (frame.when.found or frame.service_named or frame.pet or frame.child))
            or (frame.when.found and _only_when(frame))
        )
    if frame.long:
        return False
    if frame.service_named or (frame.pet is not None and (frame.when.found or _for_pet(frame))):
        return True
    return frame.when.date is not None and (has_topic or _only_when(frame))


def _asks_about_day(frame: Frame) -> bool:
    """ "Are you open on Sunday?", "is Wed afternoon open?", "周三有空吗", "do you have anything on
    Sunday?": a question about one coming day and nothing else (no service, pet or booking)."""
    if not frame.question or frame.when.date is None or frame.when.past or frame.long:
        return False
    if frame.service_named or frame.pet is not None or frame.new_pet_name or frame.booking_code:
        return False
    if frame.price_question or frame.intents & {Intent.BOOK, Intent.RESCHEDULE, Intent.CANCEL_BOOKING}:
        return False
    if frame.has(Intent.AVAILABILITY):
        return False  # "周一有空位吗": the booking starts with that day (which service is asked)
    return _has_any(f" {frame.norm} ", DAY_QUESTION_WORDS)


DAY_QUESTION_WORDS = (*("开门", "营业", "开吗", "上班", "休息吗"), *(" open", " hours", " closed"))


COME_WORDS = (" come ", " come in", " pop in", " drop by", " stop by", "过来", "来店", "到店", "过去")


def _for_pet(frame: Frame) -> bool:
    """ "it's for Bear" / "给豆豆的": a pet named as whom the booking is for."""
    return _has_any(f" {frame.norm} ", (" for ", "给", "是")) and len(frame.norm) <= 30


def _time_button_at(t: Turn, buttons: list[str], hour: int) -> str | None:
    """The offered time button at ``hour`` o'clock (or ``hour`` pm), when there is one."""
    for payload in buttons:
        start = flows.slot_from_payload(payload) if payload.startswith("s:") else None
        if start is None:
            continue
        local = start.astimezone(t.shop.tz)
        if local.minute == 0 and local.hour in (hour, hour + 12):
            return payload
    return None


def _only_when(frame: Frame) -> bool:
    """A message that is just a day and/or time ("Saturday?", "周六下午3点", "Saturday the 28th")."""
    rest = _DAY_WORDS.sub(" ", frame.when.remainder(frame.text).lower())
    return len(rest.strip(" ?？!！.。,，")) <= 3


_DAY_WORDS = re.compile(
    r"\b(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?\b|\b(?:on|the|this|next|coming)\b"
    r"|\b(?:some ?time|any ?time|any ?day|some ?day|maybe|perhaps|possible|possibly|please)\b"
    r"|\b(?:works?|would work|is good|good|fine|great|perfect|suits?|ok|okay|for me|for us|if possible)\b"
    r"|(?:周|星期|礼拜)[一二三四五六日天]|什么时候|哪天|都行|可以吗|行吗|吧"
)


def _stale(t: Turn) -> bool:
    """Whether the conversation was left alone longer than the shop's ``flow_idle_min``."""
    seen = t.data.get("seen_at")
    if not seen:
        return False
    try:
        last = datetime.fromisoformat(seen)
    except ValueError:
        return False
    idle = _idle_window(t)
    return t.now - last > idle


STRONG_RESCHEDULE = ("改期", "改约", "改预约", "reschedule", "my booking", "my appointment", "existing")


def _has_any(norm: str, words: tuple[str, ...]) -> bool:
    return any(w in norm for w in words)


EN_GREETINGS = frozenset({"hi", "hello", "hey", "hiya", "good morning", "good afternoon", "good evening"})
CHANGE_WORDS = ("change", "modify", "update", "amend", "修改", "改一下", "改下", "变更", "调整", "动一下")
# States that wait on a yes or a no to a question naming what would change.
ASKS_YES_NO = (StateName.CONFIRM, StateName.RESCHEDULE_CONFIRM, StateName.ADDON_CONFIRM, StateName.CANCEL_CONFIRM)
# States whose prompt shows the price of what is being decided.
SHOWS_PRICE = (StateName.CONFIRM, StateName.ADDON_CONFIRM, StateName.RESCHEDULE_CONFIRM)


def _answers_open_question(t: Turn, frame: Frame) -> bool:
    """ "3点可以吗" answers "which time?"; "is Sunday ok?" answers "which day?": not a digression."""
    state = t.state
    if frame.wh_question:
        return False  # "美容多少钱?" / "周日几点开门?" ask something: answered first
    if state in (StateName.CHOOSE_DAY, StateName.CHOOSE_TIME, StateName.RESCHEDULE_CONFIRM, StateName.CONFIRM):
        return frame.when.found and _only_when(frame)
    if state == StateName.CHOOSE_SERVICE:  # "验光前要摘隐形眼镜吗？" names a service and asks something else
        return frame.service_named and len(frame.norm) <= 12 and not (frame.question and len(frame.norm) > 6)
    if state == StateName.PET_SIZE:
        return frame.size is not None and len(frame.norm) <= 16
    return False


def _picks_up_summary(frame: Frame) -> bool:
    """ "刚才那个帮我确认一下", "yes please go ahead with that", "确认": the summary left open is meant."""
    if frame.fills_booking or frame.command not in (None, Command.GREET) or frame.hesitant:
        return False
    return _has_any(f" {frame.norm} ", PICK_UP_WORDS)  # a bare "好" is offered the flow back instead


PICK_UP_WORDS = (  # naming what was left open (a bare "确认" or "继续" is offered the flow back first)
    *("刚才那个", "刚刚那个", "刚才的预约", "刚才约的", "之前那个"),
    *("the one from before", "the one we were doing", "that booking", "go ahead with that", "go ahead with it"),
)


def _only_small_talk(frame: Frame) -> bool:
    return (frame.command in (Command.GREET, None) or frame.answer is not None) and not (
        frame.fills_booking or frame.question or frame.intents - {Intent.THANKS, Intent.AFFIRM, Intent.DENY}
    )


def _empty_frame(t: Turn) -> Frame:
    return Frame(text="", norm="")


_CommandHandler = Callable[[_Policy, Turn, Command, Frame], Awaitable[bool]]
_COMMANDS: dict[Command, _CommandHandler] = {
    Command.CANCEL_FLOW: _Policy._cmd_cancel_flow,
    Command.BACK: _Policy._cmd_back,
    Command.HUMAN: _Policy._cmd_human,
    Command.MENU: _Policy._cmd_menu,
    Command.GREET: _Policy._cmd_greet,
    Command.MY_BOOKINGS: _Policy._cmd_my_bookings,
    Command.RESCHEDULE: _Policy._cmd_reschedule,
    Command.CANCEL_BOOKING: _Policy._cmd_cancel_booking,
    Command.NOTICES_ON: _Policy._cmd_notices,
    Command.NOTICES_OFF: _Policy._cmd_notices,
    Command.BOOK: _Policy._cmd_book,
    Command.LEAVE_WAITLIST: _Policy._cmd_leave_waitlist,
    Command.TO_ENGLISH: _Policy._cmd_language,
    Command.TO_CHINESE: _Policy._cmd_language,
}
_ButtonHandler = Callable[[_Policy, Turn, str], Awaitable[bool]]
_BUTTONS: tuple[tuple[tuple[str, ...], _ButtonHandler], ...] = (
    ((f"{series.PREFIX}:",), _Policy._series_button),
    (("faq:",), _Policy._faq_button),
    (("rate:",), _Policy._rating_button),
    (("rc:", "rr:", "rx:"), _Policy._reminder_button),
    (("sc:",), _Policy._shop_change_button),
    (("wa:", "wn:", "wl:"), _Policy._waitlist_button),
)
