"""The on-disk index cache (faq/indexcache.py): a matcher read from it answers every question
exactly as a freshly built one does, and a cache file that is corrupt, stale or another file's is
never used: the FAQ is read and built again, and the customer gets the same answers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from faq import Faq, FaqMatcher, FaqRegistry, load_faq
from faq.indexcache import IndexCache, load_matcher
from faq.matcher import register_words
from tests.faq.conftest import GOOD, write

ROOT = Path(__file__).resolve().parents[2]
SHOPS = ROOT / "tests" / "faq" / "data" / "shops"
# The eval sets of bench/faq_accuracy.py (set 4 is another person's and not used here).
FAQ_FILES = {
    "pawspa": ROOT / "faq" / "pawspa.yaml", "clearsight": ROOT / "faq" / "clearsight.yaml",
    **{shop: SHOPS / f"{shop}.yaml" for shop in
       ("happytails", "lumen", "meowhaus", "visionplus", "purrlane", "kidsight")},
}
EVAL_FILES = ("faq_eval.yaml", "faq_eval_unseen.yaml", "faq_eval_unseen2.yaml", "faq_eval_unseen3.yaml")


def _questions() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {shop: [] for shop in FAQ_FILES}
    for name in EVAL_FILES:
        for item in yaml.safe_load((ROOT / "bench" / name).read_text(encoding="utf-8"))["questions"]:
            out[item["shop"]].append(str(item["text"]))
    return out


def _answers(matcher: FaqMatcher, questions: list[str]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for text in questions:
        result = matcher.match(text)
        ranked = matcher.rank(text)
        out.append((result.decision, result.entry_id, result.score,
                    tuple((c.id, c.score) for c in result.candidates),
                    tuple(item.features for item in ranked)))
    return out


def _faq(path: Path) -> Faq:
    faq = load_faq(path)
    assert isinstance(faq, Faq), faq
    return faq


def test_a_cached_matcher_ranks_and_decides_every_eval_question_like_a_fresh_build(tmp_path: Path) -> None:
    questions = _questions()
    cache = IndexCache(tmp_path / "cache")
    faqs = {shop: _faq(path) for shop, path in FAQ_FILES.items()}
    for faq in faqs.values():  # every shop's words in the shared dictionary first, as the registry does
        register_words(faq)
    fresh = {shop: FaqMatcher(faq) for shop, faq in faqs.items()}
    for shop, path in FAQ_FILES.items():
        assert cache.write(path, path.read_bytes(), None, fresh[shop])
    for shop, path in FAQ_FILES.items():
        cached = load_matcher(path, load_faq, cache)
        assert isinstance(cached, FaqMatcher) and cached.from_cache, shop
        assert cached.faq.entries == fresh[shop].faq.entries and cached.faq.lines == fresh[shop].faq.lines
        assert _answers(cached, questions[shop]) == _answers(fresh[shop], questions[shop]), shop


def test_a_hot_reload_from_a_cached_matcher_answers_like_a_fresh_build(tmp_path: Path) -> None:
    path = write(tmp_path / "pawspa.yaml", GOOD)
    cache = IndexCache(tmp_path / "cache")
    load_matcher(path, load_faq, cache)
    cached = load_matcher(path, load_faq, cache)
    assert isinstance(cached, FaqMatcher) and cached.from_cache
    edited = GOOD.replace("      - Is there parking?\n", "      - Is there parking?\n      - 车能停门口吗\n")
    write(path, edited)
    faq = load_faq(path)
    assert isinstance(faq, Faq)
    reloaded = FaqMatcher(faq, previous=cached)
    questions = ["车能停门口吗", "Is there parking?", "几点开门", "营业时间", "can I park my car"]
    assert _answers(reloaded, questions) == _answers(FaqMatcher(faq), questions)
    assert reloaded.match("车能停门口吗").entry_id == "parking"


def _cached_file(tmp_path: Path) -> tuple[Path, IndexCache, Path]:
    path = write(tmp_path / "pawspa.yaml", GOOD)
    cache = IndexCache(tmp_path / "cache")
    assert isinstance(load_matcher(path, load_faq, cache), FaqMatcher)
    assert cache.file_for(path).is_file()
    return path, cache, cache.file_for(path)


def _damage_flip(blob: bytes) -> bytes:
    middle = len(blob) * 3 // 4
    return blob[:middle] + bytes([blob[middle] ^ 0xFF]) + blob[middle + 1:]


DAMAGE = {
    "a flipped byte": _damage_flip,
    "truncated": lambda blob: blob[: len(blob) // 2],
    "empty": lambda blob: b"",
    "not ours": lambda blob: b"PK\x03\x04 something else entirely" * 10,
    "right magic, garbage after": lambda blob: blob[:30] + b"\x00" * 200,
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_cache_file_is_ignored_and_rebuilt(tmp_path: Path, damage: str) -> None:
    path, cache, cache_file = _cached_file(tmp_path)
    cache_file.write_bytes(DAMAGE[damage](cache_file.read_bytes()))

    matcher = load_matcher(path, load_faq, cache)

    assert isinstance(matcher, FaqMatcher) and not matcher.from_cache
    assert matcher.match("有停车位吗").entry_id == "parking"
    again = load_matcher(path, load_faq, cache)  # rewritten: the next start uses it again
    assert isinstance(again, FaqMatcher) and again.from_cache
    assert again.match("有停车位吗").entry_id == "parking"


def test_another_files_cache_is_not_used(tmp_path: Path) -> None:
    _, cache, cache_file = _cached_file(tmp_path)
    other = write(tmp_path / "clearsight.yaml", GOOD.replace("shop: pawspa", "shop: clearsight")
                  .replace("门口有车位。", "地下车库两小时免费。"))
    shutil.copyfile(cache_file, cache.file_for(other))  # pawspa's cache where clearsight's belongs

    matcher = load_matcher(other, load_faq, cache)

    assert isinstance(matcher, FaqMatcher) and not matcher.from_cache
    assert matcher.faq.shop == "clearsight"
    result = matcher.match("有停车位吗")
    assert result.entry is not None and result.entry.answer.zh == "地下车库两小时免费。"


def test_an_edited_file_is_not_served_from_its_old_cache(tmp_path: Path) -> None:
    path, cache, _ = _cached_file(tmp_path)
    write(path, GOOD.replace("门口有车位。", "门口有四个车位。"))

    matcher = load_matcher(path, load_faq, cache)

    assert isinstance(matcher, FaqMatcher) and not matcher.from_cache
    result = matcher.match("有停车位吗")
    assert result.entry is not None and result.entry.answer.zh == "门口有四个车位。"


def test_a_broken_file_is_reported_even_with_a_cache_of_its_last_good_version(tmp_path: Path) -> None:
    path, cache, _ = _cached_file(tmp_path)
    write(path, GOOD.replace("keywords: [停车, parking]", "keywords: [停车, parking"))

    result = load_matcher(path, load_faq, cache)

    assert isinstance(result, list) and any(e.line == 17 and "YAML" in e.message for e in result), result


def test_the_registry_serves_a_restart_from_the_cache_and_picks_up_edits(tmp_path: Path) -> None:
    faq_dir = tmp_path / "faq"
    faq_dir.mkdir()
    path = write(faq_dir / "pawspa.yaml", GOOD)
    cache_dir = tmp_path / "cache"
    first = FaqRegistry(faq_dir, cache_dir=cache_dir)
    matcher = first.get("pawspa")
    assert matcher is not None and not matcher.from_cache

    restarted = FaqRegistry(faq_dir, cache_dir=cache_dir)
    served = restarted.get("pawspa")
    assert served is not None and served.from_cache
    assert served.match("有停车位吗").entry_id == "parking"
    status = restarted.status("pawspa")
    assert status is not None and status.ok and status.entries == 2

    write(path, GOOD.replace("      - Is there parking?\n", "      - Is there parking?\n      - 车能停门口吗\n"))
    assert restarted.reload_if_changed() == []
    edited = restarted.get("pawspa")
    assert edited is not None and not edited.from_cache
    assert edited.match("车能停门口吗").entry_id == "parking"

    write(path, GOOD.replace("id: parking", "id: hours"))  # broken: the edited version keeps serving
    assert restarted.reload_if_changed()
    assert restarted.get("pawspa") is edited
    again = FaqRegistry(faq_dir, cache_dir=cache_dir)  # a restart with the broken file: reported
    assert again.get("pawspa") is None and any("duplicate id" in e.message for e in again.errors())


def test_a_cache_directory_that_cannot_be_written_only_costs_speed(tmp_path: Path) -> None:
    faq_dir = tmp_path / "faq"
    faq_dir.mkdir()
    write(faq_dir / "pawspa.yaml", GOOD)
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory should be", encoding="utf-8")

    registry = FaqRegistry(faq_dir, cache_dir=blocked / "cache")

    matcher = registry.get("pawspa")
    assert matcher is not None and matcher.match("有停车位吗").entry_id == "parking"
