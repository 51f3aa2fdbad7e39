"""FAQ matching: one customer message in, the best entries, a calibrated score and a decision.

Owns ranking and deciding. Everything that depends only on the FAQ is built once in
`FaqMatcher.__init__`; `match()` only analyses the message.

Two rankings, fused by reciprocal rank (RRF, `rrf_k`):
  * the character ranking (faq/charscore.py): CJK character bigrams + lightly stemmed
    English words, IDF-weighted F1 against each sample question, scaled by rapidfuzz's
    ratio and lifted by contained keywords;
  * BM25 (faq/bm25.py) over real words: jieba words (+ the dictionary words inside long
    ones), Snowball-stemmed English words (typos repaired against the FAQ's and the
    lexicon's vocabulary), and lexicon concepts (faq/lexicon.py), so "几点开门" and
    "opening hours" share the term `§hours`. One document per entry: its questions and
    keywords.
Decision: features that do not depend on one shop's wording — the character score, BM25
relative to the best entry, coverage (the share of the message's content, by weight, that
the entry knows: a word, or the concept it belongs to), the margin over the runner-up on
both, keyword evidence (a keyword contained in the message, or a keyword's concept in it),
how much of the closest sample question the message covers, the heaviest word the FAQ
never uses — go through a logistic model whose weights were fitted by
leave-one-shop-out cross-validation (bench/faq_accuracy.py --tune). Its output, 0-100, is
the score: `answer` at or above the entry's `threshold` (default `answer_threshold`),
`suggest` at or above `suggest_threshold`, else `none`. A message that names an off-topic
lexicon concept no entry has (a job, an EV charger, eye surgery at an optician) scores at most
`_FOREIGN_CAP`: it may be offered as "did you mean", never answered. The message analyser knows
which concepts the FAQ uses: a shipped phrase none of its entries uses ("验光要多久") gives way
to the phrases inside it (验光, 多久) unless it is off-topic.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from rapidfuzz import fuzz, process

from faq.bm25 import Bm25Index
from faq.charscore import CharScorer, CharText, run_features, text_from_tokens
from faq.lexicon import CONCEPT_PREFIX, Lexicon, build_lexicon
from faq.model import Faq, FaqEntry
from faq.normalize import Synonyms, is_cjk, normalize, runs
from faq.normalize import stem as char_stem
from faq.packed import LazyRows, dumps, loads
from faq.segment import add_words, cut, segment_version, stem, sub_words, topic_weight

Decision = Literal["answer", "suggest", "none"]

FEATURES: tuple[str, ...] = (
    "char",  # character score of this entry, 0-1
    "bm25",  # BM25 relative to the best entry's BM25, 0-1
    "bm25_margin",  # 1 - (best other BM25 / this BM25), clipped to [-1, 1]
    "coverage",  # share of the message's content (by weight) the entry knows
    "coverage_margin",  # coverage minus the best other entry's
    "recall",  # share of the entry's closest sample question the message covers
    "keyword",  # strongest keyword of the entry contained in the message, 0-1
    "keyword_concept",  # 1 when a keyword's lexicon concept occurs in the message
    "unknown",  # weight of the heaviest message word the whole FAQ never uses, 0-1
    "foreign",  # 1 when the message names an off-topic lexicon concept that no entry has
    "uncovered",  # weight of the message content the entry does not know (log1p)
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOP_EN_WORDS = _words(
    """a an the is are am was were be been do does did doe you your yours i me my we our us it
    its this that these those what whats how when where which who whom there here have has
    had any and or with about please plz pls hi hello hey can could will would should shall
    may might to of for in on at by from if so just also get got im ive id dont isnt thank
    thanks ok okay one some s t d ll re ve m u ur r ya yeah yes no not guys guy anyone
    there then than too very really still again them they he she him her his hers let"""
)
STOP_EN = frozenset(stem(w) for w in _STOP_EN_WORDS) | _STOP_EN_WORDS  # compared with stems
GENERIC_EN = frozenset(stem(w) for w in _words("""provide provides offer offers service services want
    need like know tell make help go come take give use see look thing something anything way
    sure much many lot good nice best well also time day today tomorrow tonight now later soon
    ask question info information detail details possible available allow ok mean every other
    another same new accept accepted nearby near around usually normally ever already yet still
    happen happens able okay fine quick quickly right long short big small little bit really
    remove do get shop store salon place there here guys"""))
STOP_ZH = _words(
    """的 了 吗 呢 吧 啊 呀 哦 嘛 么 我 你 您 他 她 它 是 在 有 要 会 能 可 以 们 个 这 那 和 就
    都 也 还 请 问 下 一 想 得 把 给 被 让 对 不 没 好 吗 哈 呗 哇 嗯 噢 喔 啦 咯 喽 嘞 诶 亲 麻烦
    你们 我们 他们 可以 什么 怎么 是不是 不是 请问 一下 这个 那个 有没有 没有 的话 能不能
    不能 可不可以 需要 要不要 么样 怎样 想问 问下 我想 我家 我的 你家 你好 您好 老板 谢谢 一个
    吗吗 呢呢 能否 是否 如果 还是 或者 然后 现在 就是 这样 那么 知道 告诉 一些 有点 比较 还有
    应该 时候 多少 怎么样 咨询 问一下 问问 了解"""
)
_STOP_CHARS = frozenset(w for w in STOP_ZH if len(w) == 1)
# Words every shop question may contain without changing its topic.
GENERIC_ZH = _words("""店 门店 店里 店铺 你家 贵店 本店 这边 那边 过去 过来 一般 平时 大概 大约 请教 问问
    方便 时间 今天 明天 后天 现在 一次 这次 下次 东西 情况 服务 项目 提供 支持 接受 办理""")
_FOREIGN_CAP = 60.0  # best score of an entry for a message naming an off-topic concept no entry has
_UNKNOWN_SCALE = 0.7  # a word the FAQ never uses weighs this x its prior x the top IDF


@dataclass(frozen=True, slots=True)
class Candidate:
    """One possible entry for a message, e.g. for "did you mean" buttons."""

    id: str
    score: float


@dataclass(frozen=True, slots=True)
class MatchResult:
    """What the matcher thinks of one message.

    `entry_id`/`entry` is the best entry when the decision is `answer` or `suggest`, and
    None when it is `none`. `score` (0-100) is the best entry's calibrated score in every
    case. `candidates` holds up to three entries, best first, for "did you mean" buttons.
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


