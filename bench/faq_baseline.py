"""BASELINE (frozen copy of faq/matcher.py + faq/normalize.py before issue 11), for bench only.

FAQ matching: one customer message in, the best entry, a score and a decision out.

Owns the scoring. Everything that depends only on the FAQ (normalised questions,
features, IDF weights, an inverted index, the Latin vocabulary for typo repair) is
computed once in `FaqMatcher.__init__`; `match()` only analyses the message.

Scoring, per entry (0-100):
  * features: CJK runs -> character bigrams (+ unigrams at low weight), Latin runs ->
    lightly stemmed words (typos repaired against the FAQ's own vocabulary with
    rapidfuzz and a score cutoff). Features are IDF-weighted over entries; common
    function words ("吗", "你们", "the") weigh little, words the FAQ never uses weigh
    the most, so off-topic messages cover little of themselves.
  * similarity to each sample question: weighted F1 of (message covered, question
    covered), scaled by rapidfuzz `fuzz.ratio` on the normalised strings (processor
    None because we normalise ourselves, always with a score_cutoff).
  * keywords: a keyword contained in the message (whole words for Latin) is strong
    evidence; longer keywords count more; it lifts the similarity towards 100.
Decision: `answer` when the best score reaches the entry's threshold (or the default)
and clearly beats the runner-up, `suggest` above the suggest threshold, else `none`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from rapidfuzz import fuzz, process

from faq.model import Faq, FaqEntry

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


def is_cjk(char: str) -> bool:
    """True for a Chinese/Japanese/Korean character (scored by character n-grams)."""
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def _is_noise(char: str) -> bool:
    # P* punctuation, S* symbols (currency, emoji, math), M* marks such as the emoji
    # variation selector, C* controls and zero-width joiners.
    category = unicodedata.category(char)
    return category[0] in "PSMC" or char == "_"


def normalize(text: str) -> str:
    """Case-folded, half-width text with punctuation, symbols and emoji replaced by spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if _is_noise(ch) else ch for ch in text)
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


Decision = Literal["answer", "suggest", "none"]

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


@dataclass(frozen=True, slots=True)
class Candidate:
    """One possible entry for a message, e.g. for "did you mean" buttons."""

    id: str
    score: float


@dataclass(frozen=True, slots=True)
class MatchResult:
    """What the matcher thinks of one message.

    `entry_id`/`entry` is the best entry when the decision is `answer` or `suggest`, and
    None when it is `none`. `score` (0-100) is the best entry's score in every case.
    `candidates` holds up to three entries, best first, for "did you mean" buttons.
    """

    entry_id: str | None
    score: float
    decision: Decision
    candidates: tuple[Candidate, ...]
    entry: FaqEntry | None = None

    @property
    def confident(self) -> bool:
        """True when the entry should be sent as the reply."""
        return self.decision == "answer"


@dataclass(frozen=True, slots=True)
class MatchSettings:
    """Thresholds; tuned on the train split of bench/faq_eval.yaml."""

    answer_threshold: float = 56.0
    suggest_threshold: float = 36.0
    margin: float = 0.0  # >0: answer only if the best beats a confident runner-up by this much
    candidate_floor: float = 30.0  # lowest score offered as a "did you mean" candidate
    shortlist: int = 40  # entries fully scored per message (picked by the n-gram index)
    keyword_lift: float = 0.6  # how far a keyword hit lifts the score towards 100
    recall_weight: float = 0.6  # question covered by the message vs message covered
    junk_bigram_weight: float = 0.3
    # Share of the message (by weight) that the best entry knows nothing about above which it
    # is only suggested, never answered: "Can you repair my CAR?" is not the glasses-repair entry.
    foreign_limit: float = 0.45


