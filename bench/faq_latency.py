"""FAQ match latency with 1,000 and 10,000 synthetic entries vs difflib (prints, no asserts).

Synthetic entries are the real pawspa + clearsight entries re-worded: polite prefixes,
time/pet/service qualifiers and an extra service name per entry, so the n-gram index sees
realistic overlap (many entries share "洗澡", "price", ...) rather than random noise.
Queries are the customer questions from bench/faq_eval.yaml. The baseline is
`difflib.get_close_matches(normalised query, normalised questions, n=3)` on the same data.

    .venv/bin/python bench/faq_latency.py [--queries 200] [--difflib-queries 40]
"""

from __future__ import annotations

import argparse
import difflib
import random
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faq.loader import load_faq  # noqa: E402
from faq.matcher import FaqMatcher  # noqa: E402
from faq.model import Faq, FaqEntry  # noqa: E402
from faq.normalize import normalize  # noqa: E402

ZH_PREFIX = ["", "请问", "想问一下", "你好，", "麻烦问下", "亲，", "老板，"]
ZH_QUALIFIER = ["周末", "工作日", "晚上", "早上", "节假日", "第一次", "会员", "新客", "老客户",
                "两只", "小型", "大型", "长毛", "短毛", "幼年", "老年", "下雨天", "月底"]
ZH_SERVICE = ["精油SPA", "药浴", "香薰护理", "染色", "造型设计", "宠物蛋糕", "寄养", "接送",
              "镜片镀膜", "隐形护理", "视觉训练", "眼镜清洗", "太阳镜", "儿童镜架", "运动眼镜"]
EN_PREFIX = ["", "hi, ", "hello, ", "quick question: ", "sorry, ", "excuse me, "]
EN_QUALIFIER = ["on weekends", "in the evening", "for members", "for new customers",
                "for two pets", "for long hair", "on holidays", "for seniors", "for kids"]
EN_SERVICE = ["spa package", "medicated bath", "aroma care", "coat colouring", "pet cake",
              "boarding", "pick-up service", "lens coating", "vision training",
              "sports glasses", "kids frames", "blue light coating", "polarised lenses"]


def _variant(question: str, rng: random.Random) -> str:
    if any("\u4e00" <= ch <= "\u9fff" for ch in question):
        return (rng.choice(ZH_PREFIX) + rng.choice(ZH_QUALIFIER) + rng.choice(ZH_SERVICE)
                + question)
    return f"{rng.choice(EN_PREFIX)}{question} {rng.choice(EN_QUALIFIER)} " \
           f"({rng.choice(EN_SERVICE)})"


def synthetic_faq(real: list[FaqEntry], size: int, seed: int = 7) -> Faq:
    rng = random.Random(seed)
    entries = []
    for i in range(size):
        base = real[i % len(real)]
        entries.append(base.model_copy(update={
            "id": f"{base.id}_{i}",
            "questions": [_variant(q, rng) for q in base.questions],
            "keywords": [*base.keywords[:3], rng.choice(ZH_SERVICE), rng.choice(EN_SERVICE)],
        }))
    return Faq(shop="synthetic", entries=tuple(entries), synonyms={})


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--difflib-queries", type=int, default=40)
    args = parser.parse_args()
    real: list[FaqEntry] = []
    for name in ("pawspa.yaml", "clearsight.yaml"):
        faq = load_faq(ROOT / "faq" / name)
        assert isinstance(faq, Faq), faq
        real.extend(faq.entries)
    items = yaml.safe_load((ROOT / "bench" / "faq_eval.yaml").read_text(encoding="utf-8"))
    queries = [str(q["text"]) for q in items["questions"]]
    random.Random(1).shuffle(queries)

    print(f"{'entries':>8} {'build s':>8} {'ours median ms':>15} {'ours p99 ms':>12} "
          f"{'difflib median ms':>18} {'difflib p99 ms':>15} {'ratio (median)':>15}")
    for size in (1_000, 10_000):
        faq = synthetic_faq(real, size)
        start = time.perf_counter()
        matcher = FaqMatcher(faq)
        build = time.perf_counter() - start
        ours: list[float] = []
        for i in range(args.queries):
            query = queries[i % len(queries)]
            start = time.perf_counter()
            matcher.match(query)
            ours.append(time.perf_counter() - start)
        choices = [normalize(q) for entry in faq.entries for q in entry.questions]
        base: list[float] = []
        for query in queries[: args.difflib_queries]:
            start = time.perf_counter()
            difflib.get_close_matches(normalize(query), choices, n=3, cutoff=0.6)
            base.append(time.perf_counter() - start)
        (om, op), (dm, dp) = _ms(ours), _ms(base)
        print(f"{size:>8} {build:>8.2f} {om:>15.2f} {op:>12.2f} {dm:>18.1f} {dp:>15.1f} "
              f"{dm / om:>14.0f}x")
    print(f"({args.queries} queries for ours, {args.difflib_queries} for difflib; "
          "difflib times include its own n=3, cutoff=0.6 search over every question)")


if __name__ == "__main__":
    main()