# Fitted by `bench/faq_accuracy.py --tune` on the first four shops' FAQs, before the second
# held-out set (meowhaus, visionplus) existed: on that set these weights are truly held out;
# the order is FEATURES.
_WEIGHTS: tuple[float, ...] = (0.972, 0.504, 0.806, 1.034, 1.797, 1.643, 0.98, 1.122, -0.263, -2.095, -0.904)
_BIAS = -1.981


@dataclass(frozen=True, slots=True)
class MatchSettings:
    """Ranking parameters, the decision model and its thresholds (0-100 calibrated score)."""

    # the score is the estimated chance (%) the best entry is right; 90.5: chosen by
    # `bench/faq_accuracy.py --loso-threshold` over all ten shops (each fold 89.5-90.5), session 5
    answer_threshold: float = 90.5
    suggest_threshold: float = 20.0
    candidate_floor: float = 0.0  # lowest score offered as a "did you mean" candidate
    candidates: int = 3
    rrf_k: float = 1.0  # reciprocal-rank fusion of BM25, coverage and character rankings
    char_weight: float = 0.25  # the character ranking's weight in the fusion
    bm25_k1: float = 1.2
    bm25_b: float = 0.5
    keyword_tf: int = 2  # a keyword counts this many times in its entry's BM25 document
    weights: tuple[float, ...] = _WEIGHTS
    bias: float = _BIAS
    shortlist: int = 12  # entries scored by the character ranking (picked by its index)
    pool: int = 8  # best entries of each ranking that are fused and scored


