"""The console's records pages (issue 15): server-rendered shells filled by records.js.

    GET /console/customers?shop=          find a customer by name or phone
    GET /console/customer?shop=&id=       one customer's records: pets and vaccinations, visit
                                          notes, eye exam results (form and summaries), the trail

Like the other pages they hold no customer data: records.js fetches it from
bot/console/records_api.py (which checks the shop) and writes it with textContent.
"""

from __future__ import annotations

from aiohttp import web

from bot.api import int_id
from bot.console.views import shell, shop_page
from core.staff_accounts import Session


@shop_page
async def customers_page(request: web.Request, session: Session, shop_id: str) -> web.StreamResponse:
    return shell(request, session, shop_id, "customers.html", "customers")


@shop_page
async def customer_page(request: web.Request, session: Session, shop_id: str) -> web.StreamResponse:
    customer_id = int_id(request.query.get("id", ""), "id")
    return shell(request, session, shop_id, "customer.html", "customer", customer_id=customer_id)


def register(app: web.Application) -> None:
    app.router.add_get("/console/customers", customers_page)
    app.router.add_get("/console/customer", customer_page)
