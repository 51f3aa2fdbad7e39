"""The conversation corpus (issue 9) outside pytest: pass rates and questions per booking.

    .venv/bin/python bench/conversations.py                   # the whole corpus
    .venv/bin/python bench/conversations.py -k pawspa_zh      # ids or file names containing this
    .venv/bin/python bench/conversations.py --failures 20     # also print 20 failed transcripts
    .venv/bin/python bench/conversations.py --ids failed.txt  # write the failed ids to a file
    .venv/bin/python bench/conversations.py --feasibility     # only check every expected booking can exist

Plays every conversation of tests/conversations/corpus/ with the same driver as
tests/conversations/test_corpus.py (real engine, a fresh SQLite database per conversation) and
prints the pass rate per class, per language, per shop and overall, and the median number of
bot questions per completed booking (a question = a bot turn after which the conversation
waits on an answer) next to the median ``floor`` of the same conversations (the questions a
perfect receptionist would have asked). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("PTB_TIMEDELTA", "1")

from tests.conversations.driver import (  # noqa: E402
    CLASSES,
    Result,
    Script,
    feasibility,
    load_corpus,
    run_conversation,
)


def _rate(results: list[Result]) -> str:
    passed = sum(r.passed for r in results)
    return f"{passed:4d}/{len(results):<4d} {100 * passed / len(results):5.1f}%" if results else "   -"


def _table(title: str, groups: dict[str, list[Result]], order: list[str] | None = None) -> None:
    print(f"\n{title}")
    for key in order or sorted(groups):
        if key in groups:
            print(f"  {key:<16} {_rate(groups[key])}")


def _median(values: list[int]) -> str:
    return f"{statistics.median(values):g}" if values else "-"


async def play(scripts: list[Script], workdir: Path) -> list[Result]:
    return [await run_conversation(script, workdir) for script in scripts]


async def check_feasible(scripts: list[Script], workdir: Path) -> list[tuple[Script, list[str]]]:
    found = [(script, await feasibility(script, workdir)) for script in scripts]
    return [(script, problems) for script, problems in found if problems]


def run(pattern: str, failures: int, ids_file: str | None, feasible_only: bool = False) -> int:
    scripts, errors = load_corpus()
    for error in errors:
        print(f"CORPUS ERROR {error}")
    chosen = [s for s in scripts if pattern in s.id or pattern in s.file]
    if not chosen:
        print(f"no conversation matches {pattern!r}")
        return 1
    logging.disable(logging.CRITICAL)  # an engine crash is a failed conversation; its report says so
    # as under pytest (pyproject's filterwarnings): a warning inside the engine is an error there too
    warnings.simplefilter("error")
    for module in ("wechatpy", "jieba", "pkg_resources"):
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=f"{module}.*")
    if feasible_only:
        with tempfile.TemporaryDirectory(prefix="chatbook-conversations-") as tmp:
            impossible = asyncio.run(check_feasible(chosen, Path(tmp)))
        for script, problems in impossible:
            print(f"{script.file}: {script.id}: " + "; ".join(problems))
        print(f"{len(impossible)} of {len(chosen)} conversations expect a booking that cannot exist")
        return 1 if impossible else 0
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chatbook-conversations-") as tmp:
        results = asyncio.run(play(chosen, Path(tmp)))
    elapsed = time.perf_counter() - began

    by_class: dict[str, list[Result]] = defaultdict(list)
    by_lang: dict[str, list[Result]] = defaultdict(list)
    by_shop: dict[str, list[Result]] = defaultdict(list)
    by_file: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by_class[r.script.cls].append(r)
        by_lang[r.script.lang].append(r)
        by_shop[r.script.shop].append(r)
        by_file[r.script.file].append(r)
    print(f"conversations: {len(results)} ({elapsed:.1f} s, {1000 * elapsed / len(results):.0f} ms each)")
    _table("pass rate per class", by_class, list(CLASSES))
    _table("pass rate per language", by_lang)
    _table("pass rate per shop", by_shop)
    _table("pass rate per file", by_file)
    print(f"\noverall          {_rate(results)}")

    booked = [r for r in results if r.booked and r.error is None]
    with_floor = [r for r in booked if r.script.floor is not None]
    print(
        f"\nquestions per completed booking: median {_median([r.questions for r in booked])} "
        f"over {len(booked)} bookings; where a floor is given ({len(with_floor)}): "
        f"median {_median([r.questions for r in with_floor])} vs median floor "
        f"{_median([r.script.floor for r in with_floor if r.script.floor is not None])}"
    )
    failed = [r for r in results if not r.passed]
    if ids_file:
        Path(ids_file).write_text("".join(f"{r.script.id}\n" for r in failed), encoding="utf-8")
    for r in failed[:failures]:
        print("\n" + r.report())
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-k", default="", help="only conversations whose id or file name contains this")
    parser.add_argument("--failures", type=int, default=0, help="print this many failed transcripts")
    parser.add_argument("--ids", default=None, help="write the failed conversation ids to this file")
    parser.add_argument("--feasibility", action="store_true", help="only check that expected bookings can exist")
    args = parser.parse_args()
    os.chdir(ROOT)
    return run(args.k, args.failures, args.ids, args.feasibility)


if __name__ == "__main__":
    raise SystemExit(main())