@dataclass(frozen=True, slots=True)
class Analysis:
    """A text as real words: BM25 terms and content units (for coverage)."""

    terms: dict[str, int]
    units: tuple[tuple[frozenset[str], float], ...]  # (terms of one content word, prior weight)
    concepts: frozenset[str]


# One Chinese run analysed: content units, BM25 terms, lexicon concepts, character features.
_Run = tuple[tuple[tuple[frozenset[str], float], ...], tuple[str, ...], tuple[str, ...], frozenset[str]]


class WordAnalyzer:
    """Message/FAQ text -> jieba words, stemmed English words and lexicon concepts."""

    def __init__(self, synonyms: Synonyms, lexicon: Lexicon, vocabulary: Iterable[str] = (),
                 cache_runs: bool = False) -> None:
        self.synonyms = synonyms
        self.lexicon = lexicon
        # Chinese run -> its analysis, while an FAQ is indexed (the same phrases recur)
        self._runs: dict[str, _Run] | None = {} if cache_runs else None
        self.vocabulary = frozenset(vocabulary)
        self._vocab_list = sorted(self.vocabulary)
        # The concepts the FAQ's entries use (set on the message analyser): a lexicon phrase
        # none of them uses ("验光要多久") gives way to the phrases inside it (验光, 多久).
        self.known_concepts: frozenset[str] | None = None

    def _spans(self, spans: list[tuple[int, int, tuple[str, ...]]], text: Sequence[str],
               inner: Callable[[Sequence[str], int], list[tuple[int, int, tuple[str, ...]]]]
               ) -> list[tuple[int, int, tuple[str, ...]]]:
        """`spans` of `text`, each one whose concepts the FAQ never uses (and none off-topic)
        replaced by the shorter spans inside it when one of those the FAQ does use."""
        known = self.known_concepts
        if known is None or all(not known.isdisjoint(found) for _, _, found in spans):
            return spans
        out: list[tuple[int, int, tuple[str, ...]]] = []
        for start, end, found in spans:
            # (an off-topic phrase stays whole: "招店员" is about jobs, not about staff)
            if end - start > 1 and known.isdisjoint(found) and self.lexicon.off_topic.isdisjoint(found):
                parts = self._spans(inner(text[start:end], end - start), text[start:end], inner)
                if any(not known.isdisjoint(f) for _, _, f in parts):
                    out.extend((start + s, start + e, f) for s, e, f in parts)
                    continue
            out.append((start, end, found))
        return out

    def _repair(self, word: str) -> str:
        """A misspelt word -> the FAQ/lexicon word it was meant to be ("adress" -> "address").

        Compared unstemmed with a high cutoff: "rabbits" is not "rabies", nor "overweight"
        "overnight"; typos rarely hit the first letter."""
        if len(word) < 4 or not word.isalpha() or word in self.vocabulary or word in STOP_EN:
            return word
        for fixed, _, _ in process.extract(
            word, self._vocab_list, scorer=fuzz.ratio, processor=None, score_cutoff=85, limit=3
        ):
            if fixed[0] == word[0]:
                return str(fixed)
        return word

    def _cjk(self, run: str) -> _Run:
        """(content units, terms, concepts, character features) of one run of Chinese characters."""
        units: list[tuple[frozenset[str], float]] = []
        bag: list[str] = []
        concepts: list[str] = []
        spans = self._spans(self.lexicon.cjk_spans(run), run,
                            lambda part, size: self.lexicon.cjk_spans("".join(part), size))
        words = cut(run)
        bounds: list[tuple[int, int]] = []
        owner: list[int] = []  # character offset -> the word it is in
        offset = 0
        for index, word in enumerate(words):
            bounds.append((offset, offset + len(word)))
            owner.extend([index] * len(word))
            offset += len(word)
        if offset != len(run):  # the cut always covers the run; if not, look at every word
            owner = []
        taken: set[int] = set()
        for start, end, found in spans:
            members = set()
            overlapping = (range(owner[start], owner[end - 1] + 1) if owner else
                           [i for i, (w_start, w_end) in enumerate(bounds) if w_start < end and w_end > start])
            for index in overlapping:
                w_start, w_end = bounds[index]
                if end - start == 1 and w_end - w_start > 1:
                    continue  # "猫" inside "猫砂" (cat litter): the word is its own content
                taken.add(index)
                if words[index] not in STOP_ZH:
                    members.add(words[index])
            units.append((frozenset((*found, *members)), 1.0))
            concepts.extend(found)
            bag.extend(found)
        for index, word in enumerate(words):
            if word in STOP_ZH or _STOP_CHARS.issuperset(word):
                continue
            parts = sub_words(word)
            bag.append(word)
            bag.extend(parts)
            if index not in taken:
                prior = 0.2 if word in GENERIC_ZH else topic_weight(word)
                units.append((frozenset((word, *parts)), prior))
        return tuple(units), tuple(bag), tuple(concepts), run_features(run)

    def analyze(self, text: str, repair: bool = True) -> Analysis:
        """The text as real words (BM25 terms, content units, lexicon concepts)."""
        return self._analyze(text, repair, None, [])

    def analyze_both(self, text: str) -> tuple[Analysis, CharText]:
        """An FAQ text (no typo repair) for both rankings, from one pass over it."""
        char_tokens: list[str] = []
        features: list[frozenset[str]] = []
        analysis = self._analyze(text, False, char_tokens, features)
        return analysis, text_from_tokens(char_tokens, features)

    def _analyze(self, text: str, repair: bool, char_tokens: list[str] | None,
                 features: list[frozenset[str]]) -> Analysis:
        """`char_tokens`/`features`, when given, receive the character ranking's tokens and the
        character features of each Chinese run."""
        norm = self.synonyms.apply(normalize(text))
        bag: list[str] = []  # every term, counted at the end
        add = bag.append
        units: list[tuple[frozenset[str], float]] = []
        concepts: set[str] = set()
        latin: list[str] = []

        def flush_latin() -> None:
            if not latin:
                return
            spans = self._spans(self.lexicon.latin_spans(latin), latin, self.lexicon.latin_spans)
            inside: set[int] = set()
            for first, end, found in spans:
                members = {w for w in latin[first:end] if w not in STOP_EN}
                units.append((frozenset((*found, *members)), 1.0))
                concepts.update(found)
                bag.extend(found)
                inside.update(range(first, end))
            for position, word in enumerate(latin):
                if word in STOP_EN:
                    continue
                add(word)
                if position not in inside:
                    prior = 0.3 if word in GENERIC_EN or word.isdigit() else 0.8
                    units.append((frozenset((word,)), prior))
            latin.clear()

        cache = self._runs
        for run in runs(norm):
            if not is_cjk(run[0]):
                latin.append(stem(self._repair(run) if repair else run))
                if char_tokens is not None:
                    char_tokens.append(char_stem(run))  # the character ranking's own light stem
                continue
            flush_latin()
            found_run = cache.get(run) if cache is not None else None
            if found_run is None:
                found_run = self._cjk(run)
                if cache is not None:
                    cache[run] = found_run
            units.extend(found_run[0])
            bag.extend(found_run[1])
            concepts.update(found_run[2])
            if char_tokens is not None:
                char_tokens.append(run)
                features.append(found_run[3])
        flush_latin()
        return Analysis(dict(Counter(bag)), tuple(units), frozenset(concepts))


