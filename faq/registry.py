"""Per-shop FAQ registry with cheap, poll-driven hot reload.

Owns which FAQ serves which shop. `FaqRegistry(directory)` loads every *.yaml/*.yml
file (one file per shop, keyed by its `shop:` field). The server calls
`reload_if_changed()` periodically: when no file's (mtime, size) changed it only stats
the directory. A broken edit is logged with file, line and reason and the last good
version keeps serving; a fixed edit is picked up on the next call. No threads.
A file that validates but cannot be matched (a bug) is reported the same way: one shop's
file never takes another shop, or the server, down. `add_phrasing(shop, entry_id, text)`
writes a customer's wording into the serving file (faq/learn.py) and reloads it at once.
With a `cache_dir`, built indexes are kept on disk (faq/indexcache.py): a restart serves an
unchanged file from there without reading its YAML or analysing its text again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from faq.indexcache import Cached, IndexCache, matcher_from
from faq.learn import PhrasingResult, add_phrasing
from faq.loader import load_faq
from faq.matcher import FaqMatcher, MatchSettings, register_words
from faq.model import Faq, FaqError

log = logging.getLogger(__name__)

_SUFFIXES = (".yaml", ".yml")
_Fingerprint = tuple[int, int]  # (mtime_ns, size)


@dataclass(frozen=True, slots=True)
class ShopStatus:
    """What the console shows for one shop's FAQ."""

    shop: str
    file: str
    ok: bool  # False while the file on disk has errors (an older version may still serve)
    errors: tuple[FaqError, ...]
    loaded_at: datetime | None  # when the serving version was loaded
    entries: int  # entries in the serving version


@dataclass(slots=True)
class _FileState:
    fingerprint: _Fingerprint
    faq: Faq | None = None  # last good parse of this file
    errors: list[FaqError] = field(default_factory=list)  # problems of the current content
    content: bytes | None = None  # the bytes `faq` was read from, until its matcher is built
    cached: Cached | None = None  # the index cache's FAQ and indexes for exactly those bytes


@dataclass(slots=True)
class _Serving:
    matcher: FaqMatcher
    file: str
    loaded_at: datetime


