"""Traditional Chinese typed by a customer ("想幫我家狗狗預約洗澡"), read as simplified Chinese.

Customers from Hong Kong, Taiwan or with a traditional keyboard write the same words in other
characters; every word list, the date reader and the FAQ are simplified. The conversion is
OpenCC's traditional-to-simplified tables (opencc-python-reimplemented, Apache-2.0): phrases
first, then single characters. It costs ~0.3-0.6 ms, so a message is converted only when it holds
a character that only traditional writing uses (a set lookup per character, ~1 µs).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from opencc import OpenCC  # type: ignore[import-untyped]  # the package ships no type hints


@lru_cache(maxsize=1)
def _converter() -> OpenCC:
    return OpenCC("t2s")


@lru_cache(maxsize=1)
def _traditional_only() -> frozenset[str]:
    """Characters OpenCC turns into another character (traditional-only forms)."""
    import opencc

    table = Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt"
    chars = set()
    for line in table.read_text(encoding="utf-8").splitlines():
        source, _, targets = line.partition("\t")
        if len(source) == 1 and targets and targets.split()[0] != source:
            chars.add(source)
    return frozenset(chars)


def to_simplified(text: str) -> str:
    """``text`` with traditional characters replaced by simplified ones; other text unchanged."""
    if text.isascii():
        return text
    traditional = _traditional_only()
    if not any(ch in traditional for ch in text):
        return text
    return str(_converter().convert(text))
