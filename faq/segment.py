"""Real words for BM25: Chinese words from jieba, English words stemmed by Snowball.

Owns the one process-wide jieba tokenizer. It is built once, on first use, from the words
of jieba's own dictionary that occur at least `_MIN_FREQ` times (137k of its 349k words: the
rare ones are names and literary compounds that do not occur in shop questions), plus the
shipped lexicon's Chinese words and every FAQ keyword (`add_words`). That takes about 0.5 s
instead of the 1.4 s of jieba's full dictionary, writes no cache file to /tmp, and keeps
jieba's logger quiet. `general_weight(word)` tells how common a Chinese word is in general
text (from the same dictionary), so words the FAQ never uses still get a fair weight:
"提供" (provide) is common and weighs little, "芯片" (chip) is rare and weighs more.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import threading
from collections.abc import Iterable
from functools import lru_cache

import jieba
import jieba.finalseg as finalseg
import snowballstemmer

_MIN_FREQ = 5
_KEPT_LINE = re.compile(r"^(\S+) ([5-9]|[1-9]\d+) ?(\S*)$", re.MULTILINE)
_ADDED_FREQ = 2000  # frequency given to shop words, enough to keep them in one piece
_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None
version = 0  # changes whenever words are added (analyses cached elsewhere depend on it)
_tags: dict[str, str] = {}
_log_total = 1.0
# How much a word the FAQ never uses tells about the topic, by its jieba part of speech:
# nouns name the topic ("手表", "猫粮"), verbs and adjectives less, function words nothing.
_TAG_WEIGHT = {"n": 1.0, "v": 0.5, "a": 0.45, "d": 0.2, "r": 0.15, "u": 0.1, "y": 0.1, "p": 0.15,
               "c": 0.15, "m": 0.25, "q": 0.25, "t": 0.3, "f": 0.2, "s": 0.35, "e": 0.1, "x": 0.5}
_stemmer = snowballstemmer.stemmer("english")

jieba.setLogLevel(logging.WARNING)
logging.getLogger("jieba").setLevel(logging.WARNING)


def tokenizer() -> jieba.Tokenizer:
    """The shared jieba tokenizer (built on first call; later calls are free)."""
    global _tokenizer, _log_total
    if _tokenizer is not None:
        return _tokenizer
    with _lock:
        if _tokenizer is None:
            path = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            # "word count tag" lines with count >= 5 (a regex in C skips the other 212k lines)
            rows = _KEPT_LINE.findall(text)
            freq: dict[str, int] = {word: int(count) for word, count, _ in rows}
            total = sum(freq.values())
            _tags.update((word, tag) for word, _, tag in rows)
            prefixes = {word[:end] for word in freq for end in range(1, len(word))}
            freq.update(dict.fromkeys(prefixes.difference(freq), 0))  # jieba's prefix dictionary
            built = jieba.Tokenizer()
            built.FREQ, built.total = freq, total
            built.initialized = True
            _log_total = math.log(built.total)
            _tokenizer = built
    return _tokenizer


def segment_version() -> int:
    """Changes whenever `add_words` adds a word (a cached cut may then be stale)."""
    return version


def add_words(words: Iterable[str]) -> None:
    """Make sure these Chinese words are cut as one word (lexicon terms, FAQ keywords)."""
    tk = tokenizer()
    freq = tk.FREQ
    added = False
    for word in words:
        if len(word) < 2 or freq.get(word, 0) >= _ADDED_FREQ:
            continue
        freq[word] = _ADDED_FREQ
        tk.total += _ADDED_FREQ
        for end in range(1, len(word)):
            freq.setdefault(word[:end], 0)
        _added.append(word)
        added = True
    if added:
        global version
        version += 1
        _cut.cache_clear()  # a new word can change how known text is cut
        _word_caches_clear()


_added: list[str] = []  # every word `add_words` raised (the dictionary is jieba's plus these)
_fingerprints: dict[int, str] = {}


def dictionary_fingerprint() -> str:
    """A digest of the words added to jieba's dictionary so far (with jieba's own dictionary,
    which faq/indexcache.py's code version covers, it decides how every text is cut)."""
    found = _fingerprints.get(version)
    if found is None:
        digest = hashlib.sha256("\n".join(sorted(_added)).encode()).hexdigest()
        found = _fingerprints[version] = digest
    return found


def cut(run: str) -> list[str]:
    """Words of one run of Chinese characters, in order, without overlaps."""
    return list(_cut(run))