@dataclass(frozen=True, slots=True)
class _Text:
    canon: str  # normalised, synonyms applied, Latin words stemmed, space separated
    compact: str  # canon without spaces (CJK containment)
    features: frozenset[str]


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
    features: frozenset[str] = frozenset()  # everything its questions and keywords mention


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
                # Typos rarely hit the first letter: "groming" -> "groom", but "weather"
                # must not become "where".
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
        tokens = self.tokens(text, repair)
        features: set[str] = set()
        for token in tokens:
            if is_cjk(token[0]):
                features.update(token)
                features.update(token[i : i + 2] for i in range(len(token) - 1))
            else:
                features.add(token)
        canon = " ".join(tokens)
        return _Text(canon, canon.replace(" ", ""), frozenset(features))


class FaqMatcher:
    """Matches customer messages against one shop's FAQ. Build once, call `match` often."""

    def __init__(self, faq: Faq, settings: MatchSettings | None = None) -> None:
        self.faq = faq
        self.settings = settings or MatchSettings()
        synonyms = Synonyms(faq.synonyms)
        plain = _Analyzer(synonyms)
        raw: list[tuple[FaqEntry, list[_Text], list[_Text]]] = [
            (
                entry,
                [plain.analyze(q, repair=False) for q in entry.questions],
                [plain.analyze(k, repair=False) for k in entry.keywords],
            )
            for entry in faq.entries
        ]
        vocabulary = {
            token
            for _, questions, keywords in raw
            for text in (*questions, *keywords)
            for token in text.canon.split()
            if not is_cjk(token[0])
        }
        self._analyzer = _Analyzer(synonyms, vocabulary)

        df: dict[str, int] = {}
        for _, questions, keywords in raw:
            for feature in set().union(*(t.features for t in (*questions, *keywords))):
                df[feature] = df.get(feature, 0) + 1
        n = len(raw)
        self._unknown_idf = math.log(n + 1) + 1.0
        self._weights = {
            f: (math.log((n + 1) / (count + 1)) + 1.0) * _kind_weight(f) for f, count in df.items()
        }

        entries: list[_Entry] = []
        index: dict[str, list[int]] = {}
        for position, (entry, questions, keywords) in enumerate(raw):
            entries.append(
                _Entry(
                    entry,
                    tuple(_Question(t, self._weight(t.features)) for t in questions),
                    tuple(
                        _Keyword(t.canon, not all(is_cjk(c) for c in t.compact),
                                 self._strength(t), t.features)
                        for t in keywords if t.compact
                    ),
                    frozenset().union(*(t.features for t in (*questions, *keywords))),
                )
            )
            for feature in set().union(*(t.features for t in (*questions, *keywords))):
                index.setdefault(feature, []).append(position)
        self._entries = tuple(entries)
        self._index = index
        # Postings longer than this carry little information; skip them when shortlisting.
        self._posting_cap = max(64, n // 20)

    @staticmethod
    def _strength(keyword: _Text) -> float:
        # 一个汉字 0.33, 两个 0.67, 三个+ 1.0; one English word 0.5, two or more 1.0.
        length = sum(1.5 if not is_cjk(tok[0]) else len(tok) for tok in keyword.canon.split())
        return min(1.0, length / 3.0)

    def _weight(self, features: Iterable[str]) -> float:
        weights = self._weights
        total = 0.0
        for feature in features:
            weight = weights.get(feature)
            if weight is None:
                weight = self._unknown_idf * _kind_weight(feature)
                # A new bigram of two known characters is usually two known words side by
                # side ("每天几点" -> "天几"), not a new topic: it weighs little.
                if len(feature) == 2 and all(ch in weights for ch in feature):
                    weight *= self.settings.junk_bigram_weight
            total += weight
        return total

    def _shortlist(self, features: frozenset[str]) -> Iterable[int]:
        if len(self._entries) <= self.settings.shortlist:
            return range(len(self._entries))
        scores: dict[int, float] = {}
        weights = self._weights
        for feature in features:
            postings = self._index.get(feature)
            if not postings or len(postings) > self._posting_cap:
                continue
            weight = weights[feature]
            for position in postings:
                scores[position] = scores.get(position, 0.0) + weight
        if len(scores) < self.settings.shortlist:  # only common words: fall back to them
            for feature in features:
                for position in self._index.get(feature, ()):
                    scores[position] = scores.get(position, 0.0) + weights[feature]
        ranked = sorted(scores, key=scores.__getitem__, reverse=True)
        return ranked[: self.settings.shortlist]

    def _score(self, item: _Entry, text: _Text, total: float) -> float:
        weights = self._weights
        alpha = self.settings.recall_weight
        best = 0.0
        for question in item.questions:
            common = text.features & question.text.features
            if not common:
                continue
            inter = sum(weights[f] for f in common)
            covered, recall = min(1.0, inter / total), min(1.0, inter / question.weight)
            sim = recall**alpha * covered ** (1.0 - alpha)
            ratio = fuzz.ratio(text.canon, question.text.canon, processor=None, score_cutoff=30)
            best = max(best, sim * (0.8 + 0.2 * ratio / 100.0))
        # Keywords: every hit keyword adds evidence (noisy-or of strengths); the lift is
        # scaled by how much of the message the hit keywords explain.
        missing = 1.0
        hit_features: set[str] = set()
        spaced = f" {text.canon} "
        for keyword in item.keywords:
            if (f" {keyword.canon} " in spaced) if keyword.latin else (
                keyword.canon in text.compact
            ):
                missing *= 1.0 - keyword.strength
                hit_features |= keyword.features
        if hit_features:
            covered = min(1.0, sum(weights[f] for f in hit_features) / total)
            lift = (1.0 - missing) * covered ** (1.0 - alpha)
            best += self.settings.keyword_lift * lift * (1.0 - best)
        return round(100.0 * best, 1)

    def scores(self, text: str) -> list[Candidate]:
        """Every shortlisted entry with a positive score, best first."""
        analyzed = self._analyzer.analyze(text)
        total = self._weight(analyzed.features)
        if not total:
            return []
        scored = [
            Candidate(self._entries[i].entry.id, self._score(self._entries[i], analyzed, total))
            for i in self._shortlist(analyzed.features)
        ]
        return sorted((c for c in scored if c.score > 0), key=lambda c: -c.score)

    def match(self, text: str) -> MatchResult:
        """Score `text` against every entry and decide answer / suggest / none."""
        result = self.decide(self.scores(text))
        if result.decision == "answer" and self.foreign_share(text, result.entry_id) > self.settings.foreign_limit:
            return MatchResult(result.entry_id, result.score, "suggest", result.candidates, result.entry)
        return result

    def foreign_share(self, text: str, entry_id: str | None) -> float:
        """How much of the message's wording (by weight) the entry does not mention at all.

        Counted over words in Latin script only: Chinese is matched on character pairs, where
        pairs spanning two words ("门呀") are noise rather than a different topic.
        """
        item = next((e for e in self._entries if e.entry.id == entry_id), None)
        analyzed = self._analyzer.analyze(text)
        words = frozenset(f for f in analyzed.features if not is_cjk(f[0]))
        total = self._weight(words)
        if item is None or not total:
            return 0.0
        return self._weight(words - item.features) / total

    def decide(self, ranked: list[Candidate], settings: MatchSettings | None = None) -> MatchResult:
        """The decision for already-ranked candidates (`scores()` output)."""
        settings = settings or self.settings
        if not ranked:
            return MatchResult(None, 0.0, "none", ())
        best = ranked[0]
        entry = self.faq.entry(best.id)
        assert entry is not None
        threshold = entry.threshold if entry.threshold is not None else settings.answer_threshold
        runner_up = ranked[1].score if len(ranked) > 1 else 0.0
        candidates = tuple(c for c in ranked[:3] if c.score >= settings.candidate_floor)
        if best.score >= threshold and (
            best.score - runner_up >= settings.margin or runner_up < settings.answer_threshold
        ):
            return MatchResult(best.id, best.score, "answer", candidates, entry)
        if best.score >= min(settings.suggest_threshold, threshold):
            return MatchResult(best.id, best.score, "suggest", candidates, entry)
        return MatchResult(None, best.score, "none", candidates)
