"""Customer and pet profiles: who a chat belongs to, their pets, language and history.

A customer is one row per person per shop, reached through one or more channel identities
(Telegram chat, WeChat openid, widget session, terminal name). Phone numbers are stored in
full but only ever shown masked (``mask_phone``) in logs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from core.db import Database, Prepared, prepared_insert
from core.models import Booking, BookingStatus, ChannelIdentity, Customer, Pet
from core.pets import Species


@dataclass(frozen=True)
class PetView:
    id: int
    name: str
    species: str
    breed: str
    size: str | None
    birth_date: date | None
    notes: str
    vaccinated_on: date | None = None


@dataclass(frozen=True)
class CustomerView:
    id: int
    shop_id: str
    display_name: str
    language: str
    phone: str | None
    notes: str
    pets: tuple[PetView, ...]
    notices: bool = False  # opted in to shop news

    @classmethod
    def of(cls, row: Any, pets: Iterable[PetView]) -> CustomerView:
        """The view of a customer row (an ORM object or a Core row with the same column names)."""
        return cls(
            id=row.id,
            shop_id=row.shop_id,
            display_name=row.display_name,
            language=row.language,
            phone=row.phone,
            notes=row.notes,
            pets=tuple(pets),
            notices=bool(row.notices),
        )


def mask_phone(phone: str | None) -> str:
    """'+86 138 1234 5678' -> '+86*******5678': enough to recognise, not to call."""
    if not phone:
        return ""
    digits = [c for c in phone if c.isdigit()]
    if len(digits) <= 4:
        return "*" * len(digits)
    prefix = "+" + "".join(digits[:2]) if phone.strip().startswith("+") else ""
    hidden = len(digits) - 4 - (2 if prefix else 0)
    return f"{prefix}{'*' * max(hidden, 0)}{''.join(digits[-4:])}"


_CUSTOMERS = cast(Table, Customer.__table__)
_IDENTITIES = cast(Table, ChannelIdentity.__table__)
_PETS = cast(Table, Pet.__table__)


def _known_query(shop_id: Any, channel: Any, external_id: Any) -> Any:
    """The customer of a channel identity with their pets, in ONE statement."""
    c, i, p = _CUSTOMERS, _IDENTITIES, _PETS
    return (
        select(
            c.c.id,
            c.c.shop_id,
            c.c.display_name,
            c.c.language,
            c.c.phone,
            c.c.notes,
            c.c.notices,
            p.c.id.label("pet_id"),
            p.c.name,
            p.c.species,
            p.c.breed,
            p.c.size,
            p.c.birth_date,
            p.c.notes.label("pet_notes"),
            p.c.vaccinated_on,
        )
        .select_from(i.join(c, c.c.id == i.c.customer_id).outerjoin(p, p.c.customer_id == c.c.id))
        .where(i.c.shop_id == shop_id, i.c.channel == channel, i.c.external_id == external_id)
        .order_by(p.c.id)
    )


# Every message asks who its customer is: the statements of that, built once (core/db.py).
_KNOWN = Prepared(_known_query(bindparam("b_shop"), bindparam("b_channel"), bindparam("b_external")))
_NEW_CUSTOMER = prepared_insert(
    _CUSTOMERS, ("shop_id", "display_name", "language", "notes", "notices", "created_at"), returning=[_CUSTOMERS.c.id]
)
_NEW_IDENTITY = prepared_insert(_IDENTITIES, ("shop_id", "customer_id", "channel", "external_id", "created_at"))


def _view_of(rows: list[Any]) -> CustomerView | None:
    """A customer view from the rows of ``_known_query`` (None: no such identity)."""
    if not rows:
        return None
    first = rows[0]
    pets = tuple(
        PetView(r.pet_id, r.name, r.species, r.breed, r.size, r.birth_date, r.pet_notes, r.vaccinated_on)
        for r in rows
        if r.pet_id is not None
    )
    return CustomerView.of(first, pets)


def _pet_view(p: Pet) -> PetView:
    return PetView(p.id, p.name, p.species, p.breed, p.size, p.birth_date, p.notes, p.vaccinated_on)


class CustomerDirectory:
    """Finds or creates customers by channel identity and keeps their pets."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def identify(
        self, shop_id: str, channel: str, external_id: str, *, display_name: str = "", language: str = "zh"
    ) -> CustomerView:
        """The customer behind a channel identity, created on first contact."""
        uow = self.db.current()
        if uow is not None:  # a chat turn: its own connection, statements prepared once
            key = {"b_shop": shop_id, "b_channel": channel, "b_external": external_id}
            found = _view_of(await uow.run(_KNOWN, key))
            if found is None and uow.raw is not None:
                # SQLite: the unit of work holds the write lock since it began, so nobody can
                # create this identity meanwhile (no savepoint needed for a race)
                now = self.clock.now()
                values = {"shop_id": shop_id, "channel": channel, "external_id": external_id, "created_at": now}
                customer = {"display_name": display_name, "language": language, "notes": "", "notices": False}
                customer_id = (await uow.run(_NEW_CUSTOMER, {**values, **customer}))[0][0]
                await uow.run(_NEW_IDENTITY, {**values, "customer_id": customer_id})
                return CustomerView(customer_id, shop_id, display_name, language, None, "", (), notices=False)
        else:
            async with self.db.reading() as s:
                found = await self._known(s, shop_id, channel, external_id)
        if found is not None and (found.display_name or not display_name):
            return found
        if found is not None:  # we learnt their name
            await self.update(found.id, display_name=display_name)
            view = await self.get(found.id)
            assert view is not None
            return view
        try:
            async with self.db.transaction() as s:
                now = self.clock.now()
                customer_id = await s.scalar(
                    insert(_CUSTOMERS)
                    .values(
                        shop_id=shop_id,
                        display_name=display_name,
                        language=language,
                        notes="",
                        notices=False,
                        created_at=now,
                    )
                    .returning(_CUSTOMERS.c.id)
                )
                assert customer_id is not None
                await s.execute(
                    insert(_IDENTITIES).values(
                        shop_id=shop_id,
                        customer_id=customer_id,
                        channel=channel,
                        external_id=external_id,
                        created_at=now,
                    )
                )
                return CustomerView(customer_id, shop_id, display_name, language, None, "", (), notices=False)
        except IntegrityError:  # the same person's first two messages raced: use the winner
            async with self.db.transaction() as s:
                winner = await self._by_identity(s, shop_id, channel, external_id)
                assert winner is not None
                return await self._view(s, winner)

    async def get(self, customer_id: int) -> CustomerView | None:
        async with self.db.reading() as s:
            customer = await s.get(Customer, customer_id)
            return await self._view(s, customer) if customer else None

    async def update(
        self,
        customer_id: int,
        *,
        display_name: str | None = None,
        language: str | None = None,
        phone: str | None = None,
        notices: bool | None = None,
    ) -> None:
        async with self.db.transaction() as s:
            customer = await s.get(Customer, customer_id)
            if customer is None:
                raise LookupError(f"no customer {customer_id}")
            if display_name is not None:
                customer.display_name = display_name
            if language is not None:
                customer.language = language
            if phone is not None:
                customer.phone = phone
            if notices is not None:
                customer.notices = notices

    async def add_pet(
        self,
        customer_id: int,
        *,
        name: str,
        species: str,
        breed: str = "",
        size: str | None = None,
        birth_date: date | None = None,
        notes: str = "",
        vaccinated_on: date | None = None,
    ) -> PetView:
        async with self.db.transaction() as s:
            pet = Pet(
                customer_id=customer_id,
                name=name.strip()[:100],
                species=species,
                breed=breed[:100],
                size=size,
                birth_date=birth_date,
                notes=notes,
                vaccinated_on=vaccinated_on,
            )
            s.add(pet)
            await s.flush()
            return _pet_view(pet)

    async def update_pet(
        self,
        customer_id: int,
        pet_id: int,
        *,
        size: str | None = None,
        breed: str | None = None,
        vaccinated_on: date | None = None,
        name: str | None = None,
        species: Species | None = None,
    ) -> PetView | None:
        """Remember what the customer told us about a pet on file (only the fields given); a new
        species drops a size that was only meant for dogs."""
        async with self.db.transaction() as s:
            pet = await s.get(Pet, pet_id)
            if pet is None or pet.customer_id != customer_id:
                return None
            if name is not None and name.strip():
                pet.name = name.strip()[:50]
            if size is not None:
                pet.size = size
            if breed is not None:
                pet.breed = breed[:100]
            if vaccinated_on is not None:
                pet.vaccinated_on = vaccinated_on
            if species is not None and species != pet.species:
                pet.species = species
                if species != "dog":
                    pet.size = None
            await s.flush()
            return _pet_view(pet)

    async def identities(self, customer_id: int) -> list[tuple[str, str]]:
        """Every (channel, external id) this customer can be reached on, oldest first."""
        async with self.db.reading() as s:
            rows = await s.execute(
                select(ChannelIdentity.channel, ChannelIdentity.external_id)
                .where(ChannelIdentity.customer_id == customer_id)
                .order_by(ChannelIdentity.id)
            )
            return [(channel, external_id) for channel, external_id in rows]

    async def last_visit(self, customer_id: int, now: datetime | None = None) -> Booking | None:
        """The most recent completed or past confirmed booking (for "same as last time")."""
        moment = now or self.clock.now()
        async with self.db.reading() as s:
            return await s.scalar(
                select(Booking)
                .where(
                    Booking.customer_id == customer_id,
                    Booking.status.in_((BookingStatus.COMPLETED, BookingStatus.CONFIRMED)),
                    Booking.start_at < moment,
                )
                .order_by(Booking.start_at.desc())
                .limit(1)
            )

    async def _known(self, s: AsyncSession, shop_id: str, channel: str, external_id: str) -> CustomerView | None:
        """The customer of a channel identity with their pets in ONE statement (every message
        asks this first: the customer, then the pets, was two round trips)."""
        return _view_of(list(await s.execute(_known_query(shop_id, channel, external_id))))

    async def _by_identity(self, s: AsyncSession, shop_id: str, channel: str, external_id: str) -> Customer | None:
        return await s.scalar(
            select(Customer)
            .join(ChannelIdentity, ChannelIdentity.customer_id == Customer.id)
            .where(
                ChannelIdentity.shop_id == shop_id,
                ChannelIdentity.channel == channel,
                ChannelIdentity.external_id == external_id,
            )
        )

    async def _view(self, s: AsyncSession, customer: Customer) -> CustomerView:
        pets = await s.scalars(select(Pet).where(Pet.customer_id == customer.id).order_by(Pet.id))
        return CustomerView.of(customer, (_pet_view(p) for p in pets))


async def notice_audience(db: Database, shop_id: str) -> list[tuple[int, str]]:
    """(customer id, language) of everyone in a shop who opted in to its news."""
    async with db.reading() as s:
        rows = await s.execute(
            select(Customer.id, Customer.language).where(Customer.shop_id == shop_id, Customer.notices.is_(True))
        )
        return [(cid, lang) for cid, lang in rows]
