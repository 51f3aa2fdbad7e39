"""The character ranking: the matcher's original bigram/IDF/keyword score, one of the two
rankings faq/matcher.py fuses.

Per entry (0-100):
  * features: CJK runs -> character bigrams (+ unigrams at low weight), Latin runs ->
    lightly stemmed words (typos repaired against the FAQ's own vocabulary with rapidfuzz
    and a score cutoff). Features are IDF-weighted over entries; common function words
    weigh little, words the FAQ never uses weigh the most.
  * similarity to each sample question: weighted F1 of (message covered, question
    covered), scaled by rapidfuzz `fuzz.ratio` on the normalised strings (processor None
    because we normalise ourselves, always with a score_cutoff).
  * keywords: a keyword contained in the message (whole words for Latin) is strong
    evidence; longer keywords count more; it lifts the similarity towards 100.
Works without any dictionary, so it still ranks words jieba and the lexicon do not know.
`packed()` / `from_packed()` are the compact form faq/indexcache.py keeps on disk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from rapidfuzz import fuzz, process

from faq.model import Faq, FaqEntry
from faq.normalize import Synonyms, is_cjk, normalize, runs, stem
from faq.packed import LazyMap, LazyRows, dumps, loads, pack_positions, unpack_positions


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOP_WORDS = _words(
    """a an the is are am was be do doe did you your yours i me my we our us it its this that
    these those what whats how when where which who whom there here have has had any and or
    with about please plz pls hi hello hey can could will would should shall may might to of
    for in on at by from if so just also get got im ive id dont isnt thank thanks ok okay
    need want one some s t d ll re ve m"""
)
_STOP_CJK = _words(
    """的 了 吗 呢 吧 啊 呀 哦 嘛 么 我 你 您 他 她 它 是 在 有 要 会 能 可 以 们 个
    这 那 什 怎 和 就 都 也 还 请 问 下 一 想 得 把 给 被 让 对 多 不 没 好
    你们 我们 可以 什么 怎么 是不 不是 请问 一下 这个 那个 有没 没有 的话 能不
    不能 可不 需要 要不 多少 么样 怎样 想问 问下 我想 我家 我的 你家"""
)
_UNIGRAM_WEIGHT = 0.3
_STOP_WEIGHT = 0.15
_KEYWORD_LIFT = 0.6  # how far a keyword hit lifts the score towards 100
_RECALL_WEIGHT = 0.6  # question covered by the message vs message covered
_JUNK_BIGRAM_WEIGHT = 0.3


@dataclass(frozen=True, slots=True)
class _Text:
    canon: str  # normalised, synonyms applied, Latin words stemmed, space separated
    compact: str  # canon without spaces (CJK containment)
    features: frozenset[str]


CharText = _Text  # the public name of one analysed text (faq/matcher.py builds them)


@dataclass(frozen=True, slots=True)
class _Question:
    text: _Text
    weight: float


@dataclass(frozen=True, slots=True)
class _Keyword:
    canon: str
    latin: bool
    strength: float  # 0-1, longer keywords are stronger evidence
    features: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Entry:
    entry: FaqEntry
    questions: tuple[_Question, ...]
    keywords: tuple[_Keyword, ...]


@dataclass(frozen=True, slots=True)
class CharQuery:
    """One analysed message, reused for every entry it is scored against."""

    text: _Text
    total: float


_Part = tuple[FaqEntry, tuple[list[_Text], list[_Text]], frozenset[str]]


def _load_texts(blob: bytes) -> tuple[list[_Text], list[_Text]]:
    questions, keywords = cast(tuple[tuple[str, ...], tuple[str, ...]], loads(blob))
    return ([text_from_tokens(canon.split(" ") if canon else ()) for canon in questions],
            [text_from_tokens(canon.split(" ") if canon else ()) for canon in keywords])


class _PackedParts(Mapping[str, _Part]):
    """entry id -> (entry, its analysed texts, their features) of a scorer read from the cache,
    what the next build (a hot reload) takes for the entries that did not change."""

    def __init__(self, entries: Sequence[FaqEntry],
                 raw: LazyRows[tuple[list[_Text], list[_Text]]]) -> None:
        self._entries = entries
        self._raw = raw
        self._positions = {entry.id: position for position, entry in enumerate(entries)}

    def __getitem__(self, entry_id: str) -> _Part:
        position = self._positions[entry_id]
        texts = self._raw[position]
        features = frozenset().union(*(t.features for t in (*texts[0], *texts[1])))
        return self._entries[position], texts, features

    def __iter__(self) -> Iterator[str]:
        return iter(self._positions)

    def __len__(self) -> int:
        return len(self._positions)


def _kind_weight(feature: str) -> float:
    if feature in _STOP_WORDS or feature in _STOP_CJK:
        return _STOP_WEIGHT
    if len(feature) == 1 and is_cjk(feature):
        return _UNIGRAM_WEIGHT
    return 1.0


class _Analyzer:
    def __init__(self, synonyms: Synonyms, vocabulary: Iterable[str] = ()) -> None:
        self.synonyms = synonyms
        self.vocabulary = frozenset(vocabulary)
        self._vocab_list = sorted(self.vocabulary)

    def tokens(self, text: str, repair: bool) -> list[str]:
        out: list[str] = []
        for run in runs(self.synonyms.apply(normalize(text))):
            if is_cjk(run[0]):
                out.append(run)
                continue
            word = stem(run)
            if repair and len(word) >= 4 and word.isalpha() and word not in self.vocabulary:
                for fixed, _, _ in process.extract(
                    word, self._vocab_list, scorer=fuzz.ratio, processor=None,
                    score_cutoff=80, limit=3,
                ):
                    if fixed[0] == word[0]:
                        word = fixed
                        break
            out.append(word)
        return out

    def analyze(self, text: str, repair: bool = True) -> _Text:
        return text_from_tokens(self.tokens(text, repair))


def run_features(run: str) -> frozenset[str]:
    """The features of one Chinese run: its characters and character bigrams."""
    return frozenset((*run, *(run[i : i + 2] for i in range(len(run) - 1))))


def text_from_tokens(tokens: Sequence[str], cjk_features: Sequence[frozenset[str]] | None = None) -> _Text:
    """A text as this ranking sees it, from its tokens (Chinese runs as they are, Latin words
    lightly stemmed); `cjk_features` (`run_features` of each Chinese run, in order) when the
    caller has them already (faq/matcher.py analyses every FAQ text once for both rankings)."""
    features: set[str] = set()
    given = iter(cjk_features) if cjk_features is not None else None
    for token in tokens:
        if is_cjk(token[0]):
            features.update(next(given) if given is not None else run_features(token))
        else:
            features.add(token)
    canon = " ".join(tokens)
    return _Text(canon, canon.replace(" ", ""), frozenset(features))


class CharScorer:
    """Character-level scores of one FAQ's entries (positions in `faq.entries`)."""

    def __init__(self, faq: Faq, synonyms: Synonyms, shortlist: int = 40,
                 previous: CharScorer | None = None,
                 analyze_text: Callable[[str], _Text] | None = None) -> None:
        """`previous` (same synonyms) lends its analyses of texts that did not change;
        `analyze_text` analyses one FAQ text (faq/matcher.py passes the shared analysis)."""
        self._shortlist_size = shortlist
        plain = _Analyzer(synonyms)
        fresh: Callable[[str], _Text] = analyze_text or (lambda text: plain.analyze(text, repair=False))
        old: dict[str, _Text] = previous._seen if previous is not None else {}
        seen: dict[str, _Text] = dict(old)  # the old texts too: a reload analyses only the new
        self._seen: dict[str, _Text] = seen
        old_parts: Mapping[str, _Part] = previous._parts if previous is not None else {}
        self._parts: Mapping[str, _Part] = {}
        parts: dict[str, _Part] = {}
        known_texts = len(seen)

        def analyze(text: str) -> _Text:
            found = seen.get(text)
            if found is None:
                found = seen[text] = fresh(text)
            return found

        raw: list[tuple[list[_Text], list[_Text]]] = []
        index: dict[str, list[int]] = {}
        for position, entry in enumerate(faq.entries):
            part = old_parts.get(entry.id)
            if part is None or part[0] != entry:
                texts = ([analyze(q) for q in entry.questions], [analyze(k) for k in entry.keywords])
                features = frozenset().union(*(t.features for t in (*texts[0], *texts[1])))
                part = (entry, texts, features)
            parts[entry.id] = part
            raw.append(part[1])
            for feature in part[2]:
                postings = index.get(feature)
                if postings is None:
                    index[feature] = [position]
                else:
                    postings.append(position)
        new_texts = list(seen.values())[known_texts:] if previous is not None else list(seen.values())
        vocabulary = {token for text in new_texts for token in text.canon.split() if not is_cjk(token[0])}
        if previous is not None:
            vocabulary |= previous._vocabulary
        self._vocabulary: set[str] = vocabulary
        self._analyzer = _Analyzer(synonyms, vocabulary)
        n = len(raw)
        self._unknown_idf = math.log(n + 1) + 1.0
        self._weights = {
            f: (math.log((n + 1) / (len(p) + 1)) + 1.0) * _kind_weight(f) for f, p in index.items()
        }
        self._parts = parts
        self._faq_entries = faq.entries
        self._raw: Sequence[tuple[list[_Text], list[_Text]]] = raw
        self._entries: dict[int, _Entry] = {}  # built when an entry is first scored
        self._size = n
        self._index: dict[str, list[int]] | LazyMap[list[int]] = index
        self._posting_cap = max(64, n // 20)  # longer postings carry little information

    # -- the compact form (faq/indexcache.py) ------------------------------------------
    def packed(self) -> dict[str, object]:
        """This scorer's index as plain data (postings as machine arrays, a record per entry)."""
        index = self._index
        assert isinstance(index, dict), "only a freshly built scorer is packed"
        return {
            "weights": self._weights, "unknown_idf": self._unknown_idf, "size": self._size,
            "posting_cap": self._posting_cap, "vocabulary": sorted(self._vocabulary),
            "index": {feature: pack_positions(p) for feature, p in index.items()},
            # the features follow from the canonical text (`text_from_tokens`): not stored
            "entries": [dumps((tuple(t.canon for t in questions), tuple(t.canon for t in keywords)))
                        for questions, keywords in self._raw],
        }

    @classmethod
    def from_packed(cls, faq: Faq, synonyms: Synonyms, shortlist: int,
                    state: Mapping[str, Any]) -> CharScorer:
        """The scorer `packed()` described, for the same FAQ; decoded as entries are scored."""
        self = cls.__new__(cls)
        self._shortlist_size = shortlist
        self._seen = {}
        self._vocabulary = set(state["vocabulary"])
        self._analyzer = _Analyzer(synonyms, self._vocabulary)
        self._unknown_idf = float(state["unknown_idf"])
        self._weights = dict(state["weights"])
        self._faq_entries = faq.entries
        raw: LazyRows[tuple[list[_Text], list[_Text]]] = LazyRows(list(state["entries"]), _load_texts)
        self._raw = raw
        self._entries = {}
        self._size = int(state["size"])
        self._index = LazyMap(state["index"], unpack_positions)
        self._posting_cap = int(state["posting_cap"])
        self._parts = _PackedParts(faq.entries, raw)
        return self

    def _entry(self, position: int) -> _Entry:
        item = self._entries.get(position)
        if item is None:
            questions, keywords = self._raw[position]
            item = self._entries[position] = _Entry(
                self._faq_entries[position],
                tuple(_Question(t, self._weight(t.features)) for t in questions),
                tuple(_Keyword(t.canon, not all(is_cjk(c) for c in t.compact),
                               self._strength(t), t.features) for t in keywords if t.compact),
            )
        return item

    @staticmethod
    def _strength(keyword: _Text) -> float:
        # 一个汉字 0.33, 两个 0.67, 三个+ 1.0; one English word 0.5, two or more 1.0.
        length = sum(1.5 if not is_cjk(tok[0]) else len(tok) for tok in keyword.canon.split())
        return min(1.0, length / 3.0)

    def _weight(self, features: Iterable[str]) -> float:
        # math.fsum: the same total whatever order a set yields its features in (a scorer read
        # from the cache holds equal sets that may iterate differently)
        weights = self._weights
        try:  # an FAQ text: every feature is in the index
            return math.fsum(map(weights.__getitem__, features))
        except KeyError:
            pass
        parts: list[float] = []
        for feature in features:
            weight = weights.get(feature)
            if weight is None:
                weight = self._unknown_idf * _kind_weight(feature)
                # A new bigram of two known characters is usually two known words side by
                # side ("每天几点" -> "天几"), not a new topic: it weighs little.
                if len(feature) == 2 and all(ch in weights for ch in feature):
                    weight *= _JUNK_BIGRAM_WEIGHT
            parts.append(weight)
        return math.fsum(parts)

    def query(self, text: str) -> CharQuery:
        """Analyse a message once."""
        analyzed = self._analyzer.analyze(text)
        return CharQuery(analyzed, self._weight(analyzed.features))

    def _shortlist(self, features: frozenset[str]) -> Iterable[int]:
        if self._size <= self._shortlist_size:
            return range(self._size)
        scores: dict[int, float] = {}
        weights = self._weights
        ordered = sorted(features)  # sums and ties independent of the set's order
        for feature in ordered:
            postings = self._index.get(feature)
            if not postings or len(postings) > self._posting_cap:
                continue
            weight = weights[feature]
            for position in postings:
                scores[position] = scores.get(position, 0.0) + weight
        if len(scores) < self._shortlist_size:  # only common words: fall back to them
            for feature in ordered:
                for position in self._index.get(feature) or ():
                    scores[position] = scores.get(position, 0.0) + weights[feature]
        ranked = sorted(scores, key=lambda p: (-scores[p], p))
        return ranked[: self._shortlist_size]

    def score_one(self, position: int, query: CharQuery) -> tuple[float, float]:
        """(score 0-100, strongest contained keyword 0-1) of one entry."""
        if not query.total:
            return 0.0, 0.0
        item, text, total = self._entry(position), query.text, query.total
        weights = self._weights
        alpha = _RECALL_WEIGHT
        best = 0.0
        for question in item.questions:
            common = text.features & question.text.features
            if not common:
                continue
            inter = math.fsum(map(weights.__getitem__, common))
            covered, recall = min(1.0, inter / total), min(1.0, inter / question.weight)
            sim = recall**alpha * covered ** (1.0 - alpha)
            if sim <= best:  # the ratio only scales sim down (to 0.8-1.0 of it): cannot win
                continue
            ratio = fuzz.ratio(text.canon, question.text.canon, processor=None, score_cutoff=30)
            best = max(best, sim * (0.8 + 0.2 * ratio / 100.0))
        missing = 1.0
        strongest = 0.0
        hit_features: set[str] = set()
        spaced = f" {text.canon} "
        for keyword in item.keywords:
            if (f" {keyword.canon} " in spaced) if keyword.latin else (keyword.canon in text.compact):
                missing *= 1.0 - keyword.strength
                strongest = max(strongest, keyword.strength)
                hit_features |= keyword.features
        if hit_features:
            covered = min(1.0, math.fsum(weights[f] for f in hit_features) / total)
            lift = (1.0 - missing) * covered ** (1.0 - alpha)
            best += _KEYWORD_LIFT * lift * (1.0 - best)
        return round(100.0 * best, 1), strongest

    def scores(self, query: CharQuery) -> dict[int, tuple[float, float]]:
        """Shortlisted entries with a positive score: position -> (score, keyword)."""
        if not query.total:
            return {}
        out: dict[int, tuple[float, float]] = {}
        for position in self._shortlist(query.text.features):
            scored = self.score_one(position, query)
            if scored[0] > 0:
                out[position] = scored
        return out
