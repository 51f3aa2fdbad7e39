"""The typed draft of what a conversation is working on, and the names of the dialog states.

A booking is a form: the draft's slots (service, pet, vaccination, day, time...) are filled by
any message at any step, and the next question is derived from what is still missing. Managing
an existing booking (reschedule, cancel, add-on) uses the same draft with ``mode`` MANAGE or
RESCHEDULE and the booking it acts on. The draft is persisted as JSON in the conversation row;
unknown keys from older versions are ignored when it is read back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any


class StateName(StrEnum):
    """Every dialog state (bot/engine/states.py implements each)."""

    IDLE = "idle"
    CHOOSE_SERVICE = "choose_service"
    CHOOSE_PET = "choose_pet"
    PET_NAME = "pet_name"
    PET_SPECIES = "pet_species"
    PET_SIZE = "pet_size"
    VACCINATION = "vaccination"
    CHOOSE_DAY = "choose_day"
    CHOOSE_TIME = "choose_time"
    CONFIRM = "confirm"
    MY_BOOKINGS = "my_bookings"
    BOOKING_ACTIONS = "booking_actions"
    RESCHEDULE_CONFIRM = "reschedule_confirm"
    CANCEL_CONFIRM = "cancel_confirm"
    ADDON_CHOOSE = "addon_choose"
    ADDON_CONFIRM = "addon_confirm"
    RESUME_OFFER = "resume_offer"


class Mode(StrEnum):
    BOOK = "book"  # a new booking
    MANAGE = "manage"  # picking an existing booking and what to do with it
    RESCHEDULE = "reschedule"  # moving an existing booking (or adding an extra that needs a new time)


class Action(StrEnum):
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"
    ADDON = "addon"


@dataclass
class Draft:
    mode: Mode | None = None
    # what to book
    service: str | None = None
    category: str | None = None  # a service family resolved later by the pet's size (dog bath)
    bath: bool = False  # "a bath", for a pet whose species is not known yet (dog or cat bath)
    among: list[str] = field(default_factory=list)  # "修剪一下" / "a trim": the services it may mean
    addons: list[str] = field(default_factory=list)
    child: bool | None = None  # whose exam (optician)
    next_people: list[str] = field(default_factory=list)  # "me and my son": "child" / "adult", booked next
    staff: str | None = None  # the groomer / optometrist the customer asked for
    # the pet
    new_pet: bool = False  # the customer said it is a pet we do not know yet
    created_pet: int | None = None  # the pet put on file in this very dialog (its name can still be corrected)
    pet_id: int | None = None
    next_pets: list[int] = field(default_factory=list)  # "baths for max and bella": booked next, same time
    pet_name: str | None = None
    species: str | None = None
    breed: str | None = None
    size: str | None = None
    vaccinated: bool | None = None
    vaccinated_on: str | None = None  # when the customer said it was given (ISO), e.g. "今年3月打的"
    # when
    want_day: str | None = None  # a day (ISO) named before we asked for it
    want_time: str | None = None  # HH:MM named with it
    asked_time: str | None = None  # the last time of day the customer asked for (kept across days)
    period: str | None = None  # morning | afternoon | evening
    after: str | None = None  # "anytime after 4": HH:MM from which any time suits (kept across days)
    recurrence: dict[str, Any] | None = None  # "每6周一次": the repeat asked for (Recurrence.as_json())
    day: str | None = None  # the chosen day (ISO, shop-local)
    start: str | None = None  # the chosen start (ISO, UTC)
    day_from: str | None = None  # "more days" paging
    day_until: str | None = None  # the last day of a short range asked for ("this weekend": Sunday)
    alternatives: list[str] = field(default_factory=list)  # slot payloads offered instead
    hold_id: int | None = None
    autoconfirm: bool = False  # the customer already said yes to these details (a resumed booking)
    # an existing booking
    action: Action | None = None
    booking_id: int | None = None
    add_addon: str | None = None
    duration: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [], "")}

    @classmethod
    def from_json(cls, body: dict[str, Any] | None) -> Draft:
        body = body or {}
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in body.items() if k in known}
        if values.get("mode") is not None:
            try:
                values["mode"] = Mode(values["mode"])
            except ValueError:
                values["mode"] = None
        if values.get("action") is not None:
            try:
                values["action"] = Action(values["action"])
            except ValueError:
                values["action"] = None
        for key in ("addons", "alternatives", "among", "next_pets", "next_people"):
            values[key] = list(values.get(key) or [])
        return cls(**values)

    # -------------------------------------------------------------- the slots of "when"

    def forget_time(self) -> None:
        self.start = None
        self.alternatives = []

    def forget_when(self) -> None:
        self.day = None
        self.start = None
        self.want_day = None
        self.want_time = None
        self.alternatives = []
        self.day_from = None
        self.day_until = None
