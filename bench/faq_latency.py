"""FAQ load and match latency at 1,000 and 10,000 synthetic entries: the new matcher vs the
matcher before issue 11 (bench/faq_baseline.py) in the same run (prints, no asserts).

Synthetic entries are the real pawspa + clearsight entries re-worded: polite prefixes,
time/pet/service qualifiers and an extra service name per entry, so the indexes see
realistic overlap (many entries share "洗澡", "price", ...) rather than random noise.
Queries are the customer questions from bench/faq_eval.yaml and faq_eval_unseen.yaml.
"load" = parsing the YAML text of that many entries (faq.parse_faq) + building the matcher, cold
(no text of it cut before); "reload" = the same FAQ after staff add one phrasing, rebuilt with the
serving matcher lending its analyses, as the registry's hot reload does.
jieba's one-time, per-process set-up is printed on its own (it is paid once, not per FAQ).
"new, cached" = the same file again with its index cache (faq/indexcache.py) present: no YAML
read, no text analysed; the same load is also timed in a fresh process (a server restart).

    .venv/bin/python bench/faq_latency.py [--queries 300]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))
import faq_baseline  # noqa: E402

from faq.indexcache import IndexCache, load_matcher  # noqa: E402
from faq.loader import load_faq, parse_faq  # noqa: E402
from faq.matcher import FaqMatcher  # noqa: E402
from faq.model import Faq, FaqEntry  # noqa: E402
from faq.segment import forget_cuts, tokenizer  # noqa: E402

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


def faq_yaml(faq: Faq) -> str:
    """The FAQ as the YAML an admin would write (so that loading includes parsing)."""
    entries = []
    for entry in faq.entries:
        entries.append({"id": entry.id, "questions": list(entry.questions),
                        "keywords": list(entry.keywords),
                        "answer": {"zh": entry.answer.zh, "en": entry.answer.en}})
    return yaml.safe_dump({"shop": "synthetic", "entries": entries}, allow_unicode=True, sort_keys=False)


_CHILD = """
import sys, time
sys.path.insert(0, sys.argv[1])
start = time.perf_counter()
from faq.segment import tokenizer
tokenizer()
setup = time.perf_counter() - start
from faq.indexcache import IndexCache, load_matcher
from faq.loader import load_faq
from faq.matcher import FaqMatcher
start, cpu = time.perf_counter(), time.process_time()
matcher = load_matcher(sys.argv[2], load_faq, IndexCache(sys.argv[3]))
load, load_cpu = time.perf_counter() - start, time.process_time() - cpu
assert isinstance(matcher, FaqMatcher), matcher
print(f"{setup:.3f} {load:.3f} {load_cpu:.3f}")
"""


def _fresh_process_load(path: Path, cache_dir: Path) -> tuple[float, float, float]:
    """(jieba set-up s, load s, load CPU s) in a new Python process that finds the index cache."""
    done = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), str(path), str(cache_dir)],
                          capture_output=True, text=True, check=True)
    setup, load, load_cpu = done.stdout.split()
    return float(setup), float(load), float(load_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--sizes", default="1000,10000")
    args = parser.parse_args()
    start = time.perf_counter()
    tokenizer()
    setup = time.perf_counter() - start
    print(f"one-time jieba set-up in this process: {setup:.2f} s")
    real: list[FaqEntry] = []
    for name in ("pawspa.yaml", "clearsight.yaml"):
        faq = load_faq(ROOT / "faq" / name)
        assert isinstance(faq, Faq), faq
        real.extend(faq.entries)
    queries: list[str] = []
    for name in ("faq_eval.yaml", "faq_eval_unseen.yaml"):
        items = yaml.safe_load((ROOT / "bench" / name).read_text(encoding="utf-8"))
        queries += [str(q["text"]) for q in items["questions"]]
    random.Random(1).shuffle(queries)

    print(f"{'entries':>8} {'matcher':>14} {'load s':>7} {'cpu s':>6} {'median ms':>10} {'p99 ms':>8} "
          f"{'cpu median':>10} {'cpu p99':>8}")
    notes: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="faq-latency-"))
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            text = faq_yaml(synthetic_faq(real, size))
            path = work / f"synthetic{size}.yaml"
            path.write_text(text, encoding="utf-8")
            cache_dir = work / f"cache{size}"
            matchers = []
            for label, cls in (("old", faq_baseline.FaqMatcher), ("new, no cache", FaqMatcher)):
                forget_cuts()  # cold: no text of this FAQ was cut before
                start, cpu = time.perf_counter(), time.process_time()
                parsed = parse_faq(text, str(path))
                assert isinstance(parsed, Faq), parsed[:3]
                matchers.append((label, cls(parsed), time.perf_counter() - start, time.process_time() - cpu))
            built = matchers[1][1]
            assert isinstance(built, FaqMatcher)
            start = time.perf_counter()
            assert IndexCache(cache_dir).write(path, path.read_bytes(), None, built)
            write_s = time.perf_counter() - start
            child_setup, child_load, child_cpu = _fresh_process_load(path, cache_dir)
            forget_cuts()
            start, cpu = time.perf_counter(), time.process_time()
            cached = load_matcher(path, load_faq, IndexCache(cache_dir))
            assert isinstance(cached, FaqMatcher)
            matchers.append(("new, cached", cached, time.perf_counter() - start, time.process_time() - cpu))
            size_mb = IndexCache(cache_dir).file_for(path).stat().st_size / 1e6
            notes.append(f"{size:>8}: cache file {size_mb:.1f} MB (YAML {len(text.encode()) / 1e6:.1f} MB), "
                         f"written in {write_s:.2f} s after the first build; a new process loads it in "
                         f"{child_load:.2f} s, {child_cpu:.2f} s CPU "
                         f"(plus its one-time jieba set-up {child_setup:.2f} s)")
            # A hot reload after staff add one phrasing: the new file read again, the matcher rebuilt
            # with the serving one lending its analyses (what faq/registry.py does).
            edited = text.replace("questions:\n  - ", "questions:\n  - 周末可以带两只猫一起来洗吗\n  - ", 1)
            start = time.perf_counter()
            parsed = parse_faq(edited, "synthetic.yaml")
            assert isinstance(parsed, Faq), parsed[:3]
            parse_s = time.perf_counter() - start
            FaqMatcher(parsed, previous=built)
            total = time.perf_counter() - start
            notes.append(f"{size:>8}: reload after adding one phrasing {total:.2f} s "
                         f"(read {parse_s:.2f} s, rebuild {total - parse_s:.2f} s)")
            # Interleaved (each query through every matcher in turn) so that a noisy machine hurts
            # all alike; the cached matcher decodes each entry's part when it is first scored.
            # CPU time too: on a shared, loaded machine wall time mostly measures the others.
            samples: dict[str, list[float]] = {label: [] for label, *_ in matchers}
            cpu_samples: dict[str, list[float]] = {label: [] for label, *_ in matchers}
            for i in range(args.queries):
                query = queries[i % len(queries)]
                for label, matcher, *_ in matchers:
                    start, cpu = time.perf_counter(), time.process_time()
                    matcher.match(query)
                    samples[label].append(time.perf_counter() - start)
                    cpu_samples[label].append(time.process_time() - cpu)
            for label, _, load, load_cpu in matchers:
                median, p99 = _ms(samples[label])
                cpu_median, cpu_p99 = _ms(cpu_samples[label])
                print(f"{size:>8} {label:>14} {load:>7.2f} {load_cpu:>6.2f} {median:>10.3f} {p99:>8.3f} "
                      f"{cpu_median:>10.3f} {cpu_p99:>8.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for note in notes:
        print(note)
    print(f"({args.queries} queries per row, interleaved; load = read the YAML + build the matcher, cold: "
          "nothing of this FAQ cut before; 'new, cached' = the same file with its index cache present, "
          "in this process)")


if __name__ == "__main__":
    main()