@dataclass(slots=True)
class _Scored:
    position: int
    char: float = 0.0
    keyword: float = 0.0
    bm25: float = 0.0
    coverage: float = 0.0
    uncovered: float = 0.0
    recall: float = 0.0
    char_rank: int = 99
    bm25_rank: int = 99
    fused: float = 0.0
    features: tuple[float, ...] = field(default_factory=tuple)
    score: float = 0.0


def register_words(faq: Faq) -> Lexicon:
    """Add the FAQ's lexicon terms and Chinese keywords to the shared jieba dictionary (the
    registry does this for every shop before building any matcher, so that all shops are cut
    with the same dictionary); returns the FAQ's lexicon."""
    texts = [text for entry in faq.entries for text in (*entry.questions, *entry.keywords)]
    lexicon = build_lexicon(texts, faq.trades, faq.lexicon)
    add_words(lexicon.cjk_terms)
    add_words(normalize(k).replace(" ", "") for e in faq.entries for k in e.keywords
              if all(is_cjk(ch) for ch in normalize(k).replace(" ", "")))
    return lexicon


_Units = tuple[tuple[frozenset[str], float], ...]  # the content units of one text
# entry id -> (entry, BM25 document, its questions' units, its keywords' concepts)
_Part = tuple[FaqEntry, Mapping[str, int], Sequence[_Units], frozenset[str]]


