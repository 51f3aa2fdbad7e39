"""A small BM25 (Okapi, Lucene's IDF) over an inverted index, for one FAQ's entries.

Owns term statistics and scoring. Why hand-written instead of bm25s: an FAQ has tens to
thousands of short documents and a message has about ten terms, so a dict of postings
scores a message in microseconds; bm25s would bring numpy and scipy (tens of MB) and its
sparse-matrix set-up cost per call is larger than the whole match here. Documents and
queries are term -> count mappings produced by faq/matcher.py's analyser. `packed()` /
`from_packed()` are the compact form faq/indexcache.py keeps on disk (faq/packed.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from faq.packed import LazyMap, LazyRows, dumps, loads, pack_weighted, unpack_weighted


def _load_doc(blob: bytes) -> dict[str, int]:
    doc = loads(blob)
    assert isinstance(doc, dict)
    return doc


class Bm25Index:
    """BM25 scores of documents (positions in `docs`) for a bag of query terms."""

    def __init__(self, docs: Sequence[Mapping[str, int]], k1: float = 1.2, b: float = 0.5) -> None:
        self._k1 = k1
        self._b = b
        n = len(docs)
        lengths = [sum(doc.values()) for doc in docs]
        self._average = (sum(lengths) / n) if n else 1.0
        self._docs: Sequence[Mapping[str, int]] = docs
        postings: dict[str, list[tuple[int, float]]] = {}
        self._weights: Sequence[Mapping[str, float]] = []
        all_weights: list[Mapping[str, float]] = []
        for position, doc in enumerate(docs):
            weights = self._doc_weights(doc)
            all_weights.append(weights)
            for term, weight in weights.items():
                found = postings.get(term)
                if found is None:
                    postings[term] = [(position, weight)]
                else:
                    found.append((position, weight))
        self._weights = all_weights
        self._postings: dict[str, list[tuple[int, float]]] | LazyMap[list[tuple[int, float]]] = postings
        self._idf = {
            term: math.log(1.0 + (n - len(p) + 0.5) / (len(p) + 0.5)) for term, p in postings.items()
        }
        # Terms in more documents than this only rescore candidates that rarer terms found.
        self._common = max(64, n // 40)
        self.max_idf = math.log(1.0 + (n + 0.5) / 0.5) if n else 1.0

    def _doc_weights(self, doc: Mapping[str, int]) -> dict[str, float]:
        """term -> BM25 term weight (without IDF) of one document."""
        k1, b, average = self._k1, self._b, self._average
        norm = k1 * (1.0 - b + b * (sum(doc.values()) / average if average else 1.0))
        k1_1 = k1 + 1.0
        return {term: tf * k1_1 / (tf + norm) for term, tf in doc.items()}

    # -- the compact form (faq/indexcache.py) ------------------------------------------
    def packed(self) -> dict[str, object]:
        """This index as plain data: postings as machine arrays, one record per document."""
        postings = self._postings
        assert isinstance(postings, dict), "only a freshly built index is packed"
        return {
            "k1": self._k1, "b": self._b, "average": self._average, "common": self._common,
            "max_idf": self.max_idf, "idf": self._idf,
            "postings": {term: pack_weighted(p) for term, p in postings.items()},
            "docs": [dumps(dict(doc)) for doc in self._docs],
        }

    @classmethod
    def from_packed(cls, state: Mapping[str, Any]) -> Bm25Index:
        """The index `packed()` described; postings and documents are decoded when first used."""
        self = cls.__new__(cls)
        self._k1, self._b = float(state["k1"]), float(state["b"])
        self._average = float(state["average"])
        self._common = int(state["common"])
        self.max_idf = float(state["max_idf"])
        self._idf = dict(state["idf"])
        self._postings = LazyMap(state["postings"], unpack_weighted)
        docs: LazyRows[dict[str, int]] = LazyRows(list(state["docs"]), _load_doc)
        self._docs = docs
        self._weights = LazyRows(list(state["docs"]), lambda blob: self._doc_weights(_load_doc(blob)))
        return self

    def doc_counts(self, position: int) -> Mapping[str, int]:
        """term -> count of one document, as it was given."""
        return self._docs[position]

    @property
    def idf_table(self) -> Mapping[str, float]:
        """term -> IDF, for callers that look many terms up."""
        return self._idf

    def idf(self, term: str) -> float:
        """IDF of a term (0 for a term no document has)."""
        return self._idf.get(term, 0.0)

    def doc_terms(self, position: int) -> Mapping[str, float]:
        """Every term of one document (a mapping: `term in doc_terms(p)` is what callers ask)."""
        return self._weights[position]

    def scores(self, query: Mapping[str, int]) -> dict[int, float]:
        """position -> BM25 score, for documents sharing at least one term with `query`.

        In a large FAQ, documents are found through the query's rarer terms and then scored
        on all of them (common terms alone still find documents when there is nothing else)."""
        found: list[tuple[str, list[tuple[int, float]]]] = []
        for term in query:
            postings = self._postings.get(term)
            if postings is not None:
                found.append((term, postings))
        rare = [(term, p) for term, p in found if len(p) <= self._common]
        out: dict[int, float] = {}
        for term, postings in rare or found:
            idf = self._idf[term]
            for position, weight in postings:
                out[position] = out.get(position, 0.0) + idf * weight
        if rare and len(rare) < len(found):
            common = [(term, self._idf[term]) for term, p in found if len(p) > self._common]
            for position in out:
                weights = self._weights[position]
                out[position] += sum(idf * weights.get(term, 0.0) for term, idf in common)
        return out
