"""The conversation corpus driver (issue 9): loads, validates and runs scripted conversations.

Owns the corpus format of /work/notes/CORPUS.md: YAML files in tests/conversations/corpus/, each a
list of conversations. ``load_corpus`` validates every file (unknown keys, classes, states,
services, add-ons, locale keys, FAQ ids, dates -> ``CorpusError`` naming the file and the
conversation id). ``run_conversation`` plays one conversation over the real engine: a fresh
SQLite database (a copy of a migrated template, so each conversation costs a file copy instead
of a migration), ``bootstrap(config, clock=FixedClock(...), database_url=...)``, the seed made
through the public services API, and ``CollectingChannel`` as the customer's channel. After each
turn the state is read from the Conversation row (never the engine's draft) and the turn's
expectations are checked; at the end the customer's bookings and pets are compared with the
outcome. A failed conversation's report holds the whole transcript.

Seeding (documented choices):
- ``given.others`` (an addition to CORPUS.md): bookings of another customer, to fill a time or a
  day (``{service, start, staff}``), booked with ``Actor.staff("seed")``;
- future bookings: ``services.bookings.book(BookingRequest(...), actor)`` with ``Actor.staff("seed")``
  for status confirmed (a staff-made booking is confirmed even for services that need approval)
  and ``Actor.system("seed")`` for status pending (services with ``confirmation: staff`` only);
- past bookings (completed / no_show): booked with the clock set back one day before the start,
  then ``mark_attendance(..., Actor.staff("seed"))`` with the clock just after the visit;
- cancelled: booked, then ``cancel(..., Actor.staff("seed"))``;
- pets: ``services.customers.add_pet``, ``vaccinated_on`` passed only when given.

Additions to the format of CORPUS.md (all optional): ``given.others`` above; ``note`` on a
conversation or a turn (ignored); ``outcome.bookings[].pet`` / ``.staff`` (the pet's name, the staff
id); ``outcome.pets[].vaccinated`` (true/false) and ``.vaccinated_on``. ``feasibility`` books every
expected new booking through the booking service to prove the outcome is possible at all (bench
``--feasibility``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from bot.bootstrap import Services, bootstrap, load_faq_registry
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.config import AppConfig, ShopConfig, load_config
from core.i18n import texts
from core.models import Booking, ChannelIdentity, Conversation, ConversationMode, Pet
from core.results import Actor, Booked
from faq import FaqRegistry
from tests.helpers import copy_sqlite, sqlite_template
from tests.support.collecting import CollectingChannel

ROOT = Path(__file__).resolve().parents[2]
CONFIG_PATH = ROOT / "config.yaml"
CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
CHANNEL = "test"
DEFAULT_NOW = "2026-11-21 09:00"
DEFAULT_NAMES = {"zh": "王女士", "en": "Alice"}
LANGS = ("zh", "en")

CLASSES = (
    "stale_state",
    "repeat_question",
    "natural_answer",
    "digression",
    "clarify",
    "no_guess",
    "truthful",
    "language",
    "correction",
    "confirm_change",
    "happy_path",
    "returning",
    "handoff",
)
STATES = (
    "idle",
    "choose_service",
    "choose_pet",
    "pet_name",
    "pet_species",
    "pet_size",
    "vaccination",
    "choose_day",
    "choose_time",
    "confirm",
    "my_bookings",
    "booking_actions",
    "reschedule_confirm",
    "cancel_confirm",
    "addon_choose",
    "addon_confirm",
    "resume_offer",
)
BOOKING_STATUSES = ("held", "pending", "confirmed", "completed", "no_show", "cancelled", "expired")
LISTED_BY_DEFAULT = ("pending", "confirmed", "completed")  # what outcome.bookings lists unless told

CONVERSATION_KEYS = {"id", "class", "shop", "lang", "hint", "now", "given", "turns", "floor", "outcome", "note"}
GIVEN_KEYS = {"name", "pets", "bookings", "others"}
OTHER_BOOKING_KEYS = {"service", "start", "staff"}
PET_KEYS = {"name", "species", "size", "breed", "vaccinated_on"}
GIVEN_BOOKING_KEYS = {"service", "start", "pet", "addons", "status", "staff"}
TURN_ACTIONS = {"say", "press", "tap", "wait"}
TURN_KEYS = TURN_ACTIONS | {"expect", "note"}
EXPECT_KEYS = {"asks", "asks_not", "contains", "not_contains", "contains_key", "faq", "handoff", "lang", "buttons"}
OUTCOME_KEYS = {"bookings", "handoff", "pets"}
OUTCOME_BOOKING_KEYS = {"service", "start", "status", "price", "addons", "pet", "staff"}
OUTCOME_PET_KEYS = {"name", "species", "size", "breed", "vaccinated_on", "vaccinated"}
_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BASE_LOADER):  # type: ignore[misc,valid-type]  # the C loader when PyYAML has it
    """YAML 1.1 without base-60 numbers: ``say: 3:30`` is the text "3:30", never the number 210."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in _BASE_LOADER.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?)$"),
    list("-+0123456789."),
)
_LOADER = _Loader
_WAIT = re.compile(r"^(\d+)\s*(m|h|d)$")
_CJK = re.compile(r"[\u3400-\u9fff]")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


class CorpusError(ValueError):
    """A corpus file that does not follow the format; the message names the file and the id."""

    def __init__(self, file: str, conv_id: str | None, message: str) -> None:
        self.file = file
        self.conv_id = conv_id
        where = f"{file}: {conv_id}" if conv_id else file
        super().__init__(f"{where}: {message}")


