"""One `serve` process's daily check-up run, for tests/test_auto_recalls.py, run as its own process.

    python tests/recall_worker.py --database-url URL --now ISO

Bootstraps the real Services on the database (no migration: the test did that) on a FixedClock
set to ``--now``, prints "ready", waits for a line on stdin (so two processes start their run at
the same moment), runs the scheduler's job once (bot/usecases/recalls.py ``DailyRecalls.tick``,
as a fresh process would) and prints one JSON line: {shop: [exam ids it sent]}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if sys.path[:1] != [str(ROOT)]:  # before tests/ (the script's folder): its faq/ is not the package
    sys.path.insert(0, str(ROOT))

from bot.bootstrap import bootstrap  # noqa: E402
from bot.usecases.recalls import DailyRecalls  # noqa: E402
from core.clock import FixedClock  # noqa: E402
from core.config import load_config  # noqa: E402


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--now", required=True, help="ISO time of the process's FixedClock")
    args = parser.parse_args()
    config = load_config(ROOT / "config.yaml", environ={})
    services = await bootstrap(
        config, clock=FixedClock(datetime.fromisoformat(args.now)), database_url=args.database_url, migrate=False
    )
    try:
        print("ready", flush=True)
        if not sys.stdin.readline():
            return 0
        runs = await DailyRecalls().tick(services)
        print(json.dumps({shop: list(run.sent) for shop, run in runs.items()}), flush=True)
    finally:
        await services.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
