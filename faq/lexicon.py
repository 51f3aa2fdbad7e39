"""The domain lexicon: paraphrase sets ("concepts") shipped in faq/lexicon/*.yaml.

Owns loading the shipped sets (once per process), merging a shop's own `lexicon:` sets from
its FAQ YAML, choosing the trades that fit a FAQ, and finding concepts in analysed text.
A concept found in a message and in an entry is a shared term for ranking (so "几点开门"
meets "What are your opening hours?") and a keyword of an entry counts for its whole set.

Terms are compared after `normalize` and, for English, Snowball stemming of every word, so
"parking" and "park" are the same term. Chinese terms are found inside Chinese runs (longest
first); English terms as whole words.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from faq.normalize import is_cjk, normalize, runs
from faq.segment import stem

LEXICON_DIR = Path(__file__).resolve().parent / "lexicon"
CONCEPT_PREFIX = "§"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present


@dataclass(frozen=True, slots=True)
class LexiconFile:
    """One shipped lexicon file: its trade ("" for common) and its sets."""

    trade: str
    sets: dict[str, tuple[str, ...]]
    off_topic: tuple[str, ...] = ()  # sets a shop of this trade usually does not offer


def latin_key(term: str) -> tuple[str, ...]:
    """A Latin term as a tuple of stemmed words ("car parks" -> ("car", "park"))."""
    return tuple(stem(word) for word in normalize(term).split())


@lru_cache(maxsize=1)
def shipped() -> tuple[LexiconFile, ...]:
    """Every faq/lexicon/*.yaml, parsed once (they ship with the code and are trusted)."""
    files: list[LexiconFile] = []
    for path in sorted(LEXICON_DIR.glob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}
        sets = {str(k): tuple(str(w) for w in v) for k, v in (data.get("sets") or {}).items()}
        off_topic = tuple(str(name) for name in (data.get("off_topic") or ()))
        files.append(LexiconFile(str(data.get("trade") or ""), sets, off_topic))
    return tuple(files)


def trades() -> tuple[str, ...]:
    """Trades with a shipped lexicon (e.g. "pet", "optical")."""
    return tuple(f.trade for f in shipped() if f.trade)


class Lexicon:
    """Concept sets for one FAQ: common + chosen trades + the shop's own additions."""

    def __init__(self, sets: Mapping[str, Sequence[str]], off_topic: Iterable[str] = ()) -> None:
        self.off_topic = frozenset(CONCEPT_PREFIX + name for name in off_topic)
        cjk: dict[str, set[str]] = {}
        self._surface: set[str] = set()
        latin: dict[tuple[str, ...], set[str]] = {}
        for name, words in sets.items():
            concept = CONCEPT_PREFIX + name
            for word in words:
                norm = normalize(word)
                if not norm:
                    continue
                if all(is_cjk(ch) for ch in norm.replace(" ", "")):
                    cjk.setdefault(norm.replace(" ", ""), set()).add(concept)
                else:
                    latin.setdefault(latin_key(norm), set()).add(concept)
                    self._surface.update(w for w in norm.split() if w.isascii() and w.isalpha())
        self.cjk_terms = {term: tuple(sorted(c)) for term, c in cjk.items()}
        self.latin_terms = {term: tuple(sorted(c)) for term, c in latin.items()}
        self.max_latin = max((len(k) for k in self.latin_terms), default=0)
        lengths: dict[str, set[int]] = {}
        for key in self.latin_terms:
            lengths.setdefault(key[0], set()).add(len(key))
        self._lengths = {word: sorted(sizes, reverse=True) for word, sizes in lengths.items()}
        self.cjk_pattern = (
            re.compile("|".join(re.escape(t) for t in sorted(self.cjk_terms, key=len, reverse=True)))
            if self.cjk_terms else None
        )
        self._cjk_sizes = sorted({len(t) for t in self.cjk_terms}, reverse=True)
        self._cjk_first = frozenset(t[0] for t in self.cjk_terms)

    def cjk_spans(self, run: str, shorter_than: int | None = None) -> list[tuple[int, int, tuple[str, ...]]]:
        """(start, end, concepts) of lexicon terms inside one Chinese run: leftmost, longest
        first, no overlap (what `cjk_pattern.finditer` finds, by dictionary look-ups);
        `shorter_than`: only terms of fewer characters."""
        out: list[tuple[int, int, tuple[str, ...]]] = []
        terms, first, sizes = self.cjk_terms, self._cjk_first, self._cjk_sizes
        if shorter_than is not None:
            sizes = [size for size in sizes if size < shorter_than]
        i, n = 0, len(run)
        while i < n:
            if run[i] in first:
                for size in sizes:
                    concepts = terms.get(run[i : i + size]) if i + size <= n else None
                    if concepts is not None:
                        out.append((i, i + size, concepts))
                        i += size
                        break
                else:
                    i += 1
            else:
                i += 1
        return out

    def latin_spans(self, words: Sequence[str],
                    shorter_than: int | None = None) -> list[tuple[int, int, tuple[str, ...]]]:
        """(first, end, concepts) of lexicon phrases in stemmed words, longest first, no overlap;
        `shorter_than`: only phrases of fewer words."""
        out: list[tuple[int, int, tuple[str, ...]]] = []
        i = 0
        while i < len(words):
            for size in self._lengths.get(words[i], ()):
                if shorter_than is not None and size >= shorter_than:
                    continue
                concepts = self.latin_terms.get(tuple(words[i : i + size])) if i + size <= len(words) else None
                if concepts:
                    out.append((i, i + size, concepts))
                    i += size
                    break
            else:
                i += 1
        return out

    def surface_words(self) -> set[str]:
        """English words of the lexicon as written (typo repair targets)."""
        return set(self._surface)


def choose_trades(texts: Iterable[str], explicit: Sequence[str] | None = None) -> tuple[str, ...]:
    """The trades whose lexicon fits a FAQ: `explicit` when given, else those whose terms
    occur at least 40% as often in the FAQ's questions and keywords as the best trade's."""
    if explicit is not None:
        return tuple(explicit)
    hits: dict[str, int] = {}
    sample = list(itertools.islice(texts, 2000))  # plenty to tell a pet shop from an optician
    joined = "\n".join(normalize(t) for t in sample)
    words = {stem(run) for run in runs(joined) if not is_cjk(run[0])}
    for trade in trades():
        lexicon = _trade_lexicon(trade)
        count = len(lexicon.cjk_pattern.findall(joined)) if lexicon.cjk_pattern else 0
        count += sum(1 for key in lexicon.latin_terms if len(key) == 1 and key[0] in words)
        hits[trade] = count
    best = max(hits.values(), default=0)
    if best == 0:
        return tuple(hits)
    return tuple(trade for trade, count in hits.items() if count >= 0.4 * best)


@lru_cache(maxsize=16)
def _trade_lexicon(trade: str) -> Lexicon:
    sets: dict[str, list[str]] = {}
    for lexicon_file in shipped():
        if lexicon_file.trade == trade:
            for name, words in lexicon_file.sets.items():
                sets.setdefault(name, []).extend(words)
    return Lexicon(sets)


def build_lexicon(
    texts: Iterable[str],
    trades_wanted: Sequence[str] | None = None,
    extra: Mapping[str, Sequence[str]] | None = None,
) -> Lexicon:
    """The lexicon for one FAQ: common sets, its trades' sets, then the shop's `extra` sets
    (a shop set with a shipped name extends it; a new name adds a set)."""
    chosen = tuple(sorted(choose_trades(texts, trades_wanted)))
    frozen_extra = tuple(sorted((k, tuple(v)) for k, v in (extra or {}).items()))
    return _merged_lexicon(chosen, frozen_extra)


@lru_cache(maxsize=64)
def _merged_lexicon(chosen: tuple[str, ...], extra: tuple[tuple[str, tuple[str, ...]], ...]) -> Lexicon:
    merged: dict[str, list[str]] = {}
    off_topic: set[str] = set()
    for lexicon_file in shipped():
        if lexicon_file.trade and lexicon_file.trade not in chosen:
            continue
        off_topic.update(lexicon_file.off_topic)
        for name, words in lexicon_file.sets.items():
            merged.setdefault(name, []).extend(words)
    for name, words in extra:
        merged.setdefault(name, []).extend(words)
    return Lexicon(merged, off_topic)