def _load_entry(blob: bytes) -> tuple[tuple[_Units, ...], frozenset[str]]:
    units, concepts = cast(tuple[tuple[_Units, ...], frozenset[str]], loads(blob))
    return units, concepts


class _Column(Sequence[Any]):
    """One field of lazily decoded per-entry records, by position."""

    def __init__(self, rows: LazyRows[tuple[Any, ...]], field_index: int) -> None:
        self._rows = rows
        self._field = field_index

    def __getitem__(self, position: Any) -> Any:
        return self._rows[position][self._field]

    def __len__(self) -> int:
        return len(self._rows)


class _PackedParts(Mapping[str, _Part]):
    """entry id -> its part of a matcher read from the cache (what a hot reload reuses)."""

    def __init__(self, matcher: FaqMatcher) -> None:
        self._matcher = matcher
        self._positions = {entry_id: position for position, entry_id in enumerate(matcher._ids)}

    def __getitem__(self, entry_id: str) -> _Part:
        position = self._positions[entry_id]
        m = self._matcher
        return (m.faq.entries[position], m._bm25.doc_counts(position), m._question_units[position],
                m._keyword_concepts[position])

    def __iter__(self) -> Iterator[str]:
        return iter(self._positions)

    def __len__(self) -> int:
        return len(self._positions)