# ---------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Step:
    action: str  # say | press | tap | wait
    value: Any
    expect: dict[str, Any]


@dataclass(frozen=True)
class Script:
    """One conversation of the corpus, validated."""

    id: str
    cls: str
    shop: str
    lang: str
    hint: str
    now: datetime  # shop-local, naive
    given: dict[str, Any]
    steps: tuple[Step, ...]
    floor: int | None
    outcome: dict[str, Any]
    file: str


@dataclass
class TurnRecord:
    action: str
    value: Any
    replies: list[tuple[str, list[str]]] = field(default_factory=list)
    state: str = ""
    mode: str = ""
    failures: list[str] = field(default_factory=list)


@dataclass
class Result:
    script: Script
    turns: list[TurnRecord] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    final_bookings: list[str] = field(default_factory=list)
    error: str | None = None
    booked: bool = False  # the conversation ended with a new (not seeded) pending/confirmed booking

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None

    @property
    def questions(self) -> int:
        """Bot turns after which the bot waits on an answer (state not idle, bot still in charge)."""
        return sum(1 for r in self.turns if r.replies and r.state not in ("", "idle") and r.mode == "bot")

    def report(self) -> str:
        s = self.script
        lines = [f"conversation {s.id} ({s.cls}, {s.shop}, {s.lang}, hint {s.hint}) from {s.file}"]
        if self.error:
            lines.append(f"ERROR: {self.error}")
        for failure in self.failures:
            lines.append(f"FAIL: {failure}")
        lines.append("transcript:")
        for n, r in enumerate(self.turns, 1):
            if r.action == "wait":
                lines.append(f"  [{n}] ... wait {r.value}")
                continue
            value = str(r.value)
            if len(value) > 240:
                value = f"{value[:240]}… ({len(value)} chars)"
            lines.append(f"  [{n}] customer {r.action}: {value}")
            if not r.replies:
                lines.append("      bot: (nothing)" if r.state or r.mode else "      (not sent)")
            for text, labels in r.replies:
                body = text.replace("\n", "\n           ")
                lines.append(f"      bot: {body}")
                if labels:
                    lines.append(f"           [{' | '.join(labels)}]")
            lines.append(f"      -> state={r.state} mode={r.mode}")
            for failure in r.failures:
                lines.append(f"      !! {failure}")
        lines.append("bookings at the end: " + ("; ".join(self.final_bookings) or "none"))
        return "\n".join(lines)


# ---------------------------------------------------------------------------------- loading


_config_cache: dict[Path, AppConfig] = {}


def demo_config(path: Path = CONFIG_PATH) -> AppConfig:
    if path not in _config_cache:
        _config_cache[path] = load_config(path, environ={})
    return _config_cache[path]


def corpus_files(directory: Path = CORPUS_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def load_corpus(
    directory: Path = CORPUS_DIR, config: AppConfig | None = None
) -> tuple[list[Script], list[CorpusError]]:
    """Every valid conversation of the corpus, and one error per broken file (or duplicate id)."""
    config = config or demo_config()
    scripts: list[Script] = []
    errors: list[CorpusError] = []
    seen: dict[str, str] = {}
    for path in corpus_files(directory):
        try:
            loaded = load_file(path, config)
        except CorpusError as exc:
            errors.append(exc)
            continue
        for script in loaded:
            if script.id in seen:
                errors.append(CorpusError(script.file, script.id, f"duplicate id (also in {seen[script.id]})"))
                continue
            seen[script.id] = script.file
            scripts.append(script)
    return scripts, errors


def load_file(path: Path, config: AppConfig | None = None) -> list[Script]:
    config = config or demo_config()
    name = path.name
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise CorpusError(name, None, f"not valid YAML: {exc}") from exc
    if not isinstance(raw, list):
        raise CorpusError(name, None, "a corpus file is a YAML list of conversations")
    scripts = []
    ids: set[str] = set()
    for index, item in enumerate(raw):
        script = _script(name, index, item, config)
        if script.id in ids:
            raise CorpusError(name, script.id, "duplicate id in this file")
        ids.add(script.id)
        scripts.append(script)
    return scripts


class _Checker:
    def __init__(self, file: str, conv_id: str | None) -> None:
        self.file = file
        self.conv_id = conv_id

    def fail(self, message: str) -> CorpusError:
        return CorpusError(self.file, self.conv_id, message)

    def keys(self, where: str, value: Any, allowed: set[str], required: Iterable[str] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{where}: expected a mapping, got {type(value).__name__}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(f"{where}: unknown key(s) {unknown} (allowed: {sorted(allowed)})")
        missing = [k for k in required if k not in value]
        if missing:
            raise self.fail(f"{where}: missing key(s) {missing}")
        return value

    def one_of(self, where: str, value: Any, allowed: Iterable[Any]) -> Any:
        allowed = list(allowed)
        if value not in allowed:
            raise self.fail(f"{where}: {value!r} is not one of {allowed}")
        return value

    def strings(self, where: str, value: Any) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"{where}: expected a list of non-empty strings")
        return list(value)

    def moment(self, where: str, value: Any) -> datetime:
        try:
            return datetime.strptime(str(value), "%Y-%m-%d %H:%M")
        except ValueError:
            raise self.fail(f"{where}: {value!r} is not a shop-local 'YYYY-MM-DD HH:MM'") from None

    def day(self, where: str, value: Any) -> date:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise self.fail(f"{where}: {value!r} is not a date 'YYYY-MM-DD'") from None


def _locale_key_ok(key: str) -> bool:
    return all(key in texts(lang).entries for lang in LANGS)


_faq_answers: dict[tuple[Path, int], dict[str, dict[str, str]]] = {}


def faq_entries(config: AppConfig, shop: str) -> dict[str, dict[str, str]]:
    """FAQ entry id -> {zh: answer, en: answer}, read from the shop's FAQ file (cached per mtime)."""
    path = Path(config.faq_dir) / f"{shop}.yaml"
    if not path.is_file():
        return {}
    key = (path, path.stat().st_mtime_ns)
    if key not in _faq_answers:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}
        _faq_answers[key] = {
            e["id"]: dict(e.get("answer") or {}) for e in raw.get("entries", []) if isinstance(e, dict) and "id" in e
        }
    return _faq_answers[key]


