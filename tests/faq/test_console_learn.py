"""The FAQ page's "add this phrasing to entry X" (bot/console/faq_api.py), over real HTTP with the
real engine: a customer's question that got "did you mean" buttons, and the entry they tapped, is
offered; one POST writes it into the shop's YAML (comments and order kept), the shop answers that
question at once, and the audit trail names who did it. Non-admins, a missing CSRF token and bad
fields get 403/400 naming the field; nothing is written."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.bootstrap import Services, bootstrap
from bot.web import build_app
from core.clock import FixedClock
from core.config import AppConfig
from core.models import AuditEvent
from tests.support.collecting import CollectingChannel

PASSWORD = "correct horse battery"
QUESTION = "剪完毛能拍照吗"  # pawspa offers "did you mean" buttons for it (its `photos` entry is likeliest)


@pytest.fixture
def faq_dir(tmp_path: Path, demo_config: AppConfig) -> Path:
    shutil.copytree(demo_config.faq_dir, tmp_path / "faq")
    return tmp_path / "faq"


Console = tuple[aiohttp.ClientSession, aiohttp.ClientSession, str, str, str, Services]


@pytest.fixture
async def console(faq_dir: Path, demo_config: AppConfig, clock: FixedClock, sqlite_url: str) -> AsyncIterator[Console]:
    config = demo_config.model_copy(update={"faq_dir": str(faq_dir)})
    services = await bootstrap(config, clock=clock, database_url=sqlite_url)
    await services.accounts.add("boss", PASSWORD, shops=["pawspa", "clearsight"], role="admin")
    await services.accounts.add("desk", PASSWORD, shops=["pawspa"], role="staff")
    boss = await services.accounts.login("boss", PASSWORD, "127.0.0.1")
    desk = await services.accounts.login("desk", PASSWORD, "127.0.0.1")
    assert boss is not None and desk is not None
    server = TestServer(build_app(services), host="127.0.0.1")
    await server.start_server()
    admin_http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    admin_http.cookie_jar.update_cookies({"chatbook_session": boss.token})
    staff_http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    staff_http.cookie_jar.update_cookies({"chatbook_session": desk.token})
    try:
        yield (admin_http, staff_http, str(server.make_url("")).rstrip("/"), boss.csrf, desk.csrf, services)
    finally:
        await admin_http.close()
        await staff_http.close()
        await server.close()
        await services.close()


async def _tap_suggestion(services: Services) -> str:
    chat = CollectingChannel(services.engine, "pawspa", user="learner")
    await chat.push(QUESTION)
    tapped = next(b for r in chat.replies for b in r.buttons if b.payload.startswith("faq:"))
    await chat.push(tapped.label, payload=tapped.payload)
    return tapped.payload[4:]


async def test_a_tapped_suggestion_is_offered_and_one_click_teaches_the_faq(console: Console, faq_dir: Path) -> None:
    http, _, base, csrf, _, services = console
    assert services.faq is not None
    entry = await _tap_suggestion(services)
    before = services.faq.get("pawspa")
    assert before is not None and before.match(QUESTION).decision != "answer"

    async with http.get(f"{base}/api/console/faq/pawspa/learn?lang=en") as r:
        assert r.status == 200, await r.text()
        offered = await r.json()
    assert offered["can_add"] is True
    assert {"text": QUESTION, "entry": entry, "count": 1} in offered["tapped"]
    assert entry in {e["id"] for e in offered["entries"]}

    original = (faq_dir / "pawspa.yaml").read_text(encoding="utf-8")
    async with http.post(f"{base}/api/console/faq/pawspa/phrasing", json={"entry": entry, "text": QUESTION,
                         "source": "tapped"}, headers={"X-CSRF-Token": csrf}) as r:
        assert r.status == 200, await r.text()
        done = await r.json()
    assert done["added"] is True and done["entry"] == entry

    written = (faq_dir / "pawspa.yaml").read_text(encoding="utf-8")
    assert QUESTION in written
    comments = [line for line in original.splitlines() if line.lstrip().startswith("#")]
    assert [line for line in written.splitlines() if line.lstrip().startswith("#")] == comments
    ids = [line.strip() for line in original.splitlines() if line.strip().startswith("- id:")]
    assert [line.strip() for line in written.splitlines() if line.strip().startswith("- id:")] == ids
    assert len(written.splitlines()) == len(original.splitlines()) + 1  # one line added, nothing re-flowed

    after = services.faq.get("pawspa")
    assert after is not None
    result = after.match(QUESTION)
    assert (result.decision, result.entry_id) == ("answer", entry)  # hot-reloaded: answered now
    chat = CollectingChannel(services.engine, "pawspa", user="next-customer")
    await chat.push(QUESTION)
    assert not chat.labels  # the next customer gets the answer, not buttons

    async with http.get(f"{base}/api/console/faq/pawspa/learn") as r:
        assert all(item["text"] != QUESTION for item in (await r.json())["tapped"])  # learnt: not offered again

    async with services.db.reading() as s:
        events = list(await s.scalars(select(AuditEvent).where(AuditEvent.action == "faq.phrasing_added")))
    assert [(e.shop_id, e.actor_id, e.subject, e.details["entry"], e.details["source"]) for e in events] == [
        ("pawspa", "boss", "faq", entry, "tapped")
    ]
    assert QUESTION not in str(events[0].details)  # the customer's words are in the FAQ file, not the trail

    async with http.post(f"{base}/api/console/faq/pawspa/phrasing", json={"entry": entry, "text": QUESTION},
                         headers={"X-CSRF-Token": csrf}) as r:
        assert r.status == 200 and (await r.json())["added"] is False  # twice: nothing written again


async def test_an_unanswered_question_is_offered_with_its_likeliest_entries(console: Console) -> None:
    http, _, base, _, _, services = console
    chat = CollectingChannel(services.engine, "pawspa", user="asker")
    for _ in range(2):
        await chat.push("你们店里有没有卖宠物染发剂的？")
    async with http.get(f"{base}/api/console/faq/pawspa/learn?lang=zh") as r:
        offered = await r.json()
    group = next(g for g in offered["unanswered"] if "染发剂" in g["text"])
    assert group["count"] == 2 and 1 <= len(group["candidates"]) <= 3
    assert offered["strings"]["add"] == "添加这个说法"


async def test_staff_may_look_but_only_admins_may_add_and_bad_input_names_the_field(
    console: Console, faq_dir: Path
) -> None:
    http, staff_http, base, csrf, staff_csrf, _ = console
    original = (faq_dir / "pawspa.yaml").read_text(encoding="utf-8")
    url = f"{base}/api/console/faq/pawspa/phrasing"
    async with staff_http.get(f"{base}/api/console/faq/pawspa/learn") as r:
        assert r.status == 200 and (await r.json())["can_add"] is False
    async with staff_http.post(url, json={"entry": "photos", "text": "拍照吗"},
                               headers={"X-CSRF-Token": staff_csrf}) as r:
        assert r.status == 403 and (await r.json())["error"] == "admin_only"
    async with http.post(url, json={"entry": "photos", "text": "拍照吗"}) as r:
        assert r.status == 403 and (await r.json())["error"] == "csrf"
    async with staff_http.get(f"{base}/api/console/faq/clearsight/learn") as r:
        assert r.status == 403  # not this account's shop
    cases = [
        ({"entry": "no_such_entry", "text": "拍照吗"}, "entry"),
        ({"entry": "../../etc", "text": "拍照吗"}, "entry"),
        ({"entry": "photos", "text": ""}, "text"),
        ({"entry": "photos", "text": "x" * 201}, "text"),
        ({"entry": "photos", "text": ["not", "a", "string"]}, "text"),
        ({"entry": "photos", "text": "call me on 138 0013 8000 about photos"}, "text"),
        ({"entry": "photos", "text": "拍照吗", "source": "magic"}, "source"),
    ]
    for body, field in cases:
        async with http.post(url, json=body, headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 400, (body, await r.text())
            assert (await r.json())["field"] == field, body
    async with http.post(url, data=b"[1, 2", headers={"X-CSRF-Token": csrf}) as r:
        assert r.status == 400
    assert (faq_dir / "pawspa.yaml").read_text(encoding="utf-8") == original
