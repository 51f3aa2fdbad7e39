"""The shop configuration (config.yaml): schema, cross-checks and loading.

config.yaml is the source of truth for shops, services, add-ons, staff, shifts and resources.
It is validated completely at load; every problem is reported as ``FILE:LINE: key: reason`` and
nothing starts on a bad file. Secrets are referenced as ``${VAR}`` and read from the environment.
"""

from __future__ import annotations

import difflib
import ipaddress
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.yamlsource import SourceIssue, YamlDocument, YamlSourceError, load_yaml

# Bookings are stored on a 5-minute grid (see core/occupancy.py): every duration, buffer and
# step must be a multiple of it.
GRID_MIN = 5
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")
_ID = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class ConfigError(Exception):
    """A config file that cannot be used; ``issues`` lists every problem with its line."""

    def __init__(self, issues: list[SourceIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


@dataclass(frozen=True, order=True)
class TimeRange:
    """A wall-clock range within one day, in minutes from midnight (end may be 24:00)."""

    start_min: int
    end_min: int

    @property
    def start(self) -> time:
        return time(self.start_min // 60, self.start_min % 60)

    def __str__(self) -> str:
        return f"{self.start_min // 60:02d}:{self.start_min % 60:02d}-{self.end_min // 60:02d}:{self.end_min % 60:02d}"


def _parse_range(value: Any) -> TimeRange:
    if isinstance(value, TimeRange):
        return value
    if not isinstance(value, str):
        raise ValueError("a time range is text like '10:00-20:00' (quote it)")
    match = _RANGE.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a time range like '10:00-20:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ValueError(f"'{value}' has an impossible time")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start >= end:
        raise ValueError(f"'{value}' ends before it starts")
    if start % GRID_MIN or end % GRID_MIN:
        raise ValueError(f"'{value}': times must be on a {GRID_MIN}-minute grid")
    return TimeRange(start, end)


def _localized(value: Any) -> Any:
    if isinstance(value, str):
        return {"zh": value, "en": value}
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Localized(_Model):
    """Text in both customer languages; a plain string means the same in both."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


LocalizedText = Annotated[Localized, BeforeValidator(_localized)]
Range = Annotated[TimeRange, BeforeValidator(_parse_range)]
WeeklyHours = dict[Weekday, list[Range]]


def _grid(value: int) -> int:
    if value % GRID_MIN:
        raise ValueError(f"must be a multiple of {GRID_MIN} minutes")
    return value


class BookingRules(_Model):
    """How far ahead, how often and how strictly a shop takes bookings."""

    slot_step_min: int = Field(default=30, ge=GRID_MIN, le=240)
    buffer_min: int = Field(default=0, ge=0, le=240)
    lead_time_min: int = Field(default=60, ge=0, le=60 * 24 * 14)
    horizon_days: int = Field(default=30, ge=1, le=366)
    hold_ttl_min: int = Field(default=10, ge=1, le=120)
    waitlist_offer_min: int = Field(default=15, ge=1, le=24 * 60)  # a freed slot is held this long for one waiter
    cancel_cutoff_min: int = Field(default=120, ge=0, le=60 * 24 * 14)
    reschedule_cutoff_min: int = Field(default=120, ge=0, le=60 * 24 * 14)
    flow_idle_min: int = Field(default=30, ge=1, le=60 * 24 * 7)  # an unfinished chat flow is put away after this

    _grid_step = field_validator("slot_step_min", "buffer_min")(_grid)


def _clock_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int):  # YAML 1.1 reads unquoted 18:00 as the sexagesimal number 1080
        raise ValueError("quote times, e.g. '18:00'")
    match = re.match(r"^\s*(\d{1,2}):(\d{2})\s*$", str(value))
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"'{value}' is not a time like '18:00'")
    return time(int(match.group(1)), int(match.group(2)))


ClockTime = Annotated[time, BeforeValidator(_clock_time)]


@dataclass(frozen=True)
class QuietHours:
    """Hours with no reminders; may wrap midnight ('21:00-08:00')."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


def _quiet(value: Any) -> QuietHours:
    if isinstance(value, QuietHours):
        return value
    parts = str(value).split("-")
    if len(parts) != 2:
        raise ValueError(f"'{value}' is not a range like '21:00-08:00'")
    return QuietHours(_clock_time(parts[0]), _clock_time(parts[1]))


Quiet = Annotated[QuietHours, BeforeValidator(_quiet)]


class ReminderRules(_Model):
    """When customers are reminded of a visit (times are the shop's wall-clock times)."""

    confirmation: bool = True  # tell the customer at once when staff book or approve for them
    day_before: ClockTime | None = time(18, 0)  # on the last open day before the visit; None: off
    same_day_before_min: int | None = Field(default=120, ge=15, le=24 * 60)  # None: off
    morning_at: ClockTime | None = time(9, 0)  # afternoon visits get the same-day reminder then
    morning_if_visit_after: ClockTime = time(12, 0)
    quiet_hours: Quiet | None = None  # e.g. '21:00-08:00': nothing is sent then


class ResourceConfig(_Model):
    """Something several bookings compete for, e.g. the one exam room (capacity 1)."""

    name: LocalizedText | None = None
    capacity: int = Field(default=1, ge=1, le=100)


class AddonConfig(_Model):
    """An extra that can be added to a service, lengthening it."""

    name: LocalizedText
    aliases: list[str] = Field(default_factory=list)  # words customers use for it ("驱虫", "deworm")
    duration_min: int = Field(default=0, ge=0, le=480)
    price: Decimal = Field(default=Decimal(0), ge=0)

    _grid_duration = field_validator("duration_min")(_grid)


class VaccineKind(_Model):
    """A kind of vaccination the shop records (records, issue 15): its name and how long it counts."""

    name: LocalizedText | None = None  # default: the catalog's vaccine.<kind> text
    valid_days: int = Field(default=365, ge=1, le=3650)


# Kinds every shop knows; a shop's config may rename them, change their validity or add more.
DEFAULT_VACCINE_KINDS: tuple[str, ...] = ("rabies", "core", "kennel")
GENERAL_VACCINE = "general"  # the owner said "vaccinated" without naming one: counts for every kind


class VaccinationRules(_Model):
    """Which vaccinations a service with ``requires_vaccination`` needs, and how long each counts."""

    kinds: dict[str, VaccineKind] = Field(default_factory=dict)  # added to / overriding rabies, core, kennel
    required: list[str] = Field(default_factory=list)  # empty: any recorded vaccination counts
    default_valid_days: int = Field(default=365, ge=1, le=3650)  # the "general" kind and unnamed kinds
    # Tell the owner once when a vaccination on file runs out before a visit booked within this many
    # days (core/vaccination_notices.py, the daily recall run); None: off.
    expiry_notice_days: int | None = Field(default=14, ge=1, le=90)

    def valid_days(self, kind: str) -> int:
        found = self.kinds.get(kind)
        return found.valid_days if found is not None else self.default_valid_days

    def known(self) -> list[str]:
        return list(dict.fromkeys([*DEFAULT_VACCINE_KINDS, *self.kinds]))


class EyeRecallRules(_Model):
    """When an eye exam should be repeated (records, issue 15), by the age of the person examined."""

    child_until_age: int = Field(default=18, ge=1, le=30)  # younger than this is a child
    child_myopia_months: int = Field(default=6, ge=1, le=24)  # a short-sighted child
    child_progressing_months: int = Field(default=3, ge=1, le=24)  # ...whose myopia grew since the last exam
    child_months: int = Field(default=12, ge=1, le=36)  # a child who is not short-sighted
    adult_months: int = Field(default=12, ge=1, le=60)
    # Automatic recall reminders (bot/usecases/recalls.py, the scheduler's daily run at an optician):
    # each person whose check-up is due gets ONE message in their latest chat, with a "book" button.
    auto_send: bool = True  # an optician's recalls go out by themselves; false: staff send them from the console
    send_at: ClockTime = time(10, 0)  # the shop's wall clock: the daily run, never before this...
    send_until: ClockTime = time(19, 0)  # ...nor after this (a server down at send_at catches up the same day)
    days_before: int = Field(default=7, ge=0, le=60)  # sent this many days before the recall date
    max_overdue_days: int = Field(default=90, ge=0, le=3650)  # older recalls are left to staff (phone them)
    # "service": a care reminder for a past exam, like the follow-up (no opt-in needed);
    # "notices": only customers who opted in to the shop's news (customers.notices, "退订" opts out)
    consent: Literal["service", "notices"] = "service"

    @model_validator(mode="after")
    def _send_window(self) -> EyeRecallRules:
        if self.send_until <= self.send_at:
            raise ValueError("send_until must be after send_at")
        return self


class ServiceConfig(_Model):
    """A bookable service."""

    name: LocalizedText
    aliases: list[str] = Field(default_factory=list)  # words customers use for it in chat
    duration_min: int = Field(ge=GRID_MIN, le=12 * 60)
    price: Decimal = Field(default=Decimal(0), ge=0)
    confirmation: Literal["auto", "staff"] = "auto"
    staff_required: bool = True
    resources: list[str] = Field(default_factory=list)
    addons: list[str] = Field(default_factory=list)
    category: str | None = None
    pet_size: Literal["small", "medium", "large"] | None = None
    species: list[str] = Field(default_factory=list)
    requires_vaccination: bool = False
    description: LocalizedText | None = None
    reminders: ReminderRules | None = None  # overrides the shop's rules for this service
    follow_up: LocalizedText | None = None  # sent when the visit is marked completed (care tips...)
    rebook_after_days: int | None = Field(default=None, ge=1, le=730)  # "time for the next one?" nudge
    vaccines: list[str] | None = None  # the vaccinations this service needs (default: the shop's required list)

    _grid_duration = field_validator("duration_min")(_grid)


class CategoryConfig(_Model):
    """Services offered as one choice in chat, told apart by the pet (e.g. dog bath by size)."""

    name: LocalizedText
    aliases: list[str] = Field(default_factory=list)


class StaffConfig(_Model):
    """A person who performs services, with a weekly shift pattern."""

    name: LocalizedText
    role: str = Field(min_length=1)
    services: list[str] = Field(default_factory=list)
    shifts: WeeklyHours = Field(default_factory=dict)


class TelegramConfig(_Model):
    """A Telegram bot for the shop (token from @BotFather, via ${ENV})."""

    token: str = Field(min_length=1)
    mode: Literal["webhook", "polling"] = "webhook"
    secret_token: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,256}$")
    api_base_url: str | None = None  # a local Bot API server or proxy; tests point it at a fake
    enabled: bool = True


# WeChat template notices (channels/wechat_templates.py renders them). Since 2023-05 WeChat shows only
# the keyword fields of a template message (no first/remark) and cuts every value to its type's limit;
# templates are for service notices only, never for marketing or staff replies.
WeChatFieldType = Literal[
    "thing", "time", "date", "phrase", "character_string", "number", "amount", "phone_number", "car_number", "name"
]
# Longest first, so that a field name's prefix is matched whole ("character_string3").
WECHAT_FIELD_TYPES: tuple[str, ...] = (
    "character_string",
    "phone_number",
    "car_number",
    "thing",
    "time",
    "date",
    "phrase",
    "number",
    "amount",
    "name",
)
WeChatNoticeKind = Literal["reminder", "booking_change", "shop_change", "waitlist_offer"]
# What a field shows: parts of the message text, or facts of the booking the notice is about.
WeChatValueSource = Literal[
    "title", "body", "text", "service", "time", "date", "code", "shop", "staff", "address", "pet", "status", "phone"
]
_FIELD_SOURCES: dict[str, tuple[str, ...]] = {
    "time": ("time",),
    "date": ("date", "time"),
    "character_string": ("code",),
    "number": ("code",),
    "phone_number": ("phone",),
    "phrase": ("status",),
    "name": ("staff", "pet"),
    "amount": (),
    "car_number": (),
}


class WeChatTemplateField(_Model):
    """One keyword field of a template: where its value comes from and its type (default: from its name)."""

    value: WeChatValueSource
    type: WeChatFieldType | None = None


def _template_field(value: Any) -> Any:
    return {"value": value} if isinstance(value, str) else value


class WeChatTemplateConfig(_Model):
    """A template from the account's template library, e.g. {template_id: ..., fields: {thing1: service}}."""

    template_id: str = Field(min_length=1, max_length=128)
    fields: dict[str, Annotated[WeChatTemplateField, BeforeValidator(_template_field)]] = Field(min_length=1)

    @field_validator("fields")
    @classmethod
    def _keyword_fields(cls, fields: dict[str, WeChatTemplateField]) -> dict[str, WeChatTemplateField]:
        problems = []
        for name, spec in fields.items():
            if name in ("first", "remark"):
                problems.append(f"'{name}': WeChat no longer shows first/remark (since 2023-05); use keyword fields")
                continue
            kind = spec.type or wechat_field_type(name)
            if kind is None:
                problems.append(f"'{name}': type unknown; name the field like thing1/time2 or set type")
                continue
            declared = wechat_field_type(name)
            if spec.type is not None and declared is not None and declared != spec.type:
                problems.append(f"'{name}': the name says {declared} but type is {spec.type}")
                continue
            allowed = _FIELD_SOURCES.get(kind)
            if allowed is not None and spec.value not in allowed:
                shown = ", ".join(allowed) or "nothing chatbook has"
                problems.append(f"'{name}': a {kind} field can show {shown}, not '{spec.value}'")
        if problems:
            raise ValueError("; ".join(problems))
        return fields


def wechat_field_type(name: str) -> str | None:
    """The type a template keyword's name carries (``thing1`` -> ``thing``), or None (``keyword1``)."""
    for kind in WECHAT_FIELD_TYPES:
        if name.startswith(kind) and name[len(kind) :].isdigit():
            return kind
    return None


class WeChatConfig(_Model):
    """A WeChat Official Account (server URL settings from the account's admin page)."""

    app_id: str = Field(min_length=1)
    app_secret: str = Field(min_length=1)
    token: str = Field(min_length=1)  # the "Token" used to sign pushes
    encoding_aes_key: str | None = Field(default=None, min_length=43, max_length=43)  # safe (AES) mode
    api_base_url: str | None = None  # an API gateway; tests point it at a fake
    # Outside WeChat's 48-hour customer service window only template messages can be sent:
    # the message's text goes into these fields of this template ("title" = its first line,
    # "body" = the rest, "text" = all of it), e.g. {first: title, keyword1: body, remark: ""}.
    reminder_template_id: str | None = None
    template_fields: dict[str, str] = Field(default_factory=lambda: {"first": "title", "remark": "body"})
    enabled: bool = True
    # Template notices per kind of service notice (keyword fields only; replaces the two settings above).
    templates: dict[WeChatNoticeKind, WeChatTemplateConfig] = Field(default_factory=dict)


class WebWidgetConfig(_Model):
    """The chat widget embedded on the shop's own site."""

    allowed_origins: list[str] = Field(default_factory=list)  # e.g. https://pawspa.example
    enabled: bool = True


class WeComConfig(_Model):
    """A WeCom customer service account (微信客服) for the shop; callback settings from its admin page."""

    corp_id: str = Field(min_length=1)  # 企业ID
    secret: str = Field(min_length=1)  # the customer service app's Secret (${ENV})
    token: str = Field(min_length=1)  # callback Token
    encoding_aes_key: str = Field(min_length=43, max_length=43)  # callback EncodingAESKey
    open_kfid: str = Field(min_length=1)  # the customer service account (wk...)
    api_base_url: str | None = None  # an API gateway; tests point it at a fake
    handoff_servicer: str | None = None  # WeCom userid that takes handed-off chats (default: the waiting pool)
    handoff_servicers: dict[str, str] = Field(default_factory=dict)  # per FAQ route, e.g. optometrist: zhangsan
    enabled: bool = True

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9+/]{43}", value):
            raise ValueError("the EncodingAESKey is 43 letters and digits, as shown in the WeCom admin console")
        return value


class ChannelsConfig(_Model):
    telegram: TelegramConfig | None = None
    wechat: WeChatConfig | None = None
    web: WebWidgetConfig = Field(default_factory=WebWidgetConfig)
    wecom: WeComConfig | None = None


class TelegramStaffAlerts(_Model):
    """Staff alerts to a Telegram chat (a staff group, or one person's chat with the bot) through
    the shop's own Telegram bot; the bot must be a member of that chat."""

    chat_id: str = Field(pattern=r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")  # numeric id or @channelname


class WeComStaffAlerts(_Model):
    """Staff alerts to a WeCom group chat (应用群聊, ``appchat/send``) through one of the corp's
    self-built apps (its own Secret, not the customer service one); the chat is made once with
    ``appchat/create`` and named here by its chatid."""

    corp_id: str = Field(min_length=1)  # 企业ID
    secret: str = Field(min_length=1)  # the app's Secret (${ENV}); never logged
    chat_id: str = Field(pattern=r"^[A-Za-z0-9]{1,32}$")  # the group chat's chatid
    api_base_url: str | None = None  # an API gateway; tests point it at a fake


class StaffAlertsConfig(_Model):
    """Where staff are told at once about a chat handed to them and a low rating (core/staff_alerts.py).
    Alerts never contain phone numbers, comments or health data: they say what happened and where
    to look in the console."""

    telegram: TelegramStaffAlerts | None = None
    wecom: WeComStaffAlerts | None = None
    language: Language | None = None  # the alerts' language (default: the shop's default language)
    enabled: bool = True


class ShopConfig(_Model):
    """One shop: who, where, when and what it sells."""

    name: LocalizedText
    kind: Literal["pet", "optician", "other"] = "other"
    timezone: str
    currency: str = "CNY"
    address: LocalizedText
    phone: str | None = None
    default_language: Language = "zh"
    booking: BookingRules = Field(default_factory=BookingRules)
    opening_hours: WeeklyHours
    closed_dates: list[date] = Field(default_factory=list)
    resources: dict[str, ResourceConfig] = Field(default_factory=dict)
    categories: dict[str, CategoryConfig] = Field(default_factory=dict)
    services: dict[str, ServiceConfig]
    addons: dict[str, AddonConfig] = Field(default_factory=dict)
    staff: dict[str, StaffConfig] = Field(default_factory=dict)
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)
    reminders: ReminderRules = Field(default_factory=ReminderRules)
    goodwill: LocalizedText | None = None  # offered when the shop has to move a booking
    vaccinations: VaccinationRules = Field(default_factory=VaccinationRules)  # pet records (issue 15)
    eye_recall: EyeRecallRules = Field(default_factory=EyeRecallRules)  # eye records (issue 15)
    staff_alerts: StaffAlertsConfig | None = None  # the staff notification channel (issue 15)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone '{value}' (use an IANA name like Asia/Shanghai)") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def hours_on(self, day: date) -> list[TimeRange]:
        """Opening hours on a given local date (empty when closed)."""
        if day in self.closed_dates:
            return []
        return list(self.opening_hours.get(WEEKDAYS[day.weekday()], []))

    def qualified_staff(self, service_id: str) -> list[str]:
        return [sid for sid, s in self.staff.items() if service_id in s.services]


class DatabaseConfig(_Model):
    url: str = "sqlite+aiosqlite:///chatbook.db"
    echo: bool = False


def _networks(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("a list of proxy addresses or networks, e.g. ['127.0.0.1', '10.0.0.0/8']")
    for item in value:
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            raise ValueError(f"'{item}' is not an IP address or network like 10.0.0.0/8") from None
    return [str(item) for item in value]


class ServerConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (TLS terminated there);
    # from any other peer those headers are ignored.
    trusted_proxies: Annotated[list[str], BeforeValidator(_networks)] = Field(default_factory=list)


class AppConfig(_Model):
    """The whole config.yaml."""

    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    faq_dir: str = "faq"  # one FAQ YAML per shop; relative paths are relative to this config file
    # built FAQ indexes kept between starts (faq/indexcache.py); "" turns the cache off
    faq_cache_dir: str = ".cache/faq"
    shops: dict[str, ShopConfig]

    def shop(self, shop_id: str) -> ShopConfig | None:
        return self.shops.get(shop_id)


Problems = list[tuple[tuple[str | int, ...], str]]  # (path in the file, message)


def _cross_check(cfg: AppConfig) -> Problems:
    """Checks that span several keys (references between sections)."""
    problems: Problems = []
    if not cfg.shops:
        problems.append((("shops",), "at least one shop is needed"))
    for shop_id, shop in cfg.shops.items():
        base: tuple[str | int, ...] = ("shops", shop_id)
        problems += _check_ids(base, shop_id, shop)
        for service_id, service in shop.services.items():
            problems += _check_service(shop, (*base, "services", service_id), service_id, service)
        for index, kind in enumerate(shop.vaccinations.required):
            if kind not in shop.vaccinations.known():
                problems.append(((*base, "vaccinations", "required", index), f"unknown vaccination kind '{kind}'"))
        problems += _check_staff_and_hours(base, shop)
        problems += _check_staff_alerts(base, shop)
    return problems


def _check_ids(base: tuple[str | int, ...], shop_id: str, shop: ShopConfig) -> Problems:
    """The shop's id and every item's id are lower-case letters, digits, - or _."""
    problems: Problems = []
    if not _ID.match(shop_id):
        problems.append((base, f"shop id '{shop_id}' must be lower-case letters, digits, - or _"))
    for section in ("services", "addons", "staff", "resources"):
        for item_id in getattr(shop, section):
            if not _ID.match(item_id):
                message = f"id '{item_id}' must be lower-case letters, digits, - or _"
                problems.append(((*base, section, item_id), message))
    return problems


def _check_service(shop: ShopConfig, spath: tuple[str | int, ...], service_id: str, service: ServiceConfig) -> Problems:
    """A service names only known categories, resources, add-ons and vaccinations, and someone
    performs it when it needs staff."""
    problems: Problems = []
    if service.category is not None and shop.categories and service.category not in shop.categories:
        problems.append(((*spath, "category"), f"unknown category '{service.category}'"))
    for index, res in enumerate(service.resources):
        if res not in shop.resources:
            problems.append(((*spath, "resources", index), f"unknown resource '{res}'"))
    for index, addon in enumerate(service.addons):
        if addon not in shop.addons:
            problems.append(((*spath, "addons", index), f"unknown add-on '{addon}'"))
    for index, kind in enumerate(service.vaccines or []):
        if kind not in shop.vaccinations.known():
            problems.append(((*spath, "vaccines", index), f"unknown vaccination kind '{kind}'"))
    if service.staff_required and not shop.qualified_staff(service_id):
        problems.append(
            (
                spath,
                f"no staff member lists service '{service_id}' (set staff_required: false "
                "if nobody in particular performs it)",
            )
        )
    return problems


def _check_staff_and_hours(base: tuple[str | int, ...], shop: ShopConfig) -> Problems:
    """Staff list known services; no shift or opening ranges overlap."""
    problems: Problems = []
    for staff_id, member in shop.staff.items():
        mpath = (*base, "staff", staff_id)
        for index, service_id in enumerate(member.services):
            if service_id not in shop.services:
                problems.append(((*mpath, "services", index), f"unknown service '{service_id}'"))
        for day, ranges in member.shifts.items():
            if _overlapping(ranges):
                problems.append(((*mpath, "shifts", day), "shift ranges overlap"))
    for day, ranges in shop.opening_hours.items():
        if _overlapping(ranges):
            problems.append(((*base, "opening_hours", day), "opening ranges overlap"))
    return problems


def _check_staff_alerts(base: tuple[str | int, ...], shop: ShopConfig) -> Problems:
    """Staff alerts go through the shop's own channels: naming one the shop lacks is refused."""
    alerts = shop.staff_alerts
    if alerts is None or not alerts.enabled:
        return []
    path = (*base, "staff_alerts")
    if alerts.telegram is None and alerts.wecom is None:
        return [(path, "say where staff are alerted: telegram: {chat_id} or wecom: {corp_id, secret, chat_id}")]
    bot = shop.channels.telegram
    if alerts.telegram is not None and (bot is None or not bot.enabled):
        return [((*path, "telegram"), "staff alerts go through the shop's Telegram bot: configure channels.telegram")]
    return []


def _overlapping(ranges: list[TimeRange]) -> bool:
    ordered = sorted(ranges)
    return any(a.end_min > b.start_min for a, b in itertools.pairwise(ordered))


def _explain(doc: YamlDocument, errors: list[Any]) -> list[SourceIssue]:
    """One message per mistake: a misspelt required key is reported once, with a suggestion."""
    missing = {tuple(e["loc"]) for e in errors if e["type"] == "missing"}
    merged: set[tuple[Any, ...]] = set()
    issues = []
    for err in errors:
        loc = tuple(err["loc"])
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            siblings = [m[-1] for m in missing if m[:-1] == loc[:-1] and isinstance(m[-1], str)]
            guess = difflib.get_close_matches(str(loc[-1]), siblings, n=1)
            if guess:
                merged.add((*loc[:-1], guess[0]))
                message = f"unknown key (did you mean '{guess[0]}'?)"
            else:
                message = "unknown key (check the spelling)"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        issues.append((loc, message))
    return [
        SourceIssue(doc.file, doc.line_of(loc), f"{'.'.join(str(p) for p in loc) or '(top)'}: {message}")
        for loc, message in issues
        if loc not in merged
    ]


def parse_config(doc: YamlDocument) -> AppConfig:
    """Validate a parsed document; raise ConfigError listing every problem with its line."""
    if not isinstance(doc.data, dict):
        raise ConfigError([SourceIssue(doc.file, 1, "the file must be a mapping with a 'shops' key")])
    try:
        cfg = AppConfig.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(_explain(doc, exc.errors())) from None
    problems = _cross_check(cfg)
    if problems:
        raise ConfigError(
            [
                SourceIssue(doc.file, doc.line_of(path), f"{'.'.join(map(str, path))}: {message}")
                for path, message in problems
            ]
        )
    return cfg


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> AppConfig:
    """Read and validate config.yaml; raise ConfigError with every problem found.

    A relative ``faq_dir`` (and ``faq_cache_dir``) is resolved against the config file's directory.
    """
    try:
        doc = load_yaml(path, environ=environ)
    except YamlSourceError as exc:
        raise ConfigError(exc.issues) from None
    config = parse_config(doc)
    base = Path(path).resolve().parent
    faq_dir = Path(config.faq_dir)
    if not faq_dir.is_absolute():
        config = config.model_copy(update={"faq_dir": str(base / faq_dir)})
    cache_dir = Path(config.faq_cache_dir)
    if config.faq_cache_dir and not cache_dir.is_absolute():
        config = config.model_copy(update={"faq_cache_dir": str(base / cache_dir)})
    return config