def _script(file: str, index: int, item: Any, config: AppConfig) -> Script:
    conv_id = item.get("id") if isinstance(item, dict) else None
    c = _Checker(file, str(conv_id) if conv_id else f"#{index + 1}")
    item = c.keys("conversation", item, CONVERSATION_KEYS, required=("id", "class", "shop", "lang", "turns"))
    if not isinstance(conv_id, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]+", conv_id):
        raise c.fail(f"id {conv_id!r}: letters, digits and _ . : - only")
    cls = c.one_of("class", item["class"], CLASSES)
    shop_id = c.one_of("shop", item["shop"], sorted(config.shops))
    shop = config.shops[shop_id]
    lang = c.one_of("lang", item["lang"], LANGS)
    hint = c.one_of("hint", item.get("hint", lang), LANGS)
    now = c.moment("now", item.get("now", DEFAULT_NOW))
    given = _given(c, item.get("given") or {}, shop, shop_id)
    pet_names = {p["name"] for p in given.get("pets", [])}
    turns = item["turns"]
    if not isinstance(turns, list) or not turns:
        raise c.fail("turns: expected a non-empty list")
    faq = faq_entries(config, shop_id)
    steps = tuple(_step(c, n, t, faq) for n, t in enumerate(turns, 1))
    floor = item.get("floor")
    if floor is not None and (not isinstance(floor, int) or floor < 0):
        raise c.fail("floor: expected a non-negative integer")
    outcome = _outcome(c, item.get("outcome") or {}, shop, pet_names | {"*"})
    return Script(conv_id, cls, shop_id, lang, hint, now, given, steps, floor, outcome, file)


def _given(c: _Checker, given: Any, shop: ShopConfig, shop_id: str) -> dict[str, Any]:
    given = c.keys("given", given, GIVEN_KEYS)
    out: dict[str, Any] = {}
    if "name" in given:
        if not isinstance(given["name"], str):
            raise c.fail("given.name: expected a string")
        out["name"] = given["name"]
    pets = []
    for n, pet in enumerate(given.get("pets") or [], 1):
        where = f"given.pets[{n}]"
        pet = c.keys(where, pet, PET_KEYS, required=("name", "species"))
        if shop.kind != "pet":
            raise c.fail(f"{where}: pets only at a pet shop, {shop_id} is {shop.kind}")
        c.one_of(f"{where}.species", pet["species"], ("dog", "cat"))
        c.one_of(f"{where}.size", pet.get("size"), ("small", "medium", "large", None))
        entry = {
            "name": str(pet["name"]),
            "species": pet["species"],
            "size": pet.get("size"),
            "breed": str(pet.get("breed") or ""),
        }
        if pet.get("vaccinated_on") is not None:
            entry["vaccinated_on"] = c.day(f"{where}.vaccinated_on", pet["vaccinated_on"])
        pets.append(entry)
    out["pets"] = pets
    names = {p["name"] for p in pets}
    bookings = []
    for n, b in enumerate(given.get("bookings") or [], 1):
        where = f"given.bookings[{n}]"
        b = c.keys(where, b, GIVEN_BOOKING_KEYS, required=("service", "start"))
        service = c.one_of(f"{where}.service", b["service"], sorted(shop.services))
        start = c.moment(f"{where}.start", b["start"])
        status = c.one_of(
            f"{where}.status",
            b.get("status", "confirmed"),
            ("confirmed", "pending", "completed", "no_show", "cancelled"),
        )
        if status == "pending" and shop.services[service].confirmation != "staff":
            raise c.fail(f"{where}: status pending needs a service with confirmation: staff")
        addons = c.strings(f"{where}.addons", b["addons"]) if b.get("addons") else []
        for a in addons:
            c.one_of(f"{where}.addons", a, shop.services[service].addons)
        pet = b.get("pet")
        if pet is not None:
            c.one_of(f"{where}.pet", pet, sorted(names))
        staff = b.get("staff")
        if staff is not None:
            c.one_of(f"{where}.staff", staff, sorted(shop.staff))
        bookings.append(
            {"service": service, "start": start, "status": status, "addons": addons, "pet": pet, "staff": staff}
        )
    out["bookings"] = bookings
    others = []
    for n, b in enumerate(given.get("others") or [], 1):
        where = f"given.others[{n}]"
        b = c.keys(where, b, OTHER_BOOKING_KEYS, required=("service", "start"))
        service = c.one_of(f"{where}.service", b["service"], sorted(shop.services))
        staff = c.one_of(f"{where}.staff", b["staff"], sorted(shop.staff)) if b.get("staff") else None
        others.append({"service": service, "start": c.moment(f"{where}.start", b["start"]), "staff": staff})
    out["others"] = others
    return out


