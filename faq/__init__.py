"""The FAQ package: load, validate, hot-reload and match shop FAQ YAML files.

Public API:
    load_faq(path, known_routes=None) -> Faq | list[FaqError]
    parse_faq(text, file="<faq>", known_routes=None) -> Faq | list[FaqError]
    FaqMatcher(faq, settings=None).match(text) -> MatchResult
    FaqRegistry(directory, known_routes=None) with get(shop), reload_if_changed(), status(shop),
        errors(), add_phrasing(shop, entry_id, text)
    add_phrasing(path, entry_id, text) -> PhrasingResult; group_unanswered(questions)
    normalize(text) -> str

Modules: model (shapes), loader (YAML -> Faq | errors, hardened), fastyaml (the fast reader for
large files when it provably gives the same data), placeholders (facts in
answers), lexicon (+ faq/lexicon/*.yaml), segment (jieba + stemming), bm25, charscore,
matcher (fusion + calibrated decision), registry (hot reload), learn, cli.
"""

from faq.learn import PhrasingResult, QuestionGroup, add_phrasing, group_unanswered
from faq.loader import load_faq, parse_faq
from faq.matcher import Candidate, Decision, FaqMatcher, MatchResult, MatchSettings
from faq.model import DEFAULT_ROUTES, Answer, Faq, FaqEntry, FaqError
from faq.normalize import normalize
from faq.registry import FaqRegistry, ShopStatus

__all__ = [
    "DEFAULT_ROUTES",
    "Answer",
    "Candidate",
    "Decision",
    "Faq",
    "FaqEntry",
    "FaqError",
    "FaqMatcher",
    "FaqRegistry",
    "MatchResult",
    "MatchSettings",
    "PhrasingResult",
    "QuestionGroup",
    "ShopStatus",
    "add_phrasing",
    "group_unanswered",
    "load_faq",
    "normalize",
    "parse_faq",
]