@lru_cache(maxsize=200_000)
def _cut(run: str) -> tuple[str, ...]:
    # Cached: reloading an edited FAQ cuts only the text that changed.
    if _HAN_ONLY.fullmatch(run):
        return _cut_han(run)
    return tuple(tokenizer().cut(run, HMM=True))


_HAN_ONLY = re.compile("[\u4e00-\u9fd5]+")  # what jieba cuts as one block (its re_han)


def _cut_han(sentence: str) -> tuple[str, ...]:
    """jieba's `cut(sentence, HMM=True)` for a run of Han characters, with the same result,
    about twice as fast: the word graph and the best route in one backward pass (jieba builds
    the graph, then a route dict through generators), the HMM only for unknown stretches."""
    tk = tokenizer()
    freq = tk.FREQ
    log_total = math.log(tk.total)
    log = math.log
    n = len(sentence)
    score = [0.0] * (n + 1)
    end = [0] * n
    for start in range(n - 1, -1, -1):
        best, best_end = -math.inf, start
        stop = start
        frag = sentence[start]
        found = False
        while stop < n and frag in freq:
            count = freq[frag]
            if count:
                found = True
                value = log(count) - log_total + score[stop + 1]
                if value >= best:  # jieba's max over (score, end) tuples: ties -> longer
                    best, best_end = value, stop
            stop += 1
            frag = sentence[start : stop + 1]
        if not found:
            best, best_end = log(freq.get(sentence[start]) or 1) - log_total + score[start + 1], start
        score[start] = best
        end[start] = best_end
    out: list[str] = []
    buf = ""
    x = 0
    while x < n:
        y = end[x] + 1
        if y - x == 1:
            buf += sentence[x]
        else:
            if buf:
                _flush(buf, freq, out)
                buf = ""
            out.append(sentence[x:y])
        x = y
    if buf:
        _flush(buf, freq, out)
    return tuple(out)


def _flush(buf: str, freq: dict[str, int], out: list[str]) -> None:
    if len(buf) == 1:
        out.append(buf)
    elif not freq.get(buf):
        out.extend(_hmm(buf))
    else:
        out.extend(buf)


@lru_cache(maxsize=50_000)
def _hmm(buf: str) -> tuple[str, ...]:
    # jieba's HMM for characters the dictionary does not join (the same stretches recur).
    return tuple(finalseg.cut(buf))


def forget_cuts() -> None:
    """Drop the cached cuts (benchmarks measure a cold load with it)."""
    _cut.cache_clear()
    _hmm.cache_clear()
    _word_caches_clear()


def _word_caches_clear() -> None:
    # the per-word caches (sub-words, topic weight) depend on the dictionary
    _sub_words.cache_clear()
    topic_weight.cache_clear()


def sub_words(word: str) -> list[str]:
    """Dictionary words inside a longer word ("营业时间" -> 营业, 时间), as jieba's search mode."""
    if len(word) <= 2:
        return []
    return list(_sub_words(word))


@lru_cache(maxsize=100_000)
def _sub_words(word: str) -> tuple[str, ...]:
    # Cached per word (an FAQ repeats its words thousands of times); cleared by `add_words`.
    freq = tokenizer().FREQ
    out = [word[i : i + 2] for i in range(len(word) - 1) if freq.get(word[i : i + 2])]
    if len(word) > 3:
        out += [word[i : i + 3] for i in range(len(word) - 2) if freq.get(word[i : i + 3])]
    return tuple(out)


def general_weight(word: str) -> float:
    """0-1: how rare a Chinese word is in general text (1 = unknown to the dictionary)."""
    tk = tokenizer()
    count = tk.FREQ.get(word, 0)
    if count <= 0:
        return 1.0
    return max(0.05, min(1.0, (_log_total - math.log(count)) / _log_total * 1.6 - 0.35))


@lru_cache(maxsize=100_000)
def topic_weight(word: str) -> float:
    """0-1: how much a Chinese word the FAQ never uses says about the topic (its part of
    speech and how rare it is): "手表" (watch) high, "附近" (nearby) and "一下" low."""
    tag = _tags.get(word, "n")[:1]
    return _TAG_WEIGHT.get(tag, 0.5) * (0.5 + 0.5 * general_weight(word))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Snowball English stem ("parking" -> "park", "dilated" -> "dilat"); others unchanged."""
    if not word.isascii() or not word.isalpha() or len(word) <= 2:
        return word
    return str(_stemmer.stemWord(word))