def _step(c: _Checker, n: int, turn: Any, faq: dict[str, dict[str, str]]) -> Step:
    where = f"turns[{n}]"
    turn = c.keys(where, turn, TURN_KEYS)
    action, value = _action(c, where, turn)
    expect = c.keys(f"{where}.expect", turn.get("expect") or {}, EXPECT_KEYS)
    if action == "wait" and expect:
        raise c.fail(f"{where}: a wait has no reply to expect anything of")
    out = {key: _expectation(c, f"{where}.expect.{key}", key, raw, faq) for key, raw in expect.items()}
    return Step(action, value, out)


def _action(c: _Checker, where: str, turn: dict[str, Any]) -> tuple[str, Any]:
    """The one say / press / tap / wait of a turn, checked."""
    actions = [k for k in TURN_ACTIONS if k in turn]
    if len(actions) != 1:
        raise c.fail(f"{where}: exactly one of say/press/tap/wait, got {sorted(actions)}")
    action = actions[0]
    value = turn[action]
    if action == "say":
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise c.fail(f"{where}.say: expected text")
        value = str(value)
    elif action == "press":
        if not isinstance(value, str) or not _locale_key_ok(value):
            raise c.fail(f"{where}.press: {value!r} is not a locale key of core/locales (zh and en)")
    elif action == "tap":
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise c.fail(f"{where}.tap: expected a button number from 1")
    elif action == "wait" and (not isinstance(value, str) or not _WAIT.match(value.strip())):
        raise c.fail(f"{where}.wait: {value!r} is not like 30m, 2h, 1d")
    return action, value


def _expectation(c: _Checker, at: str, key: str, raw: Any, faq: dict[str, dict[str, str]]) -> Any:
    """One expectation of a turn, checked (states, locale keys, FAQ ids, languages)."""
    if key == "asks":
        return c.one_of(at, raw, STATES)
    if key == "asks_not":
        return [c.one_of(at, s, STATES) for s in c.strings(at, raw)]
    if key in ("contains", "not_contains"):
        return c.strings(at, raw)
    if key in ("contains_key", "buttons"):
        keys = c.strings(at, raw)
        for k in keys:
            if not _locale_key_ok(k):
                raise c.fail(f"{at}: {k!r} is not a locale key of core/locales (zh and en)")
        return keys
    if key == "faq":
        return c.one_of(at, raw, sorted(faq))
    if key == "handoff":
        if not isinstance(raw, bool):
            raise c.fail(f"{at}: expected true or false")
        return raw
    return c.one_of(at, raw, LANGS)  # lang


def _outcome(c: _Checker, outcome: Any, shop: ShopConfig, pet_names: set[str]) -> dict[str, Any]:
    outcome = c.keys("outcome", outcome, OUTCOME_KEYS)
    out: dict[str, Any] = {}
    if "handoff" in outcome:
        if not isinstance(outcome["handoff"], bool):
            raise c.fail("outcome.handoff: expected true or false")
        out["handoff"] = outcome["handoff"]
    if "bookings" in outcome:
        if not isinstance(outcome["bookings"], list):
            raise c.fail("outcome.bookings: expected a list (use [] for none)")
        listed = enumerate(outcome["bookings"], 1)
        bookings = [_outcome_booking(c, f"outcome.bookings[{n}]", b, shop) for n, b in listed]
        out["bookings"] = sorted(bookings, key=lambda e: e["start"])
    if "pets" in outcome:
        out["pets"] = [_outcome_pet(c, f"outcome.pets[{n}]", p) for n, p in enumerate(outcome["pets"] or [], 1)]
    return out


def _outcome_booking(c: _Checker, where: str, b: Any, shop: ShopConfig) -> dict[str, Any]:
    b = c.keys(where, b, OUTCOME_BOOKING_KEYS, required=("service", "start"))
    entry: dict[str, Any] = {
        "service": c.one_of(f"{where}.service", b["service"], sorted(shop.services)),
        "start": c.moment(f"{where}.start", b["start"]),
        "status": c.one_of(f"{where}.status", b.get("status", "confirmed"), BOOKING_STATUSES),
    }
    if "price" in b:
        if not isinstance(b["price"], int) or isinstance(b["price"], bool):
            raise c.fail(f"{where}.price: expected an integer total")
        entry["price"] = b["price"]
    if "addons" in b:
        addons = c.strings(f"{where}.addons", b["addons"]) if b["addons"] else []
        for a in addons:
            c.one_of(f"{where}.addons", a, sorted(shop.addons))
        entry["addons"] = sorted(addons)
    if "pet" in b:
        entry["pet"] = str(b["pet"])
    if "staff" in b:
        entry["staff"] = c.one_of(f"{where}.staff", b["staff"], sorted(shop.staff))
    return entry


def _outcome_pet(c: _Checker, where: str, p: Any) -> dict[str, Any]:
    p = c.keys(where, p, OUTCOME_PET_KEYS, required=("name",))
    if "species" in p:
        c.one_of(f"{where}.species", p["species"], ("dog", "cat"))
    if "size" in p:
        c.one_of(f"{where}.size", p["size"], ("small", "medium", "large", None))
    if "vaccinated_on" in p and p["vaccinated_on"] is not None:
        p = {**p, "vaccinated_on": c.day(f"{where}.vaccinated_on", p["vaccinated_on"])}
    return dict(p)


