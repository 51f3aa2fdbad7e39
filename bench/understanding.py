"""The understanding step of one message (bot/engine/understanding.py ``understand``), per message.

    .venv/bin/python bench/understanding.py            # 300 rounds of a zh/en message mix

Prints the median and p99 time of one ``understand()`` call, and the same with the word lists
normalised and compiled on every call and ``normalise`` uncached (the baseline, measured in the
same run; it compiles patterns the old code left to ``re``'s own cache, so it is an upper bound of
the old cost: at commit 859f579 the old code measured 2.57 ms against 0.87 ms in one run).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import date
from datetime import time as clock_time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.engine import intents, understanding  # noqa: E402
from core.config import ShopConfig, load_config  # noqa: E402

MESSAGES = [
    ("pawspa", "你们几点开门"),
    ("pawspa", "周六中午12点给我家球球洗个澡"),
    ("pawspa", "can I book a bath for my dog on saturday at 10?"),
    ("pawspa", "how much is a bath for a medium-sized dog, with the coat conditioner?"),
    ("pawspa", "好的"),
    ("clearsight", "我想给我儿子约个验光，他7岁"),
    ("clearsight", "what are your opening hours"),
    ("clearsight", "Monday at 10, no wait, 11"),
]
ROUNDS = 300


def _times(shops: dict[str, ShopConfig]) -> list[float]:
    out = []
    for _ in range(ROUNDS):
        for shop, text in MESSAGES:
            began = time.perf_counter()
            understanding.understand(text, shops[shop], (), date(2026, 12, 2), lang="zh", now=clock_time(10))
            out.append(time.perf_counter() - began)
    return out


def _figures(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p99 = ordered[int(0.99 * (len(ordered) - 1))]
    print(f"{label:<34} median {1000 * statistics.median(ordered):.3f} ms   p99 {1000 * p99:.3f} ms")


def main() -> int:
    config = load_config(ROOT / "config.yaml")
    shops = dict(config.shops)
    _times(shops)  # warm up
    current = _times(shops)
    uncached = intents.normalise.__wrapped__  # lru_cache keeps the original function

    def unprepared(words: tuple[str, ...]) -> understanding._WordList:
        understanding._PREPARED.clear()
        return prepare(words)

    prepare = understanding._prepared
    with (
        mock.patch.object(understanding, "normalise", uncached),
        mock.patch.object(intents, "normalise", uncached),
        mock.patch.object(understanding, "_prepared", unprepared),
    ):
        baseline = _times(shops)
    _figures("understand() now", current)
    _figures("lists compiled on every call", baseline)
    print(f"ratio baseline/now: {statistics.median(baseline) / statistics.median(current):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
