"""What booking operations return: a typed result, never a bare exception.

``Booked`` (the booking as it now stands), ``Taken`` (someone else got there first, with the
nearest free alternatives) or ``NotAllowed`` (a rule says no, with a reason code the
conversation engine turns into words in the customer's language).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.availability import Slot
from core.models import ActorKind, Booking, BookingStatus


@dataclass(frozen=True)
class Actor:
    """Who made a change, for the audit trail and for policy (customers have cut-offs)."""

    kind: ActorKind
    id: str = ""

    @classmethod
    def customer(cls, customer_id: int | str) -> Actor:
        return cls(ActorKind.CUSTOMER, str(customer_id))

    @classmethod
    def staff(cls, staff_id: str) -> Actor:
        return cls(ActorKind.STAFF, staff_id)

    @classmethod
    def system(cls, what: str = "") -> Actor:
        return cls(ActorKind.SYSTEM, what)


class Reason(enum.StrEnum):
    UNKNOWN_SHOP = "unknown_shop"
    UNKNOWN_SERVICE = "unknown_service"
    UNKNOWN_STAFF = "unknown_staff"
    UNKNOWN_ADDON = "unknown_addon"
    ADDON_NOT_OFFERED = "addon_not_offered"
    ADDON_ALREADY_ADDED = "addon_already_added"
    STAFF_NOT_QUALIFIED = "staff_not_qualified"
    STAFF_NOT_WORKING = "staff_not_working"
    NOT_FOUND = "not_found"
    INVALID_STATE = "invalid_state"
    TOO_SOON = "too_soon"
    TOO_FAR = "too_far"
    CLOSED = "closed"
    OUTSIDE_HOURS = "outside_hours"
    CUTOFF_PASSED = "cutoff_passed"


@dataclass(frozen=True)
class BookingView:
    """A booking as callers see it (detached from the database session)."""

    id: int
    shop_id: str
    code: str
    service_id: str
    staff_id: str | None
    start: datetime
    end: datetime
    status: BookingStatus
    customer_id: int | None
    pet_id: int | None
    addons: tuple[str, ...]
    resources: tuple[tuple[str, int], ...]
    hold_expires_at: datetime | None
    price_cents: int

    @property
    def duration_min(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    @classmethod
    def of(cls, row: Booking) -> BookingView:
        return cls.of_columns(
            row,
            (a.addon_id for a in row.addons),
            ((r.resource_id, r.unit) for r in row.resources),
        )

    @classmethod
    def of_columns(cls, row: Any, addons: Iterable[str], resources: Iterable[tuple[str, int]]) -> BookingView:
        """The view of a booking row (an ORM object or a Core row with the same column names)."""
        return cls(
            id=row.id,
            shop_id=row.shop_id,
            code=row.code,
            service_id=row.service_id,
            staff_id=row.staff_id,
            start=row.start_at,
            end=row.end_at,
            status=BookingStatus(row.status),
            customer_id=row.customer_id,
            pet_id=row.pet_id,
            addons=tuple(sorted(addons)),
            resources=tuple(sorted(resources)),
            hold_expires_at=row.hold_expires_at,
            price_cents=row.price_cents,
        )


@dataclass(frozen=True)
class Booked:
    booking: BookingView
    ok: bool = True


@dataclass(frozen=True)
class Taken:
    """The time is not free (any more); ``alternatives`` are the nearest free starts."""

    alternatives: tuple[Slot, ...]
    reason: str = "slot_taken"  # or "addon_does_not_fit"
    ok: bool = False


@dataclass(frozen=True)
class NotAllowed:
    reason: Reason
    detail: str = ""
    ok: bool = False


BookingResult = Booked | Taken | NotAllowed
