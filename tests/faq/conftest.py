"""Helpers for FAQ tests: a small valid FAQ and a writer that always changes mtime."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FAQ_DIR = Path(__file__).resolve().parents[2] / "faq"

GOOD = """\
shop: pawspa
entries:
  - id: hours
    questions:
      - 营业时间是几点？
      - What are your opening hours?
    keywords: [营业时间, 几点开门, opening hours]
    answer:
      zh: 每天 10:00–20:00，周二休息。
      en: Open daily 10:00-20:00, closed on Tuesdays.
    route: front_desk
  - id: parking
    questions:
      - 有停车位吗？
      - Is there parking?
    keywords: [停车, parking]
    answer:
      zh: 门口有车位。
      en: Parking right outside.
"""


def write(path: Path, text: str) -> Path:
    """Write `text` and move mtime forward, so a reload always sees the edit."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    stamp = max(before + 1_000_000_000, path.stat().st_mtime_ns)
    os.utime(path, ns=(stamp, stamp))
    return path


@pytest.fixture
def faq_dir(tmp_path: Path) -> Path:
    write(tmp_path / "pawspa.yaml", GOOD)
    return tmp_path