# ---------------------------------------------------------------------------------- running


async def _template(config: AppConfig, config_path: Path) -> Path:
    """A migrated, catalog-synced SQLite file, made once per process and copied per conversation."""
    return await sqlite_template(config)


_faq_cache: dict[str, FaqRegistry | None] = {}


async def _bootstrap(config: AppConfig, clock: FixedClock, url: str) -> Services:
    """``bootstrap`` on a copy of the template (already migrated and synced with ``config``), with
    the FAQ files parsed once per process: parsing both shops' FAQ YAML was most of a bootstrap's
    cost. The one registry still hot-reloads when a file changes."""
    key = config.faq_dir
    if key not in _faq_cache:
        _faq_cache[key] = load_faq_registry(config)
    return await bootstrap(
        config, clock=clock, database_url=url, migrate=False, sync=False, faq_registry=_faq_cache[key]
    )


def _copy_db(template: Path, target: Path) -> None:
    copy_sqlite(template, target)


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _utc(shop: ShopConfig, local: datetime) -> datetime:
    return local.replace(tzinfo=shop.tz).astimezone(UTC)


def _local(shop: ShopConfig, moment: datetime) -> str:
    return moment.astimezone(shop.tz).strftime("%Y-%m-%d %H:%M")


def _user(script: Script) -> str:
    return f"corpus-{script.id}"[:120]


async def seed(services: Services, script: Script, clock: FixedClock) -> None:
    """The customer, their pets and their bookings, made before the first message."""
    given = script.given
    name = given.get("name", DEFAULT_NAMES[script.lang])
    if given.get("others"):
        await _seed_others(services, script)
    if not given.get("pets") and not given.get("bookings") and "name" not in given:
        return  # a first-time customer: the engine creates them on the first message
    customer = await services.customers.identify(
        script.shop, CHANNEL, _user(script), display_name=name, language=script.lang
    )
    pets: dict[str, int] = {}
    for pet in given.get("pets", []):
        kwargs: dict[str, Any] = {
            "name": pet["name"],
            "species": pet["species"],
            "size": pet["size"],
            "breed": pet["breed"],
        }
        if "vaccinated_on" in pet:
            kwargs["vaccinated_on"] = pet["vaccinated_on"]
        view = await services.customers.add_pet(customer.id, **kwargs)
        pets[pet["name"]] = view.id
    for b in given.get("bookings", []):
        await _seed_booking(services, script, clock, customer.id, pets, b)


async def _seed_others(services: Services, script: Script) -> None:
    """Bookings of another customer (``given.others``), to make a time or a day full."""
    shop = services.config.shops[script.shop]
    other = await services.customers.identify(
        script.shop, CHANNEL, f"{_user(script)}-other", display_name="Other", language=script.lang
    )
    for b in script.given["others"]:
        request = BookingRequest(
            script.shop, b["service"], _utc(shop, b["start"]), staff_id=b["staff"], customer_id=other.id
        )
        booked = await services.bookings.book(request, Actor.staff("seed"))
        if not isinstance(booked, Booked):
            when = f"{b['start']:%Y-%m-%d %H:%M}"
            raise CorpusError(script.file, script.id, f"given other booking at {when} cannot be seeded: {booked}")


async def _seed_booking(
    services: Services, script: Script, clock: FixedClock, customer_id: int, pets: dict[str, int], b: dict[str, Any]
) -> None:
    """One given booking: a past one is booked with the clock set back, then marked; a cancelled
    one is booked, then cancelled; the clock is put back to the conversation's start."""
    shop = services.config.shops[script.shop]
    now = clock.current
    start = _utc(shop, b["start"])
    if b["status"] in ("completed", "no_show") or start <= now:
        clock.set(start - timedelta(days=1))
    actor = Actor.system("seed") if b["status"] == "pending" else Actor.staff("seed")
    request = BookingRequest(
        script.shop,
        b["service"],
        start,
        staff_id=b["staff"],
        customer_id=customer_id,
        pet_id=pets.get(b["pet"]) if b["pet"] else None,
        addons=tuple(b["addons"]),
    )
    result = await services.bookings.book(request, actor)
    if not isinstance(result, Booked):
        clock.set(now)
        raise CorpusError(
            script.file,
            script.id,
            f"given booking {b['service']} at {b['start']:%Y-%m-%d %H:%M} cannot be seeded: {result}",
        )
    booking = result.booking
    if b["status"] in ("completed", "no_show"):
        clock.set(booking.end + timedelta(minutes=5))
        done = await services.bookings.mark_attendance(script.shop, booking.id, b["status"], Actor.staff("seed"))
        if not done.ok:
            clock.set(now)
            when = f"{b['start']:%Y-%m-%d %H:%M}"
            raise CorpusError(script.file, script.id, f"given booking at {when} not marked: {done}")
    elif b["status"] == "cancelled":
        await services.bookings.cancel(script.shop, booking.id, Actor.staff("seed"), reason="seed")
    clock.set(now)


async def _conversation_row(services: Services, script: Script) -> Conversation | None:
    async with services.db.unit_of_work(), services.db.reading() as s:
        return await s.scalar(
            select(Conversation).where(
                Conversation.shop_id == script.shop,
                Conversation.channel == CHANNEL,
                Conversation.external_id == _user(script),
            )
        )


