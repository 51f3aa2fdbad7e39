"""A delivery worker for tests/test_outbox_crash.py, run as its own process (and killed with SIGKILL).

    python tests/crash_worker.py --database-url URL --endpoint http://127.0.0.1:PORT/send --now ISO [--until-idle]
        [--go-on-stdin]

Bootstraps the real Services on the given database (no migration: the test did that) with one
sender, for the channel "fake": it POSTs each message as JSON to ``--endpoint`` (a small HTTP
receiver in the test process) and returns the receiver's id. Then it runs ``Delivery.tick`` in
a loop, exactly as the server's delivery loop would, on a FixedClock set to ``--now``. At start it
registers its worker row and takes over the rows of dead workers (bot/inbox.py), as `serve`
does. With ``--until-idle`` it exits 0 after the first tick that found nothing to do; without,
it idles and polls until it is killed. With ``--go-on-stdin`` it waits for a line on stdin before it
opens the database (the test spawns it early: Python's start-up is most of a restart).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if sys.path[:1] != [str(ROOT)]:  # before tests/ (the script's folder): its faq/ is not the package
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("PTB_TIMEDELTA", "1")

import aiohttp  # noqa: E402

from bot.bootstrap import bootstrap  # noqa: E402
from channels.base import DeliveryError  # noqa: E402
from core.clock import FixedClock  # noqa: E402
from core.config import load_config  # noqa: E402
from core.messages import OutgoingMessage  # noqa: E402

CHANNEL = "fake"


class HttpSender:
    """A ChannelSender whose "network" is the test's HTTP receiver."""

    channel = CHANNEL

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._session: aiohttp.ClientSession | None = None

    async def send(self, shop_id: str, external_id: str, message: OutgoingMessage) -> str | None:
        if self._session is None:
            # No total timeout: a stalled request must stay in flight until the process is killed.
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))
        payload = {"shop_id": shop_id, "external_id": external_id, "text": message.text}
        try:
            async with self._session.post(self.endpoint, json=payload) as response:
                if response.status != 200:
                    raise DeliveryError(f"HTTP {response.status}")
                return str((await response.json())["id"])
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--now", required=True, help="ISO time of the worker's FixedClock")
    parser.add_argument("--limit", type=int, default=4, help="rows claimed per tick")
    parser.add_argument("--until-idle", action="store_true", help="exit after the first empty tick")
    parser.add_argument("--go-on-stdin", action="store_true", help="open the database after a line on stdin")
    args = parser.parse_args()
    if args.go_on_stdin:
        from faq.segment import tokenizer

        tokenizer()  # the FAQ's word list, built by every start-up: ready before the go
        if not sys.stdin.readline():
            return 0  # never started
    config = load_config(ROOT / "config.yaml", environ={})
    clock = FixedClock(datetime.fromisoformat(args.now))
    services = await bootstrap(
        config,
        clock=clock,
        database_url=args.database_url,
        migrate=False,
        senders_override={CHANNEL: HttpSender(args.endpoint)},
    )
    try:
        await services.inbox.start()  # its worker row (liveness), and a dead worker's rows taken over
        print("ready", flush=True)
        while True:
            handled = await services.delivery.tick(limit=args.limit)
            if handled:
                print(f"tick {handled}", flush=True)
            else:
                if args.until_idle:
                    return 0
                await asyncio.sleep(0.05)
    finally:
        await services.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
