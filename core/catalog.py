"""Mirrors config.yaml's catalog (shops, services, add-ons, staff, resources) into the database.

config.yaml is the truth; the tables exist so bookings can reference them and reports can join.
Items removed from the file are marked inactive, never deleted (old bookings point at them).
"""

from __future__ import annotations

from sqlalchemy import update

from core.config import AppConfig
from core.db import Database
from core.models import Addon, Base, Resource, Service, Shop, StaffMember
from core.money import cents


def catalog_rows(config: AppConfig) -> list[Base]:
    rows: list[Base] = []
    for shop_id, shop in config.shops.items():
        rows.append(
            Shop(id=shop_id, name_zh=shop.name.zh, name_en=shop.name.en, timezone=shop.timezone, active=True)
        )
        for sid, svc in shop.services.items():
            rows.append(
                Service(
                    shop_id=shop_id,
                    id=sid,
                    name_zh=svc.name.zh,
                    name_en=svc.name.en,
                    duration_min=svc.duration_min,
                    price_cents=cents(svc.price),
                    active=True,
                )
            )
        for aid, addon in shop.addons.items():
            rows.append(
                Addon(
                    shop_id=shop_id,
                    id=aid,
                    name_zh=addon.name.zh,
                    name_en=addon.name.en,
                    duration_min=addon.duration_min,
                    price_cents=cents(addon.price),
                    active=True,
                )
            )
        for mid, member in shop.staff.items():
            rows.append(
                StaffMember(
                    shop_id=shop_id,
                    id=mid,
                    name_zh=member.name.zh,
                    name_en=member.name.en,
                    role=member.role,
                    active=True,
                )
            )
        for rid, res in shop.resources.items():
            rows.append(Resource(shop_id=shop_id, id=rid, capacity=res.capacity, active=True))
    return rows


async def sync_catalog(db: Database, config: AppConfig) -> None:
    """Upsert every catalog item from the config; deactivate the ones no longer there."""
    wanted = catalog_rows(config)
    async with db.transaction() as s:
        for model in (Shop, Service, Addon, StaffMember, Resource):
            await s.execute(update(model).values(active=False))
        await s.flush()
        for row in wanted:
            await s.merge(row)