def _label_texts(key: str) -> list[str]:
    return [texts(lang).t(key) if "{" not in str(texts(lang).entries[key]) else _fixed(lang, key) for lang in LANGS]


def _fixed(lang: str, key: str) -> str:
    """A locale text without its placeholders: the part before the first {placeholder} (or, for a
    text that starts with one, its longest literal part)."""
    template = str(texts(lang).entries[key])
    head = template.split("{")[0].strip()
    if head:
        return head
    return max((part.strip() for part in _PLACEHOLDER.split(template)), key=len, default="")


_HOW = ("exact", "prefix", "inside")


def _label_matches(label: str, text: str, key: str, how: str) -> bool:
    """``exact``, then ``prefix`` ("上午 (4)" for btn.morning), then ``inside`` for labels made
    from a text with placeholders ("11月28日有空位时通知我")."""
    if not text:
        return False
    if how == "exact":
        return label == text
    if how == "prefix":
        return label.startswith(text)
    return "{" in str(texts("zh").entries[key]) and text in label


def _find_button(chat: CollectingChannel, key: str, lang: str) -> tuple[str, str] | None:
    wanted = _label_texts(key)
    order = [wanted[LANGS.index(lang)], *[w for w in wanted if w != wanted[LANGS.index(lang)]]]
    for how in _HOW:
        for text in order:
            for reply in reversed(chat.replies):
                for b in reply.buttons:
                    if _label_matches(b.label, text, key, how):
                        return b.label, b.payload
    return None


def _last_buttons(history: list[list[Any]]) -> list[Any]:
    for replies in reversed(history):
        buttons = [b for r in replies for b in r.buttons]
        if buttons:
            return buttons
    return []


def _render_faq(answer: str, shop: ShopConfig, lang: str) -> list[str]:
    """The literal parts of an FAQ answer (placeholders replaced by config facts where known)."""
    parts: list[str] = []
    for piece in _PLACEHOLDER.split(answer):
        piece = piece.strip()
        if len(piece) >= 2:
            parts.append(piece)
    for ph in _PLACEHOLDER.findall(answer):
        name = ph[1:-1]
        if name == "address":
            parts.append(shop.address.get(lang))
        elif name == "phone" and shop.phone:
            parts.append(shop.phone)
        elif name.startswith("price:") and name[6:] in shop.services:
            parts.append(f"{shop.services[name[6:]].price:g}")
    return parts


def _names(script: Script) -> list[str]:
    """Names the customer gave (their own, their pets'): they stay as written in any language."""
    names = [p["name"] for p in script.given.get("pets", [])]
    names += [str(p["name"]) for p in script.outcome.get("pets", [])]
    names += [b["pet"] for b in script.outcome.get("bookings", []) if "pet" in b]
    if "name" in script.given:
        names.append(script.given["name"])
    return sorted({n for n in names if n}, key=len, reverse=True)


def _check_turn(
    step: Step, record: TurnRecord, text: str, labels: list[str], script: Script, config: AppConfig
) -> list[str]:
    e = step.expect
    fails = _check_state_and_text(e, record, text, script)
    if "faq" in e and not _faq_answered(e["faq"], text, script, config):
        fails.append(f"reply should contain FAQ answer {e['faq']}")
    if "handoff" in e:
        handed = record.mode not in ("", "bot")
        if handed != e["handoff"]:
            fails.append(f"handoff should be {e['handoff']}, mode is {record.mode}")
    if "lang" in e:
        fails += _check_language(e["lang"], text, script)
    for key in e.get("buttons", []):
        wanted = [w for w in _label_texts(key) if w]
        if not any(_label_matches(label, w, key, how) for label in labels for w in wanted for how in _HOW):
            fails.append(f"buttons should offer {key} ({wanted[LANGS.index(script.lang)]!r})")
    return fails


def _check_state_and_text(e: dict[str, Any], record: TurnRecord, text: str, script: Script) -> list[str]:
    """``asks``, ``asks_not``, ``contains``, ``not_contains`` and ``contains_key``."""
    fails: list[str] = []
    if "asks" in e and record.state != e["asks"]:
        fails.append(f"expected the bot to be asking {e['asks']}, it is at {record.state}")
    fails += [f"the bot must not be asking {state} here" for state in e.get("asks_not", []) if record.state == state]
    fails += [f"reply should contain {part!r}" for part in e.get("contains", []) if part not in text]
    fails += [f"reply must not contain {part!r}" for part in e.get("not_contains", []) if part in text]
    for key in e.get("contains_key", []):
        fixed = [_fixed(lang, key) for lang in LANGS]
        if not any(f and f in text for f in fixed):
            fails.append(f"reply should contain the text of {key} ({fixed[LANGS.index(script.lang)]!r})")
    return fails


def _faq_answered(entry_id: str, text: str, script: Script, config: AppConfig) -> bool:
    """Whether the replies hold the FAQ entry's answer (in the conversation's language first)."""
    shop = config.shops[script.shop]
    answers = faq_entries(config, script.shop).get(entry_id, {})
    for lang in (script.lang, *[x for x in LANGS if x != script.lang]):
        parts = _render_faq(str(answers.get(lang, "")), shop, lang)
        if parts and all(p in text for p in parts):
            return True
    return False


