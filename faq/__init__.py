"""The FAQ package: load, validate, hot-reload and match shop FAQ YAML files.

Public API:
    load_faq(path, known_routes=None) -> Faq | list[FaqError]
    parse_faq(text, file="<faq>", known_routes=None) -> Faq | list[FaqError]
    FaqMatcher(faq, settings=None).match(text) -> MatchResult
    FaqRegistry(directory, known_routes=None) with get(shop), reload_if_changed(), status(shop)
    normalize(text) -> str
"""

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
    "ShopStatus",
    "load_faq",
    "normalize",
    "parse_faq",
]
