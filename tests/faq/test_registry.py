"""Hot reload: broken edits are reported and the last good FAQ keeps answering."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from faq import FaqRegistry
from tests.faq.conftest import GOOD, write

T0 = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _answer(registry: FaqRegistry, shop: str, text: str) -> str | None:
    matcher = registry.get(shop)
    assert matcher is not None
    result = matcher.match(text)
    return result.entry_id if result.confident else None


BROKEN_EDITS = {
    "bad yaml": (GOOD.replace("keywords: [停车, parking]", "keywords: [停车, parking"), 17,
                 "YAML syntax"),
    "duplicate id": (GOOD.replace("id: parking", "id: hours"), 12, "duplicate id"),
    "missing en": (GOOD.replace("      en: Parking right outside.\n", ""), 17, "answer.en"),
    "unknown route": (GOOD.replace("route: front_desk", "route: frontdesk"), 11, "unknown route"),
    "typo key": (GOOD.replace("    route: front_desk", "    rout: front_desk"), 11,
                 "unknown key `rout`"),
}


@pytest.mark.parametrize("edit", BROKEN_EDITS, ids=list(BROKEN_EDITS))
def test_broken_edit_is_reported_and_last_good_version_keeps_answering(
    faq_dir: Path, edit: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    registry = FaqRegistry(faq_dir, clock=clock)
    assert _answer(registry, "pawspa", "有停车位吗") == "parking"
    path = faq_dir / "pawspa.yaml"
    text, line, reason = BROKEN_EDITS[edit]
    write(path, text)
    clock.now = T0.replace(hour=2)

    with caplog.at_level(logging.ERROR, logger="faq.registry"):
        errors = registry.reload_if_changed()

    assert errors, "the broken edit was not reported"
    assert any(e.file == str(path) and e.line == line and reason in e.message for e in errors), (
        [str(e) for e in errors]
    )
    assert f"{path}:{line}: " in caplog.text
    assert _answer(registry, "pawspa", "有停车位吗") == "parking"  # last good still serves
    status = registry.status("pawspa")
    assert status is not None and not status.ok and status.errors
    assert status.loaded_at == T0  # the serving version is still the first load


def test_fixed_edit_is_picked_up(faq_dir: Path) -> None:
    clock = Clock()
    registry = FaqRegistry(faq_dir, clock=clock)
    path = faq_dir / "pawspa.yaml"
    write(path, GOOD.replace("id: parking", "id: hours"))
    assert registry.reload_if_changed()

    fixed = GOOD.replace("id: parking", "id: car_park").replace("门口有车位。", "门口有四个车位。")
    write(path, fixed)
    clock.now = T0.replace(hour=3)
    assert registry.reload_if_changed() == []

    assert _answer(registry, "pawspa", "有停车位吗") == "car_park"
    status = registry.status("pawspa")
    assert status is not None and status.ok and status.errors == ()
    assert status.loaded_at == T0.replace(hour=3)


def test_nothing_changed_means_nothing_reloaded(faq_dir: Path) -> None:
    registry = FaqRegistry(faq_dir)
    matcher = registry.get("pawspa")
    assert registry.reload_if_changed() == []
    assert registry.get("pawspa") is matcher


def test_shops_are_keyed_by_the_shop_field_and_new_files_appear(faq_dir: Path) -> None:
    registry = FaqRegistry(faq_dir)
    assert registry.get("clearsight") is None
    write(faq_dir / "optician.yaml", GOOD.replace("shop: pawspa", "shop: clearsight"))
    assert registry.reload_if_changed() == []
    assert registry.shops() == ["clearsight", "pawspa"]


def test_two_files_for_one_shop_is_an_error_and_the_first_keeps_serving(faq_dir: Path) -> None:
    registry = FaqRegistry(faq_dir)
    first = registry.get("pawspa")
    copy = write(faq_dir / "pawspa-copy.yaml", GOOD.replace("门口有车位。", "别的答案。"))
    errors = registry.reload_if_changed()
    assert [(e.file, "one file per shop" in e.message) for e in errors] == [(str(copy), True)]
    assert registry.get("pawspa") is first


def test_file_broken_from_the_start_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "pawspa.yaml", GOOD.replace("shop: pawspa\n", ""))
    registry = FaqRegistry(tmp_path)
    assert registry.get("pawspa") is None
    assert any("shop" in e.message for e in registry.errors())


def test_removed_file_stops_serving_its_shop(faq_dir: Path) -> None:
    registry = FaqRegistry(faq_dir)
    (faq_dir / "pawspa.yaml").unlink()
    registry.reload_if_changed()
    assert registry.get("pawspa") is None and registry.status("pawspa") is None


def test_known_routes_from_the_caller(faq_dir: Path) -> None:
    registry = FaqRegistry(faq_dir, known_routes={"reception"})
    assert registry.get("pawspa") is None
    assert any("unknown route 'front_desk'" in e.message for e in registry.errors())
