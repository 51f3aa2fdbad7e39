"""FAQ data model: the validated shapes the loader produces and the matcher consumes.

Owns `FaqEntry`, `Faq` and `FaqError`. Nothing here reads files or scores text.
The pydantic models are strict (no type coercion) and forbid unknown keys, so a typo
such as `anwser:` or `handoff: "maybe"` is reported instead of silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

DEFAULT_ROUTES: frozenset[str] = frozenset({"front_desk", "groomer", "optometrist"})
REQUIRED_LANGUAGES: tuple[str, ...] = ("zh", "en")

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


@dataclass(frozen=True, slots=True)
class FaqError:
    """One problem in one FAQ file, printable as `FILE:LINE: reason`."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Answer(_Strict):
    """The reply in every supported language; both zh and en are required."""

    zh: NonEmptyStr
    en: NonEmptyStr

    def for_language(self, language: str) -> str:
        """The answer in `language` ("zh*" -> zh, anything else -> en)."""
        return self.zh if language.lower().startswith("zh") else self.en


class FaqEntry(_Strict):
    """One question/answer pair as admins write it."""

    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]
    questions: list[NonEmptyStr] = Field(default_factory=list)
    keywords: list[NonEmptyStr] = Field(default_factory=list)
    answer: Answer
    route: NonEmptyStr | None = None
    handoff: bool = False
    # Extensions (documented at the top of each shop YAML):
    threshold: Annotated[float, Field(ge=0, le=100)] | None = None
    links: list[NonEmptyStr] = Field(default_factory=list)

    @field_validator("threshold", mode="before")
    @classmethod
    def _int_threshold(cls, value: object) -> object:
        # strict mode refuses int for float; `threshold: 80` is what admins write.
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    @field_validator("links")
    @classmethod
    def _http_links(cls, links: list[str]) -> list[str]:
        for link in links:
            if not link.startswith(("http://", "https://")):
                raise ValueError(f"link must start with http:// or https://: {link!r}")
        return links


@dataclass(frozen=True, slots=True)
class Faq:
    """A validated FAQ file: one shop, its entries and its shop-wide synonyms."""

    shop: str
    entries: tuple[FaqEntry, ...]
    synonyms: dict[str, tuple[str, ...]]
    source: Path | None = None

    def entry(self, entry_id: str) -> FaqEntry | None:
        """The entry with this id, or None."""
        for item in self.entries:
            if item.id == entry_id:
                return item
        return None
