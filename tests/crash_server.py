"""A real `serve` process for the inbox crash tests (tests/test_inbox_crash.py), killed or stopped there.

    python tests/crash_server.py --database-url URL --telegram-api URL --wechat-api URL --now ISO [--go-on-stdin]

The demo config with a Telegram bot for pawspa (webhook, pointed at the test's fake Bot API)
and a WeChat account for clearsight (plain mode, pointed at the fake WeChat API; passive
replies off, so every reply goes through the customer service API and can be counted). The
app, the inbox worker and the delivery loop run as `chatbook serve` runs them, on a clock that
starts at ``--now`` and runs at the real pace (retries come due). Prints ``ready <port>`` once it
listens; SIGTERM stops it the way `serve` stops (no new work, the work in hand finished).
With ``--go-on-stdin`` it imports everything, then waits for a line on stdin before it opens the
database (end of input: it exits 0 untouched): the test spawns its processes early, because
Python's start-up is most of a restart, and starts each one only when the scenario says so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if sys.path[:1] != [str(ROOT)]:  # before tests/ (the script's folder): its faq/ is not the package
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("PTB_TIMEDELTA", "1")

from aiohttp import web  # noqa: E402

from bot.bootstrap import bootstrap  # noqa: E402
from bot.web import build_app  # noqa: E402
from channels.wechat import WEBHOOK_KEY  # noqa: E402
from core.config import AppConfig, TelegramConfig, load_config  # noqa: E402
from tests.channels.fake_wechat import wechat_config  # noqa: E402

TOKEN = "7012345678:AAHk3Zfake-TOKEN_for_chatbook_tests0"
SECRET = "pawspa-webhook-secret"


@dataclass
class RunningClock:
    """``start`` at wall time ``since``, moving with the wall clock: the demo data stay valid,
    retries come due, and every process of one test agrees on the time."""

    start: datetime
    since: float

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.time() - self.since)


def crash_config(telegram_api: str, wechat_api: str) -> AppConfig:
    config = load_config(ROOT / "config.yaml", environ={})
    pawspa, clearsight = config.shops["pawspa"], config.shops["clearsight"]
    telegram = TelegramConfig(token=TOKEN, secret_token=SECRET, api_base_url=telegram_api)
    wechat = wechat_config(wechat_api, aes=False)
    shops = {
        **config.shops,
        "pawspa": pawspa.model_copy(update={"channels": pawspa.channels.model_copy(update={"telegram": telegram})}),
        "clearsight": clearsight.model_copy(
            update={"channels": clearsight.channels.model_copy(update={"wechat": wechat})}
        ),
    }
    return config.model_copy(update={"shops": shops})


def warm_up() -> None:
    """What a start-up does before it touches anything outside the process: the channel modules
    imported, the FAQ's word list built. Done before waiting for the go, so a start is a restart."""
    from bot.wiring import channel_modules
    from faq.segment import tokenizer

    list(channel_modules())
    tokenizer()


def _no_chat_pace() -> None:
    """Scripted customers type faster than people: no per-chat pace (the 30/s per bot stays)."""
    import functools

    import channels.telegram

    channels.telegram.Limits = functools.partial(channels.telegram.Limits, chat_per_second=0)  # type: ignore[misc, assignment]  # a partial stands in for the class (only called)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--telegram-api", required=True)
    parser.add_argument("--wechat-api", required=True)
    parser.add_argument("--now", required=True)
    parser.add_argument("--since", type=float, required=True, help="the wall time (epoch s) when it was --now")
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("--go-on-stdin", action="store_true", help="open the database after a line on stdin")
    args = parser.parse_args()
    if args.go_on_stdin:
        warm_up()
        if not sys.stdin.readline():
            return 0  # never started: the test did not need this process
    config = crash_config(args.telegram_api, args.wechat_api)
    _no_chat_pace()
    services = await bootstrap(
        config,
        clock=RunningClock(datetime.fromisoformat(args.now), args.since),
        database_url=args.database_url,
        migrate=False,
    )
    app = build_app(services)
    app[WEBHOOK_KEY].passive_deadline = 0.0  # every WeChat reply through the API: countable
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    await services.start_workers()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(f"ready {runner.addresses[0][1]}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await services.stop_workers(grace=args.grace)
        await services.close()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
