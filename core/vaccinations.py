"""Pets' vaccinations as records: which kind, when given, the last day each counts, and whether a
pet may have a service that needs vaccination on a given day.

Kinds and their validity come from the shop's config (``vaccinations``: rabies, core and kennel by
default, a year each). A "general" record (the owner said "vaccinated" without naming one, or a
pet's old ``vaccinated_on``) counts for every kind. ``vaccination_status`` is what the engine asks
before it asks the customer: valid -> do not ask; expired or missing -> ask once, with the rule.
``pets.vaccinated_on`` is kept equal to the latest record until the engine reads the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import RecordError
from core.clock import Clock
from core.config import GENERAL_VACCINE, ShopConfig
from core.db import Database
from core.i18n import texts
from core.models import Customer, Pet, Vaccination
from core.records import RecordChange, recorded_by
from core.results import Actor

State = Literal["valid", "expired", "missing"]
MAX_PAST = timedelta(days=365 * 30)


@dataclass(frozen=True)
class VaccinationView:
    id: int
    pet_id: int
    kind: str
    given_on: date
    expires_on: date
    source: str

    def valid_on(self, day: date) -> bool:
        return self.given_on <= day <= self.expires_on

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "pet_id": self.pet_id,
            "kind": self.kind,
            "given_on": self.given_on.isoformat(),
            "expires_on": self.expires_on.isoformat(),
            "source": self.source,
        }


@dataclass(frozen=True)
class VaccinationStatus:
    """``valid`` (until ``valid_until``), ``expired`` (on ``expired_on``) or ``missing``; ``kinds``
    names the kinds that are missing or expired (empty when any vaccination would do)."""

    state: State
    expired_on: date | None = None
    kinds: tuple[str, ...] = ()
    valid_until: date | None = None

    @property
    def valid(self) -> bool:
        return self.state == "valid"


def _view(v: Vaccination) -> VaccinationView:
    return VaccinationView(v.id, v.pet_id, v.kind, v.given_on, v.expires_on, v.source)


def required_kinds(shop: ShopConfig, service_id: str) -> list[str] | None:
    """None: the service needs no vaccination; []: any recorded vaccination; else these kinds."""
    service = shop.services.get(service_id)
    if service is None or not service.requires_vaccination:
        return None
    return list(service.vaccines) if service.vaccines is not None else list(shop.vaccinations.required)


def status_of(records: Sequence[VaccinationView], shop: ShopConfig, service_id: str, on_day: date) -> VaccinationStatus:
    """Whether a pet with these records may have the service on ``on_day`` (pure)."""
    needed = required_kinds(shop, service_id)
    if needed is None:
        return VaccinationStatus("valid")
    wanted: list[str | None] = list(needed) if needed else [None]
    missing: list[str] = []
    expired: list[tuple[date, str]] = []
    valid_until: list[date] = []
    for kind in wanted:
        counting = [r for r in records if r.given_on <= on_day and (kind is None or r.kind in (kind, GENERAL_VACCINE))]
        if not counting:
            missing.append(kind or "")
            continue
        best = max(counting, key=lambda r: r.expires_on)
        if best.expires_on < on_day:
            expired.append((best.expires_on, kind or ""))
        else:
            valid_until.append(best.expires_on)
    if missing:
        return VaccinationStatus("missing", kinds=tuple(k for k in missing if k))
    if expired:
        return VaccinationStatus(
            "expired", expired_on=min(d for d, _ in expired), kinds=tuple(k for _, k in expired if k)
        )
    return VaccinationStatus("valid", valid_until=min(valid_until))


async def _pet_in_shop(s: AsyncSession, shop_id: str, pet_id: int) -> tuple[Pet, Customer]:
    row = (
        await s.execute(select(Pet, Customer).join(Customer, Customer.id == Pet.customer_id).where(Pet.id == pet_id))
    ).first()
    if row is None or row[1].shop_id != shop_id:
        raise LookupError(f"no pet {pet_id} at {shop_id}")
    return row[0], row[1]


async def vaccinations_of(db: Database, pet_ids: Sequence[int]) -> dict[int, list[VaccinationView]]:
    """Each pet's vaccinations, newest first."""
    if not pet_ids:
        return {}
    async with db.reading() as s:
        rows = await s.scalars(
            select(Vaccination)
            .where(Vaccination.pet_id.in_(list(pet_ids)))
            .order_by(Vaccination.given_on.desc(), Vaccination.id.desc())
        )
        out: dict[int, list[VaccinationView]] = {pid: [] for pid in pet_ids}
        for row in rows:
            out[row.pet_id].append(_view(row))
        return out


async def vaccination_status(
    db: Database, shop: ShopConfig, pet_id: int, service_id: str, on_day: date
) -> VaccinationStatus:
    """The engine's question: may this pet have this service on this day without asking?"""
    records = (await vaccinations_of(db, [pet_id])).get(pet_id, [])
    return status_of(records, shop, service_id, on_day)