def _read(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


class FaqRegistry:
    """All shops' FAQs from one directory; `get(shop)` returns the matcher to use."""

    def __init__(
        self,
        directory: str | Path,
        known_routes: Iterable[str] | None = None,
        *,
        settings: MatchSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cache_dir: str | Path | None = None,
    ) -> None:
        """`cache_dir`: where built indexes are kept between processes (faq/indexcache.py; the
        server's data directory, not a shared /tmp); None: every start builds them."""
        self.directory = Path(directory)
        self._cache = IndexCache(cache_dir) if cache_dir is not None else None
        self._routes = None if known_routes is None else frozenset(known_routes)
        self._settings = settings
        self._clock = clock
        self._files: dict[str, _FileState] = {}
        self._serving: dict[str, _Serving] = {}
        self._shop_errors: dict[str, list[FaqError]] = {}
        self.reload_if_changed()

    # -- queries ---------------------------------------------------------------------
    def get(self, shop: str) -> FaqMatcher | None:
        """The matcher serving `shop`, or None when the shop has no (valid) FAQ."""
        serving = self._serving.get(shop)
        return serving.matcher if serving else None

    def shops(self) -> list[str]:
        """Shops with a serving FAQ, sorted."""
        return sorted(self._serving)

    def errors(self) -> list[FaqError]:
        """Every current problem in the directory (files as they are on disk now)."""
        out = [e for state in self._files.values() for e in state.errors]
        out += [e for errs in self._shop_errors.values() for e in errs]
        return sorted(set(out), key=lambda e: (e.file, e.line, e.message))

    def status(self, shop: str) -> ShopStatus | None:
        """ok / errors / last loaded time for one shop, or None for an unknown shop."""
        serving = self._serving.get(shop)
        file = serving.file if serving else next(
            (name for name, st in self._files.items() if st.faq and st.faq.shop == shop), None
        )
        if file is None:
            return None
        state = self._files.get(file)
        errors = tuple((state.errors if state else []) + self._shop_errors.get(shop, []))
        return ShopStatus(
            shop=shop,
            file=file,
            ok=not errors,
            errors=errors,
            loaded_at=serving.loaded_at if serving else None,
            entries=len(serving.matcher.faq.entries) if serving else 0,
        )

    # -- learning --------------------------------------------------------------------
    def add_phrasing(self, shop: str, entry_id: str, phrasing: str) -> PhrasingResult:
        """Add a customer's wording to an entry of the file serving `shop` (comments and order
        kept, validated first) and serve the new version at once."""
        serving = self._serving.get(shop)
        if serving is None:
            return PhrasingResult(False, None, (FaqError("<faq>", 1, f"no FAQ serves shop '{shop}'"),))
        result = add_phrasing(serving.file, entry_id, phrasing, self._routes)
        if result.added:
            self.reload_if_changed()
        return result

    # -- reloading -------------------------------------------------------------------
    def _scan(self) -> dict[str, _Fingerprint]:
        found: dict[str, _Fingerprint] = {}
        try:
            entries = list(os.scandir(self.directory))
        except OSError as exc:
            log.error("FAQ directory %s unreadable: %s", self.directory, exc)
            return {name: st.fingerprint for name, st in self._files.items()}
        for entry in entries:
            if entry.name.endswith(_SUFFIXES) and not entry.name.startswith("."):
                try:
                    info = entry.stat()
                except OSError:
                    continue
                if entry.is_file():
                    found[entry.path] = (info.st_mtime_ns, info.st_size)
        return found

    def reload_if_changed(self) -> list[FaqError]:
        """Reload files whose mtime or size changed; return the problems found now.

        Returns [] (after one directory scan) when nothing changed. Problems are also
        logged as `FILE:LINE: reason`; shops whose file broke keep their last good FAQ.
        """
        found = self._scan()
        changed = [p for p, fp in found.items() if self._files.get(p, None) is None
                   or self._files[p].fingerprint != fp]
        removed = [p for p in self._files if p not in found]
        if not changed and not removed:
            return []
        for path in removed:
            log.warning("FAQ file %s was removed", path)
            del self._files[path]
        for path in sorted(changed):
            previous = self._files.get(path)
            content, cached = self._read_cached(path)
            result = cached.faq if cached is not None else load_faq(path, self._routes)
            if isinstance(result, Faq):
                if cached is None and content is not None and _read(path) != content:
                    content = None  # changed while it was read: not cached (the next poll sees it)
                self._files[path] = _FileState(found[path], result, [], content, cached)
            else:
                kept = previous.faq if previous else None
                self._files[path] = _FileState(found[path], kept, result)
                for error in result:
                    log.error("%s", error)
                if kept is not None:
                    log.warning("%s: keeping the last good FAQ for shop %r", path, kept.shop)
        return self._assign(set(changed))

    def _read_cached(self, path: str) -> tuple[bytes | None, Cached | None]:
        """The file's bytes and the cache's FAQ and indexes for them (None without a cache)."""
        if self._cache is None:
            return None, None
        content = _read(path)
        if content is None:
            return None, None
        return content, self._cache.read(path, content, self._routes)

    def _build(self, path: str, faq: Faq, current: _Serving | None) -> FaqMatcher:
        """The matcher for `faq` (read from `path`): from the index cache when it is valid for it,
        else built (the matcher it replaces lends its analyses of the unchanged questions) and
        cached."""
        state = self._files[path]
        content, cached = state.content, state.cached
        state.content = state.cached = None
        if cached is not None and cached.faq is faq:
            matcher = matcher_from(cached, self._settings)
            if matcher is not None:
                return matcher
        matcher = FaqMatcher(faq, self._settings, previous=current.matcher if current else None)
        if self._cache is not None and content is not None:
            self._cache.write(path, content, self._routes, matcher)
        return matcher

    def _register_words(self, changed: set[str]) -> None:
        """Every changed shop's words into the shared dictionary before any matcher is built,
        so that all shops are cut with the same dictionary."""
        for path in sorted(changed):
            faq = self._files[path].faq
            if faq is None:
                continue
            try:
                register_words(faq)
            except Exception:
                log.exception("FAQ %s: cannot register its words (its matcher reports why)", path)

    def _assign(self, changed: set[str]) -> list[FaqError]:
        """Decide which file serves which shop; (re)build matchers for changed files."""
        claims: dict[str, list[str]] = {}
        for path in sorted(self._files):
            faq = self._files[path].faq
            if faq is not None:
                claims.setdefault(faq.shop, []).append(path)
        new_errors = [e for p in changed for e in self._files[p].errors]
        self._register_words(changed)
        self._shop_errors = {}
        serving: dict[str, _Serving] = {}
        for shop, paths in claims.items():
            current = self._serving.get(shop)
            owner = current.file if current and current.file in paths else paths[0]
            for other in paths:
                if other != owner:
                    error = FaqError(other, 1, f"shop '{shop}' is already served by {owner}; "
                                               "one file per shop")
                    self._shop_errors.setdefault(shop, []).append(error)
                    if other in changed:
                        log.error("%s", error)
                        new_errors.append(error)
            faq = self._files[owner].faq
            assert faq is not None
            if current and current.file == owner and current.matcher.faq is faq:
                serving[shop] = current
                continue
            try:
                matcher = self._build(owner, faq, current)
            except Exception as exc:
                error = FaqError(owner, 1, f"cannot build the matcher: {type(exc).__name__}: {exc}")
                log.error("%s", error)
                self._files[owner].errors.append(error)
                new_errors.append(error)
                if current is not None:
                    serving[shop] = current  # the last good version keeps serving
                continue
            serving[shop] = _Serving(matcher, owner, self._clock())
            log.info("FAQ for shop %r loaded from %s (%d entries%s)", shop, owner, len(faq.entries),
                     ", indexes from the cache" if matcher.from_cache else "")
        self._serving = serving
        return new_errors