def _check_language(lang: str, text: str, script: Script) -> list[str]:
    plain = text
    for name in _names(script):  # a pet called 豆豆 is 豆豆 in English replies too
        plain = plain.replace(name, "")
    has_cjk = bool(_CJK.search(plain))
    if lang == "zh" and not has_cjk:
        return ["reply should be in Chinese"]
    if lang == "en" and has_cjk:
        return ["reply should be in English (it has Chinese characters)"]
    return []


async def _check_outcome(services: Services, script: Script, result: Result, seeded: set[int]) -> None:
    shop = services.config.shops[script.shop]
    row = await _conversation_row(services, script)
    rows, pets = await _customer_rows(services, script, row)
    result.final_bookings = [
        f"{b.service_id} {_local(shop, b.start_at)} {b.status.value} ¥{b.price_cents / 100:g}"
        f"{' +' + ','.join(sorted(a.addon_id for a in b.addons)) if b.addons else ''}"
        f"{' pet=' + pets[b.pet_id].name if b.pet_id in pets else ''}"
        for b in rows
    ]
    result.booked = any(b.id not in seeded and b.status.value in ("pending", "confirmed") for b in rows)
    outcome = script.outcome
    if "bookings" in outcome:
        expected = outcome["bookings"]
        listed = set(LISTED_BY_DEFAULT) | {e["status"] for e in expected}
        actual = [b for b in rows if b.status.value in listed]
        problems: list[str] = []
        if len(actual) != len(expected):
            problems.append(f"{len(actual)} booking(s), expected {len(expected)}")
        for n, (want, got) in enumerate(zip(expected, actual, strict=False), 1):
            diffs = _booking_diffs(shop, want, got, pets)
            if diffs:
                problems.append(f"booking {n}: " + ", ".join(diffs))
        if problems:
            want_text = "; ".join(f"{e['service']} {e['start']:%Y-%m-%d %H:%M} {e['status']}" for e in expected)
            result.failures.append(f"outcome bookings: {' | '.join(problems)} (expected: {want_text or 'none'})")
    if "handoff" in outcome:
        handed = row is not None and row.mode != ConversationMode.BOT
        if handed != outcome["handoff"]:
            result.failures.append(
                f"outcome handoff should be {outcome['handoff']}, mode is "
                f"{row.mode.value if row else 'no conversation'}"
            )
    for want in outcome.get("pets", []):
        result.failures += _pet_diffs(want, pets)


async def _customer_rows(
    services: Services, script: Script, row: Conversation | None
) -> tuple[list[Booking], dict[int, Pet]]:
    """The customer's bookings (by start) and pets, read in one unit of work."""
    async with services.db.unit_of_work(), services.db.reading() as s:
        customer_id = row.customer_id if row else None
        if customer_id is None:
            customer_id = await s.scalar(
                select(ChannelIdentity.customer_id).where(
                    ChannelIdentity.shop_id == script.shop,
                    ChannelIdentity.channel == CHANNEL,
                    ChannelIdentity.external_id == _user(script),
                )
            )
        if customer_id is None:
            return [], {}
        query = select(Booking).where(Booking.customer_id == customer_id).order_by(Booking.start_at)
        rows = list(await s.scalars(query))
        pets = {p.id: p for p in await s.scalars(select(Pet).where(Pet.customer_id == customer_id))}
    return rows, pets


def _booking_diffs(shop: ShopConfig, want: dict[str, Any], got: Booking, pets: dict[int, Pet]) -> list[str]:
    diffs = []
    if got.service_id != want["service"]:
        diffs.append(f"service {got.service_id} != {want['service']}")
    start = _local(shop, got.start_at)
    if start != want["start"].strftime("%Y-%m-%d %H:%M"):
        diffs.append(f"start {start} != {want['start']:%Y-%m-%d %H:%M}")
    if got.status.value != want["status"]:
        diffs.append(f"status {got.status.value} != {want['status']}")
    if "price" in want and got.price_cents != want["price"] * 100:
        diffs.append(f"price {got.price_cents / 100:g} != {want['price']}")
    if "addons" in want and sorted(a.addon_id for a in got.addons) != want["addons"]:
        diffs.append(f"addons {sorted(a.addon_id for a in got.addons)} != {want['addons']}")
    if "pet" in want:
        pet = pets.get(got.pet_id) if got.pet_id else None
        if (pet.name if pet else None) != want["pet"]:
            diffs.append(f"pet {pet.name if pet else None} != {want['pet']}")
    if "staff" in want and got.staff_id != want["staff"]:
        diffs.append(f"staff {got.staff_id} != {want['staff']}")
    return diffs


def _pet_diffs(want: dict[str, Any], pets: dict[int, Pet]) -> list[str]:
    pet = next((p for p in pets.values() if p.name == want["name"]), None)
    if pet is None:
        return [f"outcome pets: no pet named {want['name']} on file (have {[p.name for p in pets.values()]})"]
    fails = [
        f"outcome pets: {pet.name}.{key} is {getattr(pet, key)!r}, expected {want[key]!r}"
        for key in ("species", "size", "breed")
        if key in want and getattr(pet, key) != want[key]
    ]
    value = pet.vaccinated_on
    if "vaccinated" in want and bool(value) != bool(want["vaccinated"]):
        fails.append(f"outcome pets: {pet.name} vaccinated is {bool(value)}, expected {want['vaccinated']}")
    if "vaccinated_on" in want and value != want["vaccinated_on"]:
        fails.append(f"outcome pets: {pet.name}.vaccinated_on {value} != {want['vaccinated_on']}")
    return fails


