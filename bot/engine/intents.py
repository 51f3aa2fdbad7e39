"""Recognising what a customer means: commands, yes/no, services, add-ons, pets and times.

Recognition words are data here (per language, both always active: customers mix them);
the words the bot says live in core/locales. Matching is on a normalised form (NFKC,
lower case, punctuation dropped), so "取消！" and "Cancel." both mean cancel.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import lru_cache

from core.config import ShopConfig
from core.customers import PetView
from core.when import When, parse_when

_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


@lru_cache(maxsize=8192)
def normalise(text: str) -> str:
    """Lower-case NFKC text with punctuation and spaces squeezed to single spaces (cached: the
    word lists are normalised on every message, and a message is normalised by several readers)."""
    return _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


class Command(StrEnum):
    CANCEL_FLOW = "cancel_flow"
    BACK = "back"
    HUMAN = "human"
    MENU = "menu"
    GREET = "greet"
    MY_BOOKINGS = "my_bookings"
    RESCHEDULE = "reschedule"
    CANCEL_BOOKING = "cancel_booking"
    ADD_ADDON = "add_addon"
    BOOK = "book"
    NOTICES_ON = "notices_on"
    NOTICES_OFF = "notices_off"
    LEAVE_WAITLIST = "leave_waitlist"
    TO_ENGLISH = "to_english"
    TO_CHINESE = "to_chinese"


# The whole message must be one of these (after normalisation)...
_EXACT: dict[Command, tuple[str, ...]] = {
    Command.CANCEL_FLOW: (
        "取消",
        "算了",
        "不要了",
        "不用了",
        "退出",
        "不约了",
        "cancel",
        "quit",
        "never mind",
        "nevermind",
        "forget it",
        "abort",
    ),
    Command.NOTICES_ON: ("订阅", "订阅通知", "订阅门店通知", "subscribe", "subscribe to news", "start news"),
    Command.NOTICES_OFF: ("退订", "退订通知", "取消订阅", "stop", "unsubscribe", "stop news"),
    Command.BOOK: (
        "约",
        "约一个",
        "预约一下",
        "预约",
        "我要预约",
        "我想预约",
        "想预约",
        "预定",
        "约一下",
        "book",
        "booking",
        "book an appointment",
        "make an appointment",
        "make a booking",
        "i want to book",
        "i d like to book",
        "new booking",
        "appointment",
    ),
    Command.BACK: ("返回", "上一步", "后退", "back", "go back", "previous", "undo"),
    Command.MENU: ("菜单", "主菜单", "开始", "重新开始", "menu", "start", "restart", "main menu"),
    Command.GREET: (
        "你好",
        "您好",
        "哈喽",
        "嗨",
        "在吗",
        "在不在",
        "hi",
        "hello",
        "hey",
        "hi there",
        "good morning",
        "早上好",
        "下午好",
        "晚上好",
    ),
    Command.TO_ENGLISH: ("english", "英文", "英语", "in english", "说英文"),
    Command.TO_CHINESE: ("中文", "chinese", "汉语", "说中文", "in chinese"),
}
# ...or contain one of these.
_CONTAINS: dict[Command, tuple[str, ...]] = {
    # "算了，先不改了": the change being made is dropped (the booking stays as it is)
    Command.CANCEL_FLOW: (
        "先不改",
        "不改了",
        "不用改了",
        "还是不改",
        "先不换",
        "不换了",
        "先不约了",
        "暂时不约",
        "keep it as it is",
        "leave it as it is",
        "leave it as is",
        "keep it as is",
        "don t change it",
        "don t move it",
        "not moving it",
        "never mind the change",
    ),
    Command.TO_ENGLISH: (
        "continue in english",
        "speak english",
        "english please",
        "in english please",
        "switch to english",
        "can we use english",
        "do you speak english",
        "talk in english",
        "reply in english",
        "english pls",
        "用英文",
        "说英文",
        "讲英文",
        "in english",
        "英文回复",
        "英语回复",
        "用英语",
        "说英语",
    ),
    Command.TO_CHINESE: (
        "说中文",
        "用中文",
        "讲中文",
        "中文回复",
        "中文可以吗",
        "能说中文",
        "说汉语",
        "in chinese",
        "speak chinese",
        "chinese please",
        "switch to chinese",
        "continue in chinese",
    ),
    Command.LEAVE_WAITLIST: (
        "退出候补",
        "取消候补",
        "不用候补",
        "leave waitlist",
        "leave the waitlist",
        "off the waitlist",
        "remove me from the waitlist",
    ),
    Command.HUMAN: (
        "转人工",
        "人工",
        "真人",
        "客服",
        "找店员",
        "店员在吗",
        "联系店员",
        "找人",
        "human",
        "agent",
        "real person",
        "talk to a person",
        "talk to someone",
        "speak to someone",
        "speak to a person",
        "operator",
        "staff member",
        "manager",
        "找验光师",
        "验光师聊",
        "问验光师",
        "找美容师",
        "speak to an optometrist",
        "talk to an optometrist",
        "speak to the optometrist",
        "speak to a groomer",
        "经理",
        "店长",
        "投诉",
        "complain",
    ),
    Command.CANCEL_BOOKING: (
        "取消预约",
        "取消我的预约",
        "取消订单",
        "不去了",
        "取消明天",
        "取消今天",
        "cancel my",
        "cancel the appointment",
        "cancel appointment",
        "cancel booking",
        "cancel the booking",
        "cancel my booking",
        "please cancel",
        "cancel it",
        "want to cancel",
        "need to cancel",
        "have to cancel",
        "like to cancel",
        "cancel today",
        "cancel tomorrow",
        "要取消",
        "想取消",
        "帮我取消",
        "取消一下",
        "取消掉",
        "取消吧",
        "取消了吧",
    ),
    Command.RESCHEDULE: (
        "改期",
        "挪一下时间",
        "挪个时间",
        "挪下时间",
        "预约挪",
        "时间挪",
        "改个时间",
        "改一下时间",
        "改时间",
        "换时间",
        "换个时间",
        "改约",
        "改到",
        "调整时间",
        "推迟",
        "提前到",
        "reschedule",
        "change my booking",
        "change the time",
        "change my appointment",
        "move my",
        "another time",
        "move ",
        "postpone",
        "push back",
        "push ",
        "挪一天",
        "往后挪",
        "push it",
        "bring forward",
        "different day",
        "another day",
        "change the date",
        "change the day",
        "change it to",
        "换到",
        "换一天",
        "改一下时间",
        "往后挪",
        "挪到",
        "延期",
        "改成",
        "改为",
        "换成",
        "刚才约的改",
        "刚约的改",
        "改个时间",
        "换个日子",
        "改天",
    ),
    Command.MY_BOOKINGS: (
        "我的预约",
        "查预约",
        "查看预约",
        "预约记录",
        "约了什么",
        "my booking",
        "my appointment",
        "my bookings",
        "my appointments",
        "upcoming",
        *("appointments do i have", "bookings do i have", "what appointments", "what bookings"),
        "appointments coming up",
    ),
}
_ADD_WORDS = ("加个", "加一个", "加上", "再加", "添加", "加项", "顺便", "add ", "add-on", "also want", "plus ")

YES = (
    "是",
    "是的",
    "对",
    "对的",
    "好",
    "好的",
    "确认",
    "确定",
    "可以",
    "嗯",
    "行",
    "没问题",
    "打过",
    "打了",
    "有",
    "yes",
    "y",
    "yeah",
    "yep",
    "yup",
    "uh huh",
    "uh-huh",
    "mhm",
    "mm hmm",
    "mmhmm",
    "ok",
    "okay",
    "sure",
    "confirm",
    "correct",
    "right",
    "done",
)
NO = ("不", "不是", "否", "没有", "没打", "还没", "没", "不用", "no", "n", "nope", "not yet", "none")


_PEOPLE = (
    r"(?:person|human|someone|somebody|staff|optometrists?|groomers?|doctors?|manager|owner|receptionist|employee"
    r"|real one)"
)
_ASKS_FOR_A_PERSON = re.compile(
    rf"\b(?:talk|speak|chat)\s+(?:to|with)\s+(?:one\s+of\s+)?(?:a|an|the|your|some)?\s*(?:real\s+)?{_PEOPLE}\b"
    rf"|\bget\s+me\s+(?:a|an|the)?\s*(?:real\s+)?{_PEOPLE}\b"
    r"|\b(?:get|find)\s+(?:me\s+)?(?:someone|somebody|a person)(?:\s+from\s+the\s+(?:shop|store|team))?\b"
    r"|(?:找|叫|换|跟|和|同|联系)(?:个|一个|你们的?)?(?:真人|人来|店员|美容师|验光师|医生|老板|负责人|工作人员)"
)


def command_in(text: str) -> Command | None:
    norm = normalise(text)
    if not norm:
        return None
    for command, words in _EXACT.items():
        if norm in words:
            return command
    for command, words in _CONTAINS.items():
        if any(w in norm for w in words):
            return command
    if _ASKS_FOR_A_PERSON.search(norm):
        return Command.HUMAN  # "ugh just get me someone", "I'd like to talk to the optometrist about..."
    if norm.startswith("/start"):
        return Command.MENU
    if norm.startswith(("取消", "cancel ", "帮我取消")):
        return Command.CANCEL_BOOKING  # "取消周日那个" / "cancel the sunday one" (a bare "取消" ends the flow)
    if _CANCEL_EN.search(norm) and not _CANCEL_ASKS.search(norm):
        return Command.CANCEL_BOOKING  # "pls cancel rocky's saturday appt, he's sick"
    return None


_CANCEL_EN = re.compile(r"(?<!don t )(?<!not )(?<!no need to )(?<!never )\bcancel(?:l?ed)?\b")
# questions about cancelling (the FAQ's policy), not a request to cancel
_CANCEL_ASKS = re.compile(
    r"\bhow\b.*\bcancel|\bcancel\w*\b.*\b(?:free|fee|fees|charge|charged|policy|penalty|deposit|refund|notice)\b"
    r"|\bif\s+(?:i|we)\s+(?:need\s+to\s+|have\s+to\s+)?cancel|\bcancel\w*\s+(?:policy|fee)"
)


def yes_no(text: str) -> bool | None:
    norm = normalise(text)
    if norm in YES:
        return True
    if norm in NO:
        return False
    return None


@dataclass(frozen=True)
class ServiceMention:
    service_id: str | None = None  # a concrete service
    category: str | None = None  # or a category resolved later by the pet (dog bath -> size)
    # or a word two services share in the shop's aliases ("修剪", "a trim"): the customer picks
    among: tuple[str, ...] = ()


def _alias_hits(norm: str, aliases: list[str]) -> int:
    """Length of the longest alias found in the text (0 when none)."""
    return max((len(a) for a in _found_aliases(norm, aliases)), default=0)


def _found_aliases(norm: str, aliases: list[str]) -> set[str]:
    return {a for a in (normalise(alias) for alias in aliases) if a and a in norm}


def service_in(text: str, shop: ShopConfig) -> ServiceMention | None:
    """The service (or service category) a message names, longest match first.

    A word the shop lists under two services ("修剪" for grooming and nail trims, "trim") names
    neither: the mention holds both (``among``) and the customer is asked which, unless another
    word of the message names one of them alone ("修剪一下豆豆的指甲")."""
    norm = normalise(text)
    if not norm:
        return None
    found: list[tuple[ServiceMention, set[str]]] = []
    for category_id, category in shop.categories.items():
        hits = _found_aliases(norm, [*category.aliases, category.name.zh, category.name.en])
        if hits:
            found.append((ServiceMention(category=category_id), hits))
    for service_id, service in shop.services.items():
        hits = _found_aliases(norm, [*service.aliases, service.name.zh, service.name.en])
        if hits:
            found.append((ServiceMention(service_id=service_id), hits))
    if not found:
        return None
    longest = max(len(a) for _, hits in found for a in hits)
    best = [(m, hits) for m, hits in found if max(len(a) for a in hits) == longest]
    if len(best) == 1:
        return best[0][0]
    shared = {a for i, (_, hits) in enumerate(best) for a in hits if any(a in h for _, h in best[:i] + best[i + 1 :])}
    own = [m for m, hits in best if hits - shared]
    if own:
        return own[0]  # "a dog bath and a trim": the bath is named alone
    services = tuple(m.service_id for m, _ in best if m.service_id)
    if len(services) == len(best):
        return ServiceMention(among=services)
    return best[0][0]


def bath_for_species(text: str, shop: ShopConfig, species: str | None) -> ServiceMention | None:
    """Plain "洗澡" / "bath" with a species decides between dog and cat bath."""
    norm = normalise(text)
    if not any(w in norm for w in ("洗澡", "洗个澡", "洗洗", "bath", "wash", "shower")):
        return None
    if species == "cat":
        for service_id, service in shop.services.items():
            if service.species == ["cat"]:
                return ServiceMention(service_id=service_id)
    for category_id in shop.categories:
        members = [s for s in shop.services.values() if s.category == category_id]
        if members and all("dog" in s.species for s in members) and species in (None, "dog"):
            return ServiceMention(category=category_id)
    return None


def addon_in(text: str, shop: ShopConfig, allowed: list[str] | None = None) -> str | None:
    norm = normalise(text)
    best: tuple[int, str] | None = None
    for addon_id, addon in shop.addons.items():
        if allowed is not None and addon_id not in allowed:
            continue
        score = _alias_hits(norm, [*addon.aliases, addon.name.zh, addon.name.en])
        if score and (best is None or score > best[0]):
            best = (score, addon_id)
    return best[1] if best else None


def wants_addon(text: str, shop: ShopConfig) -> str | None:
    """ "加个驱虫" / "add deworming": an add-on named together with an adding word."""
    norm = normalise(text) + " "
    if not any(w in norm for w in _ADD_WORDS):
        return None
    return addon_in(text, shop)


def pet_in(text: str, pets: tuple[PetView, ...]) -> PetView | None:
    norm = normalise(text)
    for pet in sorted(pets, key=lambda p: len(p.name), reverse=True):
        name = normalise(pet.name)
        if name and name in norm:
            return pet
    return None


def when_in(text: str, today: date) -> When:
    return parse_when(text, today, prefer_afternoon_for_small_hours=True)


_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]{2,}")


def language_of(text: str) -> str | None:
    """zh for text with Chinese characters, en for Latin words, None when it cannot tell."""
    if _CJK.search(text):
        return "zh"
    if _LATIN.search(text):
        return "en"
    return None


_QUESTION_WORDS = (
    "吗",
    "么",
    "什么",
    "多少",
    "怎么",
    "几",
    "哪",
    "能不能",
    "可不可以",
    "是否",
    "多久",
    "多长",
    "要不要",
    "能否",
    "可否",
    "需不需要",
    "有没有",
    "是不是",
    "会不会",
    "呢",
)


def looks_like_question(text: str) -> bool:
    norm = text.strip()
    if not norm:
        return False
    if norm.endswith(("?", "？")):
        return True
    counted = _NOT_ASKING_JI.sub("", norm)  # "过几天想给豆豆剪个指甲": a few days, no question
    if any(
        w in counted
        for w in (
            *("吗", "什么", "多少", "多久", "多长时间", "怎么", "几", "哪"),
            *("能不能", "可不可以", "是否", "要不要", "有没有"),
        )
    ):
        return True
    if re.search(r"(?<![这那怎什多])么[。！!~～…]*$", norm):
        return True  # "能洗么" asks; "就这么定了" does not
    if len(norm) >= 3 and re.search(r"[\u4e00-\u9fff](?<![不算还都也并从就])(?:不|没|没有)[?？]?$", norm):
        return True  # "下周四你们开门不", "有空没"
    for sentence in re.split(r"[.!。！;；\n]+", norm):  # "sorry got distracted. where are you exactly"
        words = normalise(sentence).replace("'", " ").split()
        while words and words[0] in _LEAD_FILLERS:
            words = words[1:]  # "and where's the shop", "btw do you take cards"
        first = words[0] if words else ""
        if first in _QUESTION_STARTS or first in ("wheres", "whats", "hows", "whens", "whos"):
            return True
    return False


_NOT_ASKING_JI = re.compile(r"过几天|这几天|前几天|近几天|几天后|几天以后|好几|十几|几十|随便几点|几点都")
_LEAD_FILLERS = frozenset(
    "and also so oh ok okay btw hi hey hello um uh sorry but then plus quick question one more".split()  # noqa: SIM905
)
_QUESTION_STARTS = frozenset(
    "how what when where which who why can could do does did is are was were should will would may any".split()  # noqa: SIM905
)
