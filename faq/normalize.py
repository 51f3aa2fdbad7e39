"""Text normalisation and tokenisation shared by FAQ entries and customer questions.

Owns: `normalize` (NFKC full-width -> half-width, case-fold, English contractions spelt out
("where's" / "wheres" -> "where is", "don't" -> "do not"), the Chinese particles 啊 呀 呢 吗
嘛 啦 dropped (they never change what is asked), punctuation/emoji/symbols -> space,
collapsed spaces), `runs` (split into CJK runs and Latin/digit words), a light
English `stem`, and `Synonyms` (shop-wide variant -> canonical word rewriting).
Both sides of a match go through exactly the same functions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache

_SPACES = re.compile(r"\s+")
# CJK ideographs (incl. extension A and compatibility), kana and hangul.
_CJK_RANGES: tuple[tuple[int, int], ...] = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x3040, 0x30FF),
    (0xAC00, 0xD7AF),
)
_CJK_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_LATIN = f"[^\\W_{_CJK_CLASS}]"  # a letter or digit that is not CJK
_RUN = re.compile(f"[{_CJK_CLASS}]+|{_LATIN}+")
_CJK_ONE = re.compile(f"[{_CJK_CLASS}]")


@cache
def is_cjk(char: str) -> bool:
    """True for a Chinese/Japanese/Korean character (scored by character n-grams)."""
    return _CJK_ONE.match(char) is not None


def _is_noise(char: str) -> bool:
    # P* punctuation, S* symbols (currency, emoji, math), M* marks such as the emoji
    # variation selector, C* controls and zero-width joiners.
    category = unicodedata.category(char)
    return category[0] in "PSMC" or char == "_"


class _NoiseTable(dict[int, str]):
    """str.translate table: noise -> space, filled lazily per code point (C-speed afterwards)."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        value = " " if _is_noise(char) else char
        self[code] = value
        return value


_NOISE = _NoiseTable()


# "can't" / "won't" first (their stem changes), then the regular endings; the apostrophe may be
# typed straight or curly. A possessive "'s" reads as "is": a stop word either way.
_IRREGULAR = re.compile(r"\b(ca|wo)n['\u2019]t\b")
_CONTRACTION = re.compile(r"(?<=[a-z])['\u2019](s|re|m|ll|ve|d)\b|(?<=[a-z])n['\u2019]t\b")
_ENDINGS = {"s": " is", "re": " are", "m": " am", "ll": " will", "ve": " have", "d": " would"}
# the same words typed without the apostrophe (none of them is another English word)
_BARE = {"whats": "what is", "wheres": "where is", "hows": "how is", "whens": "when is",
         "whos": "who is", "thats": "that is", "dont": "do not", "doesnt": "does not",
         "didnt": "did not", "isnt": "is not", "arent": "are not", "cant": "can not",
         "wont": "will not", "youre": "you are", "theres": "there is"}
_BARE_RE = re.compile(r"\b(" + "|".join(_BARE) + r")\b")
# Chinese sentence particles: "验光要多久啊" asks what "验光要多久" does.
_PARTICLES = str.maketrans(dict.fromkeys("啊呀呢吗嘛啦", " "))


def _contraction(match: re.Match[str]) -> str:
    ending = match.group(1)
    return _ENDINGS[ending] if ending is not None else " not"


@lru_cache(maxsize=65536)
def normalize(text: str, particles: bool = False) -> str:
    """Case-folded, half-width text with contractions spelt out, Chinese particles dropped
    (kept with `particles`: faq/learn.py compares whole wordings) and punctuation, symbols
    and emoji replaced by spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if "'" in text or "\u2019" in text:
        text = _CONTRACTION.sub(_contraction, _IRREGULAR.sub(lambda m: "can not" if m.group(1) == "ca"
                                                              else "will not", text))
    if not particles:
        text = text.translate(_PARTICLES)
    text = _BARE_RE.sub(lambda m: _BARE[m.group(1)], text.translate(_NOISE))
    return _SPACES.sub(" ", text).strip()


def runs(normalized: str) -> list[str]:
    """Split normalised text into CJK runs and Latin/digit words, in order.

    "预约grooming要多久 2h" -> ["预约", "grooming", "要多久", "2h"]
    """
    return _RUN.findall(normalized)


def stem(word: str) -> str:
    """A deliberately tiny English stemmer: hours->hour, prices->price, booking->book."""
    if len(word) <= 3 or not word.isascii() or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("ing") and len(word) > 5:
        return word[:-3]
    if word.endswith("ed") and len(word) > 4 and not word.endswith("eed"):
        return word[:-2]
    if word.endswith("es") and word[-3] in "sxz" and len(word) > 4:
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


class Synonyms:
    """Rewrites variants to their canonical word, e.g. {狗: [狗狗, 汪星人], bath: [shower]}.

    CJK variants are replaced wherever they occur; Latin variants only as whole words.
    Longer variants win over shorter ones.
    """

    def __init__(self, table: Mapping[str, Sequence[str]] | None = None) -> None:
        pairs: dict[str, str] = {}
        for canonical, variants in (table or {}).items():
            target = normalize(canonical)
            for variant in variants:
                source = normalize(variant)
                if source and source != target:
                    pairs[source] = target
        self._pairs = pairs
        self._pattern: re.Pattern[str] | None = None
        if pairs:
            # Canonical words map to themselves so "隐形眼镜" is not rewritten by "隐形".
            for target in set(pairs.values()):
                pairs.setdefault(target, target)
            parts = []
            for source in sorted(pairs, key=len, reverse=True):
                escaped = re.escape(source)
                if all(is_cjk(ch) for ch in source.replace(" ", "")):
                    parts.append(escaped)
                else:
                    parts.append(f"(?<!{_LATIN}){escaped}(?!{_LATIN})")
            self._pattern = re.compile("|".join(parts))

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def apply(self, normalized: str) -> str:
        """Rewrite variants in already-normalised text."""
        if self._pattern is None:
            return normalized
        return self._pattern.sub(lambda m: self._pairs[m.group(0)], normalized)
