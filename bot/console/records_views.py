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
from bot.console.views import _chrome, _lang, _page, _render


async def customers_page(request: web.Request) -> web.StreamResponse:
    found = await _page(request)
    if isinstance(found, web.Response):
        return found
    session, shop_id = found
    lang = _lang(request, session)
    return _render(request, "customers.html", lang, page="customers", **_chrome(request, session, shop_id))


async def customer_page(request: web.Request) -> web.StreamResponse:
    found = await _page(request)
    if isinstance(found, web.Response):
        return found
    session, shop_id = found
    customer_id = int_id(request.query.get("id", ""), "id")
    lang = _lang(request, session)
    return _render(
        request,
        "customer.html",
        lang,
        page="customer",
        customer_id=customer_id,
        **_chrome(request, session, shop_id),
    )


def register(app: web.Application) -> None:
    app.router.add_get("/console/customers", customers_page)
    app.router.add_get("/console/customer", customer_page)
