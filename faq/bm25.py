"""A small BM25 (Okapi, Lucene's IDF) over an inverted index, for one FAQ's entries.

Owns term statistics and scoring. Why hand-written instead of bm25s: an FAQ has tens to
thousands of short documents and a message has about ten terms, so a dict of postings
scores a message in microseconds; bm25s would bring numpy and scipy (tens of MB) and its
sparse-matrix set-up cost per call is larger than the whole match here. Documents and
queries are term -> count mappings produced by faq/matcher.py's analyser.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


class Bm25Index:
    """BM25 scores of documents (positions in `docs`) for a bag of query terms."""

    def __init__(self, docs: Sequence[Mapping[str, int]], k1: float = 1.2, b: float = 0.5) -> None:
        self._k1 = k1
        self._b = b
        n = len(docs)
        lengths = [sum(doc.values()) for doc in docs]
        average = (sum(lengths) / n) if n else 1.0
        postings: dict[str, list[tuple[int, float]]] = {}
        self._weights: list[dict[str, float]] = []
        k1_1 = k1 + 1.0
        for position, doc in enumerate(docs):
            norm = k1 * (1.0 - b + b * (lengths[position] / average if average else 1.0))
            weights = {term: tf * k1_1 / (tf + norm) for term, tf in doc.items()}
            self._weights.append(weights)
            for term, weight in weights.items():
                found = postings.get(term)
                if found is None:
                    postings[term] = [(position, weight)]
                else:
                    found.append((position, weight))
        self._postings = postings
        self._idf = {
            term: math.log(1.0 + (n - len(p) + 0.5) / (len(p) + 0.5)) for term, p in postings.items()
        }
        # Terms in more documents than this only rescore candidates that rarer terms found.
        self._common = max(64, n // 40)
        self.max_idf = math.log(1.0 + (n + 0.5) / 0.5) if n else 1.0

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
        found = [(term, self._postings[term]) for term in query if term in self._postings]
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