async def record_vaccination(
    db: Database,
    clock: Clock,
    shop_id: str,
    shop: ShopConfig,
    pet_id: int,
    kind: str | None,
    given_on: date,
    actor: Actor,
    *,
    expires_on: date | None = None,
    today: date | None = None,
) -> VaccinationView:
    """Record a vaccination (``kind`` None: "general"); the same pet, kind and day again is a no-op.

    Raises RecordError naming the field (unknown kind, a date in the future or before the expiry
    order) and LookupError for a pet that is not this shop's.
    """
    kind = (kind or GENERAL_VACCINE).strip().lower()
    if kind != GENERAL_VACCINE and kind not in shop.vaccinations.known():
        raise RecordError(
            "kind", f"unknown vaccination kind '{kind[:40]}' (known: {', '.join(shop.vaccinations.known())})"
        )
    now = clock.now()
    local_today = today or now.astimezone(shop.tz).date()
    if given_on > local_today:
        raise RecordError("given_on", "cannot be in the future")
    if given_on < local_today - MAX_PAST:
        raise RecordError("given_on", "is too long ago")
    until = expires_on or given_on + timedelta(days=shop.vaccinations.valid_days(kind))
    if until < given_on:
        raise RecordError("expires_on", "must not be before the day it was given")
    source = "customer" if actor.kind.value == "customer" else "staff"
    async with db.transaction() as s:
        pet, customer = await _pet_in_shop(s, shop_id, pet_id)
        same = await s.scalar(
            select(Vaccination).where(
                Vaccination.pet_id == pet_id, Vaccination.kind == kind, Vaccination.given_on == given_on
            )
        )
        if same is not None:
            if expires_on is not None and same.expires_on != expires_on:
                same.expires_on = expires_on
                RecordChange(shop_id, customer.id, actor, now).note(s, "vaccination.updated", same.id, ["expires_on"])
            return _view(same)
        row = Vaccination(
            pet_id=pet_id,
            kind=kind,
            given_on=given_on,
            expires_on=until,
            source=source,
            recorded_by=recorded_by(actor),
            created_at=now,
        )
        s.add(row)
        if pet.vaccinated_on is None or pet.vaccinated_on < given_on:
            pet.vaccinated_on = given_on  # what the engine reads until it asks vaccination_status
        await s.flush()
        RecordChange(shop_id, customer.id, actor, now).note(
            s, "vaccination.added", row.id, ["kind", "given_on", "expires_on"], pet_id=pet_id
        )
        return _view(row)


async def delete_vaccination(db: Database, clock: Clock, shop_id: str, vaccination_id: int, actor: Actor) -> None:
    """Remove a record entered by mistake (LookupError if it is not this shop's)."""
    now = clock.now()
    async with db.transaction() as s:
        row = await s.get(Vaccination, vaccination_id)
        if row is None:
            raise LookupError(f"no vaccination {vaccination_id}")
        pet, customer = await _pet_in_shop(s, shop_id, row.pet_id)
        await s.delete(row)
        await s.flush()
        latest = await s.scalar(
            select(Vaccination.given_on)
            .where(Vaccination.pet_id == pet.id)
            .order_by(Vaccination.given_on.desc())
            .limit(1)
        )
        pet.vaccinated_on = latest
        RecordChange(shop_id, customer.id, actor, now).note(s, "vaccination.deleted", vaccination_id, pet_id=pet.id)


# What customers call each kind in chat ("狂犬疫苗是今年3月打的"), longest match first.
KIND_WORDS: dict[str, tuple[str, ...]] = {
    "rabies": ("狂犬疫苗", "狂犬", "rabies"),
    "core": ("八联", "六联", "四联", "猫三联", "三联", "核心疫苗", "dhpp", "fvrcp", "core vaccine", "core"),
    "kennel": ("犬窝咳", "窝咳", "kennel cough", "kennel", "bordetella"),
}


def kind_in(text: str) -> str | None:
    """The vaccination kind a message names, or None ("打过疫苗了" names none: a general record)."""
    lowered = text.lower()
    found = [(len(w), kind) for kind, words in KIND_WORDS.items() for w in words if w in lowered]
    return max(found)[1] if found else None


def vaccine_name(shop: ShopConfig, kind: str, lang: str) -> str:
    """What a kind is called: the shop's config name, else the catalog's ``vaccine.<kind>``."""
    configured = shop.vaccinations.kinds.get(kind)
    if configured is not None and configured.name is not None:
        return configured.name.get(lang)
    catalog = texts(lang)
    return catalog.t(f"vaccine.{kind}") if f"vaccine.{kind}" in catalog.entries else kind


def vaccination_prompt(status: VaccinationStatus, shop: ShopConfig, pet_name: str, lang: str) -> str | None:
    """The one kind question to ask when the record does not cover the visit (None when valid):
    "{pet}'s rabies vaccination on file expired on ..." or "... needs {pet}'s ... to be current"."""
    if status.valid:
        return None
    catalog = texts(lang)
    kinds = status.kinds or (GENERAL_VACCINE,)
    names = catalog.join([vaccine_name(shop, k, lang) for k in kinds])
    if status.state == "expired" and status.expired_on is not None:
        return catalog.t(
            "vaccination.expired", pet=pet_name, vaccine=names, date=catalog.format_date(status.expired_on)
        )
    return catalog.t("vaccination.missing", pet=pet_name, vaccine=names)


def recorded_text(record: VaccinationView, shop: ShopConfig, pet_name: str, lang: str) -> str:
    """ "Noted: {pet}'s rabies vaccination, given ..., valid until ..." after record_vaccination."""
    catalog = texts(lang)
    return catalog.t(
        "vaccination.recorded",
        pet=pet_name,
        vaccine=vaccine_name(shop, record.kind, lang),
        date=catalog.format_date(record.given_on),
        until=catalog.format_date(record.expires_on),
    )
