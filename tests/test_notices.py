"""Shop notices go only to customers who opted in; "退订" / "stop" opts out."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from bot.bootstrap import bootstrap
from core.clock import FixedClock
from core.config import load_config
from core.messages import OutgoingMessage
from core.models import OutboxMessage
from tests.conftest import CONFIG_PATH, NOW
from tests.helpers import copy_sqlite, shows, sqlite_template
from tests.support.cli import run_chatbook
from tests.support.collecting import CollectingChannel


def test_opt_in_opt_out_and_send(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'n.db'}"

    async def chat() -> None:
        config = load_config(CONFIG_PATH, environ={})
        copy_sqlite(await sqlite_template(config), tmp_path / "n.db")  # migrated and synced once per process
        services = await bootstrap(config, clock=FixedClock(NOW), database_url=url, migrate=False, sync=False)
        try:
            fan = CollectingChannel(services.engine, "pawspa", user="fan", language_hint="zh")
            await fan.push("订阅")
            assert shows("notices.subscribed", fan.text)
            quitter = CollectingChannel(services.engine, "pawspa", user="quitter", language_hint="en")
            await quitter.push("subscribe")
            await quitter.push("STOP")  # replying stop opts out
            assert "no more shop news" in quitter.text
            await CollectingChannel(services.engine, "pawspa", user="silent").push("你好")  # never opted in
        finally:
            await services.close()

    asyncio.run(chat())
    done = run_chatbook(  # bot.cli.main in this process (tests/support/cli.py), on its own bootstrap
        "notice",
        "send",
        "--config",
        str(CONFIG_PATH),
        "--shop",
        "pawspa",
        "--zh",
        "元旦放假一天，1月2日照常营业",
        "--en",
        "Closed on New Year's Day",
        env={"CHATBOOK_DATABASE_URL": url},
    )
    assert done.returncode == 0, done.stderr
    assert "queued for 1 customer" in done.stdout

    async def queued() -> list[tuple[str, str]]:
        services = await bootstrap(load_config(CONFIG_PATH, environ={}), database_url=url, migrate=False)
        try:
            async with services.db.reading() as s:
                rows = list(await s.scalars(select(OutboxMessage)))
            return [(r.external_id, OutgoingMessage.from_json(r.body).text) for r in rows]
        finally:
            await services.close()

    [(who, text)] = asyncio.run(queued())
    assert who == "fan" and text.startswith("元旦放假一天") and shows("notices.footer", text)  # how to stop them