async def run_conversation(
    script: Script,
    workdir: Path,
    config: AppConfig | None = None,
    config_path: Path = CONFIG_PATH,
) -> Result:
    """Play one conversation on a fresh SQLite database in ``workdir``; never raises for a mismatch."""
    config = config or demo_config(config_path)
    shop = config.shops[script.shop]
    result = Result(script)
    template = await _template(config, config_path)
    db_path = workdir / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', script.id)}.db"
    _copy_db(template, db_path)
    clock = FixedClock(_utc(shop, script.now))
    services = await _bootstrap(config, clock, f"sqlite+aiosqlite:///{db_path}")
    try:
        try:
            async with services.db.unit_of_work():  # one transaction on the inline path: speed only
                await seed(services, script, clock)
        except CorpusError as exc:
            result.error = str(exc)
            return result
        async with services.db.unit_of_work(), services.db.reading() as s:
            seeded = set(await s.scalars(select(Booking.id)))
        chat = CollectingChannel(
            services.engine,
            script.shop,
            user=_user(script),
            channel=CHANNEL,
            display_name=script.given.get("name", DEFAULT_NAMES[script.lang]),
            language_hint=script.hint,
        )
        history: list[list[Any]] = []
        for n, step in enumerate(script.steps, 1):
            record = TurnRecord(step.action, step.value)
            result.turns.append(record)
            if step.action == "wait":
                m = _WAIT.match(step.value.strip())
                assert m is not None
                amount, unit = int(m.group(1)), m.group(2)
                clock.advance(timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount}))
                continue
            if step.action == "say":
                replies = await chat.push(step.value)
            else:
                if step.action == "press":
                    found = _find_button(chat, step.value, script.lang)
                    if found is None:
                        labels = [b.label for r in chat.replies for b in r.buttons]
                        msg = f"turn {n}: no button {step.value} ({_label_texts(step.value)}) among {labels}"
                        record.failures.append(msg)
                        result.failures.append(msg)
                        break
                else:
                    buttons = _last_buttons(history)
                    if step.value > len(buttons):
                        msg = (
                            f"turn {n}: cannot tap button {step.value}, the last buttons were "
                            f"{[b.label for b in buttons]}"
                        )
                        record.failures.append(msg)
                        result.failures.append(msg)
                        break
                    button = buttons[step.value - 1]
                    found = (button.label, button.payload)
                record.value = f"{step.value} -> [{found[0]}]"
                replies = await chat.push(found[0], payload=found[1])
            history.append(list(replies))
            record.replies = [(r.text, [b.label for b in r.buttons]) for r in replies]
            row = await _conversation_row(services, script)
            record.state = row.state if row else ""
            record.mode = row.mode.value if row else ""
            text = "\n".join(r.text for r in replies)
            labels = [b.label for r in replies for b in r.buttons]
            fails = _check_turn(step, record, text, labels, script, config)
            record.failures.extend(fails)
            result.failures.extend(f"turn {n}: {f}" for f in fails)
        await _check_outcome(services, script, result, seeded)
    except Exception as exc:  # a crash in the engine is a failed conversation with its transcript
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        await services.close()
        _remove_db(db_path)
    return result


async def feasibility(script: Script, workdir: Path, config: AppConfig | None = None) -> list[str]:
    """Problems that make the expected outcome impossible: each expected booking that was not seeded
    is booked by the customer through the booking service at the clock the conversation ends at
    (after its waits); a refusal (closed, too soon, staff off, taken...) or another status is reported."""
    config = config or demo_config()
    shop = config.shops[script.shop]
    template = await _template(config, CONFIG_PATH)
    db_path = workdir / f"feasible-{re.sub(r'[^A-Za-z0-9_.-]', '_', script.id)}.db"
    _copy_db(template, db_path)
    clock = FixedClock(_utc(shop, script.now))
    services = await _bootstrap(config, clock, f"sqlite+aiosqlite:///{db_path}")
    problems: list[str] = []
    try:
        await seed(services, script, clock)
        for step in script.steps:
            if step.action == "wait":
                m = _WAIT.match(step.value.strip())
                assert m is not None
                unit = {"m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
                clock.advance(timedelta(**{unit: int(m.group(1))}))
        customer = await services.customers.identify(
            script.shop, CHANNEL, _user(script), display_name="x", language=script.lang
        )
        seeded = {(b["service"], b["start"]) for b in script.given.get("bookings", [])}
        for want in script.outcome.get("bookings", []):
            if (want["service"], want["start"]) in seeded or want["status"] not in ("confirmed", "pending"):
                continue
            request = BookingRequest(
                script.shop,
                want["service"],
                _utc(shop, want["start"]),
                customer_id=customer.id,
                addons=tuple(want.get("addons", ())),
            )
            result = await services.bookings.book(request, Actor.customer(customer.id))
            when = f"{want['start']:%Y-%m-%d %H:%M}"
            if not isinstance(result, Booked):
                problems.append(f"{want['service']} at {when} cannot be booked: {result}")
            elif result.booking.status.value != want["status"]:
                problems.append(f"{want['service']} at {when} would be {result.booking.status.value}")
            elif "price" in want and result.booking.price_cents != want["price"] * 100:
                problems.append(f"{want['service']} at {when} costs {result.booking.price_cents / 100:g}")
    except CorpusError as exc:
        problems.append(str(exc))
    finally:
        await services.close()
        _remove_db(db_path)
    return problems