class FaqMatcher:
    """Matches customer messages against one shop's FAQ. Build once, call `match` often."""

    def __init__(self, faq: Faq, settings: MatchSettings | None = None,
                 previous: FaqMatcher | None = None) -> None:
        """Build the indexes; `previous` (the matcher this one replaces, e.g. on a hot reload)
        lends its analyses of the texts that did not change."""
        self.faq = faq
        self.settings = settings or MatchSettings()
        self.from_cache = False  # True when read from faq/indexcache.py instead of built
        synonyms = Synonyms(faq.synonyms)
        self.lexicon = register_words(faq)
        self._key: tuple[object, ...] = (tuple(sorted(faq.synonyms.items())), id(self.lexicon),
                                         segment_version(), self.settings.keyword_tf)
        reuse = previous is not None and previous._key == self._key
        plain = WordAnalyzer(synonyms, self.lexicon, cache_runs=True)
        old: dict[str, Analysis] = previous._seen if previous is not None and reuse else {}
        # Every analysed text (the old ones too: a reload after one edit analyses one text)
        seen: dict[str, Analysis] = dict(old)
        self._seen: dict[str, Analysis] = seen
        char_texts: dict[str, CharText] = {}  # this build's texts as the character ranking sees them
        old_parts: Mapping[str, _Part] = previous._parts if previous is not None and reuse else {}
        parts: dict[str, _Part] = {}

        def analyze(text: str) -> Analysis:
            found = seen.get(text)
            if found is None:
                found = old.get(text)
                if found is None:  # one pass for both rankings
                    found, char_texts[text] = plain.analyze_both(text)
                seen[text] = found
            return found

        def char_text(text: str) -> CharText:
            found = char_texts.get(text)
            if found is None:
                found = char_texts[text] = plain.analyze_both(text)[1]
            return found

        docs: list[Mapping[str, int]] = []
        question_units: list[Sequence[_Units]] = []
        keyword_concepts: list[frozenset[str]] = []
        vocabulary: set[str] = set(self.lexicon.surface_words())
        known_texts = len(seen)
        for entry in faq.entries:
            part = old_parts.get(entry.id)
            if part is not None and part[0] == entry:  # unchanged since the serving version
                parts[entry.id] = part
                docs.append(part[1])
                question_units.append(part[2])
                keyword_concepts.append(part[3])
                continue
            doc: dict[str, int] = {}
            units = []
            for question in entry.questions:
                analysis = analyze(question)
                units.append(analysis.units)
                for term, count in analysis.terms.items():
                    doc[term] = doc.get(term, 0) + count
            question_units.append(units)
            found: set[str] = set()
            for keyword in entry.keywords:
                analysis = analyze(keyword)
                found |= analysis.concepts
                for term, count in analysis.terms.items():
                    doc[term] = doc.get(term, 0) + count * self.settings.keyword_tf
            docs.append(doc)
            keyword_concepts.append(frozenset(found))
            parts[entry.id] = (entry, doc, units, keyword_concepts[-1])
        self._parts: Mapping[str, _Part] = parts
        self._char: CharScorer = CharScorer(faq, synonyms, self.settings.shortlist,
                                            previous._char if previous is not None and reuse else None,
                                            analyze_text=char_text)
        if previous is not None and reuse:
            vocabulary |= previous._vocabulary
            texts = list(seen)[known_texts:]  # added by this FAQ's edits
        else:
            texts = list(seen)
        for text in texts:  # every question and keyword, once
            vocabulary.update(w for w in normalize(text).split() if w.isascii() and w.isalpha())
        self._vocabulary: set[str] = vocabulary
        self._analyzer = WordAnalyzer(synonyms, self.lexicon, vocabulary)
        self._bm25 = Bm25Index(docs, k1=self.settings.bm25_k1, b=self.settings.bm25_b)
        self._analyzer.known_concepts = self._concepts_used()
        self._keyword_concepts: Sequence[frozenset[str]] = keyword_concepts
        self._question_units: Sequence[Sequence[_Units]] = question_units
        # position -> its questions' content units with their weights, built when first needed
        self._questions: dict[int, list[tuple[tuple[frozenset[str], float], ...]]] = {}
        self._faq_unit_weights: dict[tuple[frozenset[str], float], float] = {}
        self._ids = tuple(entry.id for entry in faq.entries)

    @property
    def dictionary_version(self) -> int:
        """faq.segment.segment_version() when this matcher was built (its words were cut then)."""
        return int(cast(int, self._key[2]))

    # -- the compact form (faq/indexcache.py) ------------------------------------------
    def packed(self) -> dict[str, object]:
        """Everything this matcher built from its FAQ, as plain data (faq/packed.py)."""
        return {
            "ids": list(self._ids),
            "vocabulary": sorted(self._vocabulary),
            "entries": [dumps((tuple(tuple(u) for u in units), concepts))
                        for units, concepts in zip(self._question_units, self._keyword_concepts, strict=True)],
            "char": self._char.packed(),
            "bm25": self._bm25.packed(),
        }

    @classmethod
    def from_packed(cls, faq: Faq, state: Mapping[str, Any], settings: MatchSettings | None = None) -> FaqMatcher:
        """The matcher `packed()` described for this same FAQ (faq/indexcache.py checks that it
        is), without analysing any text: per-entry parts are decoded when first scored."""
        self = cls.__new__(cls)
        self.faq = faq
        self.settings = settings or MatchSettings()
        self.from_cache = True
        synonyms = Synonyms(faq.synonyms)
        self.lexicon = register_words(faq)
        self._key = (tuple(sorted(faq.synonyms.items())), id(self.lexicon), segment_version(),
                     self.settings.keyword_tf)
        self._ids = tuple(entry.id for entry in faq.entries)
        if list(state["ids"]) != list(self._ids):
            raise ValueError("the packed index is of another FAQ")
        self._seen = {}
        rows: LazyRows[tuple[tuple[_Units, ...], frozenset[str]]] = LazyRows(list(state["entries"]), _load_entry)
        self._question_units = _Column(rows, 0)
        self._keyword_concepts = _Column(rows, 1)
        self._char = CharScorer.from_packed(faq, synonyms, self.settings.shortlist, state["char"])
        self._vocabulary = set(state["vocabulary"])
        self._analyzer = WordAnalyzer(synonyms, self.lexicon, self._vocabulary)
        self._bm25 = Bm25Index.from_packed(state["bm25"])
        self._analyzer.known_concepts = self._concepts_used()
        self._questions = {}
        self._faq_unit_weights = {}
        self._parts = _PackedParts(self)
        return self

    def _concepts_used(self) -> frozenset[str]:
        return frozenset(t for t in self._bm25.idf_table if t.startswith(CONCEPT_PREFIX))

    # -- ranking -----------------------------------------------------------------------
    def _unit_weight(self, unit: frozenset[str], prior: float) -> float:
        table = self._bm25.idf_table
        idf = max((table.get(t, 0.0) for t in unit), default=0.0)
        if not idf:  # a word the FAQ never uses: how specific it is in general
            return self._bm25.max_idf * prior * _UNKNOWN_SCALE
        return idf * prior if not any(t.startswith(CONCEPT_PREFIX) for t in unit) else idf

    def _recall(self, position: int, terms: Iterable[str]) -> float:
        present = terms if isinstance(terms, (set, frozenset)) else set(terms)
        best = 0.0
        weighted = self._questions.get(position)
        if weighted is None:
            cache = self._faq_unit_weights  # the FAQ's units recur across its entries
            pairs_of: list[tuple[tuple[frozenset[str], float], ...]] = []
            for units in self._question_units[position]:
                pairs = []
                for unit, prior in units:
                    weight = cache.get((unit, prior))
                    if weight is None:
                        weight = cache[(unit, prior)] = self._unit_weight(unit, prior)
                    pairs.append((unit, weight))
                if pairs:
                    pairs_of.append(tuple(pairs))
            weighted = self._questions[position] = pairs_of
        for units in weighted:
            total = sum(w for _, w in units)
            if total:
                best = max(best, sum(w for unit, w in units if not unit.isdisjoint(present)) / total)
        return best

    def rank(self, text: str) -> list[_Scored]:
        """The best `settings.candidates` entries with features and scores, best (fused) first."""
        s = self.settings
        analysis = self._analyzer.analyze(text)
        char_query = self._char.query(text)
        # position -> (score 0-100, keyword 0-1); shortlist 0: scored for the offered entries only
        char_scores = self._char.scores(char_query) if s.shortlist else {}
        bm25 = self._bm25.scores(analysis.terms)
        if not char_scores and not bm25:
            return []
        char_ranked = sorted(char_scores, key=lambda p: -char_scores[p][0])[: s.pool]
        bm25_ranked = sorted(bm25, key=lambda p: -bm25[p])[: s.pool]
        pool: dict[int, _Scored] = {}
        for rank, position in enumerate(char_ranked):
            pool.setdefault(position, _Scored(position)).char_rank = rank
        for rank, position in enumerate(bm25_ranked):
            pool.setdefault(position, _Scored(position)).bm25_rank = rank
        weights = [self._unit_weight(unit, prior) for unit, prior in analysis.units]
        total = sum(weights)
        unknown = 0.0
        foreign = False
        for (unit, _), w in zip(analysis.units, weights, strict=True):
            if not any(self._bm25.idf(t) for t in unit):
                unknown = max(unknown, w)
                foreign = foreign or any(t in self.lexicon.off_topic for t in unit)
        message_terms = set(analysis.terms)
        for item in pool.values():
            item.bm25 = bm25.get(item.position, 0.0)
            doc = self._bm25.doc_terms(item.position).keys()
            known = sum(w for (unit, _), w in zip(analysis.units, weights, strict=True)
                        if not doc.isdisjoint(unit))
            item.coverage = known / total if total else 0.0
            item.uncovered = total - known
        by_coverage = sorted(pool.values(), key=lambda i: (-i.coverage, i.bm25_rank))
        for rank, item in enumerate(by_coverage):
            item.fused = (1.0 / (s.rrf_k + item.bm25_rank) + 1.0 / (s.rrf_k + rank)
                          + s.char_weight / (s.rrf_k + item.char_rank))
        ranked = sorted(pool.values(), key=lambda i: (-i.fused, i.bm25_rank, i.char_rank))
        best_bm25 = max((i.bm25 for i in ranked), default=0.0)
        top = ranked[: s.candidates]  # only these are offered, so only these are scored
        for item in top:
            if item.position not in char_scores:
                char_scores[item.position] = self._char.score_one(item.position, char_query)
            item.char, item.keyword = char_scores[item.position]
            item.recall = self._recall(item.position, message_terms)
        for item in top:
            others = [o for o in ranked if o is not item]
            other_bm25 = max((o.bm25 for o in others), default=0.0)
            other_cov = max((o.coverage for o in others), default=0.0)
            concept_hit = not self._keyword_concepts[item.position].isdisjoint(analysis.concepts)
            item.features = (
                item.char / 100.0,
                item.bm25 / best_bm25 if best_bm25 else 0.0,
                max(-1.0, 1.0 - other_bm25 / item.bm25) if item.bm25 else -1.0,
                item.coverage,
                item.coverage - other_cov,
                item.recall,
                item.keyword,
                1.0 if concept_hit else 0.0,
                unknown / self._bm25.max_idf,
                1.0 if foreign else 0.0,
                math.log1p(item.uncovered),
            )
            z = s.bias + sum(w * f for w, f in zip(s.weights, item.features, strict=True))
            item.score = round(100.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z)))), 1)
            if foreign:  # it names a thing the shop does not do (a job, an EV charger): never answered
                item.score = min(item.score, _FOREIGN_CAP)
        ranked = top
        return ranked

    def scores(self, text: str) -> list[Candidate]:
        """The fused pool, best first, each with its calibrated score (non-increasing)."""
        out: list[Candidate] = []
        ceiling = 99.9
        for item in self.rank(text):
            ceiling = min(ceiling, item.score)
            out.append(Candidate(self._ids[item.position], ceiling))
        return out

    # -- deciding ----------------------------------------------------------------------
    def match(self, text: str) -> MatchResult:
        """Rank `text` against every entry and decide answer / suggest / none."""
        return self.decide(self.scores(text))

    def decide(self, ranked: Sequence[Candidate], settings: MatchSettings | None = None) -> MatchResult:
        """The decision for already-ranked candidates (`scores()` output)."""
        settings = settings or self.settings
        if not ranked:
            return MatchResult(None, 0.0, "none", ())
        best = ranked[0]
        entry = self.faq.entry(best.id)
        assert entry is not None
        threshold = entry.threshold if entry.threshold is not None else settings.answer_threshold
        candidates = tuple(c for c in ranked[: settings.candidates] if c.score >= settings.candidate_floor)
        if best.score >= threshold:
            return MatchResult(best.id, best.score, "answer", candidates, entry)
        if best.score >= min(settings.suggest_threshold, threshold):
            return MatchResult(best.id, best.score, "suggest", candidates, entry)
        return MatchResult(None, best.score, "none", candidates)
