"""The records audit trail: who changed which record of which customer, and when.

Bookings keep their own trail (``booking_events``, core/bookings.py); everything else about a
person (pets, vaccinations, visit notes, eye records, a data export or deletion) is written here,
in the same transaction as the change. ``details`` names the fields that changed, never their
values: the trail itself holds no health or eye data, so it can outlive a customer's deletion.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Database
from core.models import ActorKind, AuditEvent
from core.results import Actor


@dataclass(frozen=True)
class AuditView:
    at: datetime
    actor_kind: ActorKind
    actor_id: str
    action: str
    subject: str
    subject_id: int | None
    details: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "actor": f"{self.actor_kind.value}:{self.actor_id}" if self.actor_id else self.actor_kind.value,
            "action": self.action,
            "subject": self.subject,
            "subject_id": self.subject_id,
            "details": self.details,
        }


def record(
    s: AsyncSession,
    *,
    shop_id: str,
    customer_id: int | None,
    actor: Actor,
    now: datetime,
    action: str,
    subject: str,
    subject_id: int | None = None,
    fields: Iterable[str] = (),
    **details: Any,
) -> None:
    """Add one audit row to the session's transaction (``fields``: the names of what changed)."""
    names = sorted(set(fields))
    s.add(
        AuditEvent(
            shop_id=shop_id,
            customer_id=customer_id,
            at=now,
            actor_kind=actor.kind,
            actor_id=actor.id[:128],
            action=action[:40],
            subject=subject[:20],
            subject_id=subject_id,
            details={**({"fields": names} if names else {}), **details},
        )
    )


async def trail(db: Database, shop_id: str, customer_id: int, limit: int = 500) -> list[AuditView]:
    """The customer's records trail, oldest first."""
    async with db.reading() as s:
        rows = await s.scalars(
            select(AuditEvent)
            .where(AuditEvent.shop_id == shop_id, AuditEvent.customer_id == customer_id)
            .order_by(AuditEvent.id)
            .limit(limit)
        )
        return [
            AuditView(r.at, r.actor_kind, r.actor_id, r.action, r.subject, r.subject_id, dict(r.details or {}))
            for r in rows
        ]


class RecordError(ValueError):
    """A record change refused because of one field's value (the console answers 400 naming it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
