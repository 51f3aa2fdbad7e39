"""Understanding one message: every message becomes a typed ``Frame`` before any state sees it.

A frame holds the intents the message carries (book, reschedule, cancel, add a service, a
question, yes/no, a correction, a person, a language switch, greeting, thanks...) and the
slots it fills (service, add-ons, pet, species, breed/size, vaccination, whose exam, date,
time, part of day, booking code). The same parser serves every dialog state, in zh and en,
tolerant of typos against the shop's own vocabulary. It is deterministic and pure: the shop's
config, the customer's pets and the shop's ``today`` are passed in. A frame prints as a value,
so tests can assert on it.

Long messages (stories) are read sentence by sentence: slots are taken only from sentences
that ask for something (a booking verb, a date or a service together with a request word), so
"美容师很温柔" or "上周末" in a story about the last visit never become the booking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from enum import StrEnum
from functools import cache

from rapidfuzz import fuzz

from bot.engine.chinese_script import to_simplified
from bot.engine.intents import (
    Command,
    ServiceMention,
    addon_in,
    bath_for_species,
    command_in,
    language_of,
    looks_like_question,
    normalise,
    pet_in,
    service_in,
)
from core.config import ShopConfig
from core.customers import PetView
from core.pets import BREEDS, Size, breed_in, size_in, species_in
from core.when import _UNITS_EN_AFTER, When, parse_when

BREED_NAMES = tuple(b for b in BREEDS if not b.isascii())
LONG_MESSAGE = 160  # characters: longer messages are read sentence by sentence
SIZE_HINTS = ("小型", "中型", "大型", "小只", "大只", "small", "medium", "large", "big", "little", "tiny")


class Intent(StrEnum):
    BOOK = "book"
    AVAILABILITY = "availability"  # "周六有空位吗": a booking question with a day
    RESCHEDULE = "reschedule"
    CANCEL_BOOKING = "cancel_booking"
    ADD_ADDON = "add_addon"
    MY_BOOKINGS = "my_bookings"
    SAME_AGAIN = "same_again"
    ASK = "ask"
    AFFIRM = "affirm"
    DENY = "deny"
    CORRECTION = "correction"
    THANKS = "thanks"
    RESULTS = "results"
    CANT_COME = "cant_come"  # "I won't be able to make it on Saturday": reschedule or cancel?


# Typos customers make in the trade words, mapped to what they meant (homophones, near keys).
TYPOS: dict[str, str] = {
    "洗躁": "洗澡",
    "洗藻": "洗澡",
    "洗早": "洗澡",
    "喜澡": "洗澡",
    "西澡": "洗澡",
    "预越": "预约",
    "预药": "预约",
    "预定": "预约",
    "遇约": "预约",
    "美荣": "美容",
    "没容": "美容",
    "减指甲": "剪指甲",
    "剪指家": "剪指甲",
    "验关": "验光",
    "言光": "验光",
    "眼光检查": "验光检查",
    "隐型": "隐形",
    "隐行": "隐形",
    "引形": "隐形",
    "驱重": "驱虫",
    "batth": "bath",
    "bth": "bath",
    "baht": "bath",
    "groming": "grooming",
    "grroming": "grooming",
    "groomig": "grooming",
    "apointment": "appointment",
    "appt": "appointment",  # "rocky's saturday appt"
    "appoinment": "appointment",
    "appointmnet": "appointment",
    "resched": "reschedule",
    "reschdule": "reschedule",
    "rescedule": "reschedule",
    "tomorow": "tomorrow",
    "验广": "验光",
    "验灯": "验光",
    "取眼睛": "取眼镜",
    "拿眼睛": "拿眼镜",
    "配眼睛": "配眼镜",
    "eye tset": "eye test",
    "eye exma": "eye exam",
    "wendesday": "wednesday",
    "wednsday": "wednesday",
    "wedensday": "wednesday",
    "thursady": "thursday",
    "thrusday": "thursday",
    "saterday": "saturday",
    "satruday": "saturday",
    "saturady": "saturday",
    "sundy": "sunday",
    "tuseday": "tuesday",
    "firday": "friday",
    "fridy": "friday",
    "mondya": "monday",
    "groomin ": "grooming ",
    "nial": "nail",
    "bathe ": "bath ",
    "nail trimm": "nail trim",
    "exm": "exam",
    "eye test": "eye exam",
}

BOOK_WORDS = (
    "想来检查",
    "想来看看",
    "想过来",
    "来一趟",
    "come by",
    "想预约",
    "要预约",
    "我要预约",
    "帮我预约",
    "给我预约",
    "预约一个",
    "预约一下",
    "预约下",
    "约个",
    "约一下",
    "约一个",
    "约下",
    "想约",
    "我要约",
    "帮我约",
    "给我约",
    "再约",
    "约一次",
    "约在",
    "约到",
    "订个",
    "安排",
    "找个时间",
    "能约",
    "可以约",
    "约上",
    "约个时间",
    "带她来",
    "带他来",
    "带孩子来",
    "来做个",
    "过来做",
    "登记",
    "book",
    "appointment",
    "schedule",
    "reserve",
    "slot for",
    "come in",
    "bring him",
    "bring her",
    "bring my",
    "can i get",
    "i d like a",
    "i would like a",
    "i want a",
    "i need a",
    "needs a",
    "need a",
    "want to get",
    "get a",
)
AVAILABILITY_WORDS = (
    *("any spots", "any spot", "a spot", "spots on", "spots left", "have anything", "got anything", "anything on"),
    *("anything free", "anything open", "anything available", "fit me in", "fit us in", "fit him in", "fit her in"),
    *("squeeze", "any openings", "any appointments", "appointments left", "还有号", "有号吗", "约得上", "排得上"),
    "有空",
    "有位",
    "空位",
    "还有位置",
    "能约吗",
    "可以约吗",
    "可约",
    "availability",
    "available",
    "any slots",
    "any slot",
    "free slot",
    "openings",
    "any time",
    "free on",
    "have space",
    "any space",
    "space on",
    "any room",
    "room on",
    "哪天方便",
    "什么时候方便",
    "几号方便",
    "哪天可以",
    "when works",
    "when suits",
    "when are you free",
    "anything on",
    "anything free",
    "anything left",
    "anything available",
)
SAME_WORDS = (
    *("和去年一样", "跟去年一样", "同去年一样", "和上回一样", "跟上回一样", "same as last year"),
    "再约一次",
    "再来一次",
    "再预约一次",
    "book again",
    "same again",
    "老规矩",
    "老一套",
    "照常",
    "the usual",
    "my usual",
    "和上次一样",
    "跟上次一样",
    "同上次",
    "照旧",
    "老样子",
    "还是老样子",
    "还是一样",
    "和上回一样",
    "跟上回一样",
    "same as last time",
    "same as before",
    "same again",
    "the usual",
    "same thing as last time",
    "same as last",
)
CORRECTION_WORDS = (
    "不对",
    "不是",
    "错了",
    "改成",
    "换成",
    "改为",
    "我是说",
    "我的意思是",
    "应该是",
    "actually",
    "i meant",
    "i mean",
    "sorry i meant",
    "make it",
    "change it to",
    "instead",
    "not ",
    "rather",
)
THANKS_WORDS = ("谢谢", "多谢", "感谢", "thanks", "thank you", "thx", "ty", "cheers", "好的谢谢", "ok thanks")
BYE_WORDS = ("再见", "拜拜", "bye", "goodbye", "see you")
ADD_WORDS = ("加", "add", "plus", "also", "顺便", "再做", "另外", "extra", "as well", "too")
BOOKING_REFERENCE = ("预约", "booking", "appointment", "订单", "那次", "那个")
_NOT_SIZE = re.compile(
    r"(?:not|isn t|isn't|不是|并非)\s*(?:a\s+)?(?:small|medium|large|big|小型|中型|大型|小的|中的|大的)"
)
STATUS_WORDS = (
    "约上了吗",
    "约好了吗",
    "预约成功了吗",
    "预约确认了吗",
    "确认了吗",
    "预约好了吗",
    "是什么时候",
    "几点来着",
    "约好了没",
    "约上了没",
    "确认了没",
    "成功了没",
    "约好没",
    "好了没有",
    "定了没",
    "is it confirmed",
    "is my booking confirmed",
    "did my booking go through",
    "did it go through",
    "has it been confirmed",
    "is it booked",
    "when is my",
    "what time is my",
    *("still on", "what time is it", "what day is it", "when is it", "remind me when", "remind me what time"),
    *("appointments do i have", "bookings do i have", "what appointments", "anything coming up", "coming up"),
    "confirmed yet",
    "approved yet",
    "been approved",
    "still pending",
    "what bookings",
    "anything booked",
    "have i booked",
    "do i have a booking",
    "do i have an appointment",
    "我约了什么",
    "我有约吗",
    "which bookings",
    "any bookings",
    "what appointments",
    "any appointments",
    "批了吗",
    "审核了吗",
    "通过了吗",
    "我约了哪些",
    "我有哪些预约",
    "我有什么预约",
)
_MY_BOOKING = re.compile(
    r"\b(?:my|our|his|her|their)\s(?:\w+\s){0,2}(?:appointment|booking|visit)s?\b|我的(?:那个|这个|美容|洗澡)?预约|我(?:约|订)的"
    r"|\b(?!(?:what|that|it|there|here|let|who|where|how|he|she)\s)[a-z]+\ss\s(?:\w+\s){0,2}?(?:appointment|booking)s?\b"
)  # "what time is rocky's appointment again?": a booking on file ("rocky s" once normalised)
SAME_TIME_WORDS = ("same time", "同一时间", "一样的时间", "时间不变", "原来的时间", "同样的时间", "还是那个时间")
EARLIEST_WORDS = (
    "earliest",
    "first available",
    "first thing",
    "as early as possible",
    "soonest",
    *("next free", "next available", "next opening", "next slot", "first free", "最近哪天", "最近的空位", "最近有空位"),
    *("越快越好", "尽快", "最快什么时候", "最快哪天", "最快能约"),
    "最早",
    "越早越好",
    "尽早",
    "第一个",
    "一大早",
)
RESULTS_WORDS = ("验光结果", "我的结果", "检查结果", "my results", "exam results", "my prescription")
_RESULTS_NOT = re.compile(r"changed|change|worse|check.?up|变了|加深|不准")  # "I think my prescription changed"

# Whose exam: a child's or an adult's (the optician's child service is the one whose aliases
# carry one of these words).
CHILD_WORDS = (
    "儿子",
    "女儿",
    "孩子",
    "小孩",
    "小朋友",
    "闺女",
    "宝宝",
    "儿童",
    "小学",
    "初中",
    "娃",
    "年级",
    "幼儿园",
    "小学生",
    "my little",
    "little one",
    "child",
    "children",
    "kid",
    "kids",
    "my son",
    "my daughter",
    "my boy",
    "my girl",
    "kiddo",
    "toddler",
    "teenager",
)
ADULT_WORDS = (
    *("我自己", "给自己", "自己的", "本人", "成人", "大人", "老公", "老婆"),
    *("myself", "for me", "adult", "my wife", "my husband", "grown up", "grown-up"),
)
# "is Cotton's groom on sunday confirmed?": a question about a booking's status
_STATUS_Q = re.compile(r"^(?:is|was|has|did)\b[^?.!]{0,40}\b(?:confirmed|approved|booked|still on|gone through)\b")


def status_question(norm: str) -> bool:
    """Whether a normalised message asks about a booking's status or time ("约上了吗", "is it still on")."""
    return _has(norm, STATUS_WORDS) or _STATUS_Q.search(norm) is not None


_SUGGESTS = re.compile(r"\b(?:what|how)\s+about\b")  # "what about 2pm with her?": a time offered
_SUITS_ME = re.compile(r"\b(?:works|work|good|fine|ok|okay|best|better|great|easier|suits?|convenient)\s+for\s+me\b")
_NOT_ME = re.compile(r"not (?:for )?me\b|not myself|不是(?:给)?我(?:自己)?(?:的|约|验)?")
_NOT_THE_CHILD = re.compile(
    r"not (?:for )?(?:the|my|our) (?:kids?|son|daughter|children)|不是(?:给)?(?:孩子|小孩|儿子|女儿)"
)
_AGE = re.compile(r"(\d{1,2})\s*(?:岁|周岁|years?\s*old|yo\b|-year-old|year old)")
_AGE_IS = re.compile(
    r"\b(?:kid|kiddo|son|daughter|boy|girl|child|he|she)\s+(?:is|s|turned|just turned)\s+(\d{1,2})\b"
    r"(?!\s*(?:am|pm|:|点|o))"
)
_CN_AGE = re.compile(r"([一二三四五六七八九十]{1,3})岁")

# Vaccination answers (typed to the vaccination question or volunteered).
VACCINE_YES = (
    "打过",
    "打了",
    "已打",
    "已经打",
    "刚打",
    "刚打完",
    "打好了",
    "打完",
    "都打",
    "接种过",
    "已接种",
    "有打",
    "打齐",
    "疫苗齐",
    "疫苗都有",
    "有疫苗",
    "had his shots",
    "had her shots",
    "had its shots",
    "had their shots",
    "has had",
    "had shots",
    "had the shots",
    "vaccinated",
    "vaxxed",
    "vaxed",
    "jabbed",
    "shots done",
    "up to date",
    "all shots",
    "had all",
    "got his shots",
    "got her shots",
    "jabs",
    "boosters",
    "booster",
    "had them",
    "got them",
    "has them",
    "all done",
    "all of those",
    "all of them",
    "he has all",
    "she has all",
    "fully vaccinated",
    "shots are done",
    "vaccines are done",
    "疫苗都打了",
    "疫苗打了",
    "都打过",
    "打过疫苗",
    "有打疫苗",
    "打齐了",
)
VACCINE_NO = (
    "没打",
    "还没打",
    "未打",
    "没有打",
    "没接种",
    "未接种",
    "还没有",
    "没疫苗",
    "没有疫苗",
    "不清楚",
    "not vaccinated",
    "not yet",
    "hasn t",
    "hasnt",
    "haven t",
    "no shots",
    "unvaccinated",
    "not had",
    "isn t vaccinated",
    "never had",
    "overdue",
    "expired",
    "years ago",
    "year ago",
    "过期",
    "两年前",
    "好几年",
)

_YES_START = (
    "是",
    "对",
    "好",
    "嗯",
    "行",
    "可以",
    "确认",
    "确定",
    "没问题",
    "没错",
    "当然",
    "就这",
    "就这样",
    "加吧",
    "继续",
    "接着",
    "continue",
    "resume",
    "加上",
    "加一个",
    "要的",
    "需要",
    "行吧",
    "好滴",
    "add it",
    "ok",
    "okay",
    "yes",
    "yeah",
    "yep",
    "yup",
    "sure",
    "confirm",
    "correct",
    "right",
    "of course",
    "definitely",
    "sounds good",
    "lock it in",
    "book it in",
    "go for it",
    "that s fine",
    "she says that s fine",
    "he says that s fine",
    "that s fine",
    "that works",
    "works for me",
    "looks good",
    "sounds great",
    "go for it",
    "all good",
    "lovely",
    "brilliant",
    "cool",
    "perfect",
    "great",
    "fine",
    "go ahead",
    "please do",
    "do it",
    "absolutely",
    "y",
    *("uh huh", "uh-huh", "mhm", "mm hmm", "mmhmm"),
)
_NO_START = (
    "不加",
    "不要",
    "不需要",
    "不",
    "否",
    "没",
    "别",
    "算了",
    "no",
    "nope",
    "nah",
    "not",
    "don t",
    "dont",
    "never mind",
    "n",
)
NOT_GOOD = ("不太行", "不行", "不合适", "不方便", "doesn t work", "not good", "no good", "won t work")
KEEP_WORDS = (
    "never mind",
    "nevermind",
    "no thanks",
    "no thank you",
    "leave it",
    "keep it",
    "as it is",
    "don t change",
    "算了",
    "不用了",
    "不要了",
    "不改了",
    "不用改",
    "保持不变",
    "还是原来",
    "先不",
)
NEGATIONS = (
    "不是",
    "不行",
    "不可以",
    "没空",
    "不方便",
    "不太行",
    "去不了",
    "can t",
    "cannot",
    "doesn t",
    "won t",
    "not",
)
_CORRECTED_HOUR = re.compile(
    r"(?<!she s )(?<!he s )(?<!she is )(?<!he is )(?<!she's )(?<!he's )(?<!aged )(?<!turned )(?<!age )"
    rf"(?<![0-9:.])([0-9]{{1,2}})(?![0-9:.])(?!\s*(?:{_UNITS_EN_AFTER}|pets?|kids?|children|sons?|daughters?)\b)"
    r"(?!\s*(?:岁|周岁|个月|斤|公斤|kg|号|日|月|天|只|个|年|次|度|块|元))"
)
CORRECTION_CUES = (
    "说错了",
    "搞错了",
    "哦不",
    "不对",
    "不是",
    "我是说",
    "应该是",
    "sorry",
    "i mean",
    "i meant",
    "no wait",
    "actually",
    "make that",
    "make it",
    "change it to",
    "改成",
    "换成",
)
_PAST = re.compile(
    r"\b(?:had|was|were|came|went|did|got|loved|last time|last visit|came in)\b|上次|上回|之前|以前|去过|来过|做过"
)
# "bring Max in", "pop over": coming to the shop
_BRING_IN = re.compile(r"\b(?:bring|take|pop)\s+(?:[a-z]+\s+){0,2}(?:in|over|by)\b(?!\s+(?:the|a)\b)")
_SWAP = re.compile(r"换成|改成|换个|instead of|swap|replace")
_MANUAL_METHOD = re.compile(
    r"人工(?:验光|检查|测|配|洗|美容|修|剪|晶体|泪)"
    r"|(?:by hand|manual|machine)\b.*\bor\b|\bor\b.*(?:by hand|manual|machine)"
)
_NOT_COMMAND = re.compile(
    r"(?:不是|不要|不想|not|don t want to|i don t want to)\s*(?:改期|改时间|取消|reschedule|cancel)"
)
_FILLER = re.compile(
    r"^(?:(?:hmm+|um+|uh+(?! huh)|erm|well|oh|ah|actually|sorry|got it|understood|i see|呃|额|唔|哦|emm+|其实"
    r"|明白了|明白|懂了|知道了|了解了|了解|收到)\s*)+"
)
_SENTENCE = re.compile(r"[^。！？!?\n；;]+[。！？!?\n；;]?")
_PERSON_AFTER = ("师", "店", "员", "院", "老师", "er ", "ist")
_NAME_STOP = {
    "我",
    "我家",
    "我们",
    "你",
    "他",
    "她",
    "它",
    "他们",
    "宝贝",
    "孩子",
    "一下",
    "一个",
    "个",
    "下",
    "明天",
    "今天",
    "周末",
}
_CN_SPECIES_WORD = r"(?:狗狗|狗子|小狗|猫咪|小猫|猫猫|狗|猫)"
_CN_PET_SUFFIX = (
    r"(?:想|洗个?澡|洗洗|洗一下|美容|剪毛|修剪|剪指甲|修指甲|做|约|预约|驱虫|需要|要"
    r"|(?=周[一二三四五六日天末]|星期|礼拜|明天|后天|今天|下周|这周|本周|[0-9]{1,2}\s?[月号日点:]|[，,。！!？? ]))"
)  # "我家泰迪豆豆周六下午三点洗个澡": the name ends where the day begins
_CN_MY_PET = re.compile(
    rf"我家(?:的)?{_CN_SPECIES_WORD}?(?P<name>[\u4e00-\u9fffA-Za-z]{{1,9}}?){_CN_PET_SUFFIX}"
)
_CN_FOR_PET = re.compile(
    rf"(?:给|帮|替|带)(?:我家的?|我的)?{_CN_SPECIES_WORD}?(?P<name>[\u4e00-\u9fffA-Za-z]{{1,9}}?){_CN_PET_SUFFIX}"
)
_CN_NAMED = re.compile(r"(?:叫|名字是|名叫|叫做)(?P<name>[\u4e00-\u9fffA-Za-z]{1,8})")
# "不好意思打错字了，是芒果" / "sorry, typo - it's Mango": the name as it should have been
_CN_RENAMED = re.compile(
    r"(?:打错|写错|拼错|打成|错别字)[^，,。]{0,6}[，,。\s]*(?:应该是|是|叫)(?P<name>[\u4e00-\u9fffA-Za-z]{1,8})"
)
_EN_RENAMED = re.compile(
    r"(?i:typo|misspel+ed|spelled it wrong|wrong spelling)[^.!?]{0,20}?"
    r"\b(?i:it s|it's|its|it is|should be|name is|i meant)\s+"
    r"(?P<name>[A-Za-z][a-z\-]{1,15})"
)
# "给我家狗Lucky，明天下午两点": a name right after "我家狗", ended by punctuation
_CN_MY_PET_END = re.compile(
    rf"(?:我家|我的)(?:的)?{_CN_SPECIES_WORD}(?P<name>[A-Za-z][A-Za-z\-]{{1,14}}|[\u4e00-\u9fff]{{2,4}})(?=[，,。！!？?\s]|$)"
)
_EN_NAMED = re.compile(
    r"(?:(?:his|her|its|their|the dog s|the cat s) name is|(?:he|she|it) is called|(?:he|she|it)s called|"
    r"called|named|name s)\s+(?P<name>[a-z][a-z\-]{1,15})"
)
_EN_KINDS = "|".join(
    sorted(
        {re.escape(w) for w in BREEDS if w.isascii()}
        | {"dog", "cat", "kitty", "puppy", "kitten", "pup", "boy", "girl", "retriever", "terrier", "shepherd", "lab"},
        key=len,
        reverse=True,
    )
)  # "my shih tzu Mochi", "my golden retriever Max": every English breed the shop knows
_EN_PET_NAME = re.compile(
    rf"(?:\bfor|\b[Mm]y\s+(?:[a-z]+\s+){{0,3}}?(?i:{_EN_KINDS})|\bbring|"
    r"\bbringing|\bget|\bwash|\bbathe|\bgroom)\s+(?P<name>[A-Z][a-z\-]{1,15})\b"
    r"|\b(?P<name2>[A-Z][a-z\-]{1,15})\s+(?:needs|wants|is due|would like|could use)\b"
)
_EN_NOT_NAMES = {
    "A",
    "An",
    "The",
    "My",
    "Me",
    "Him",
    "Her",
    "It",
    "Them",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Sat",
    "Sun",
    "Mon",
    "Tue",
    "Wed",
    "Thu",
    "Fri",
    "Tomorrow",
    "Today",
    "Next",
    "This",
    "Dog",
    "Cat",
    "Bath",
    "Grooming",
    "Nail",
    "Nails",
    "Dec",
    "Nov",
    "December",
    "November",
    "Jan",
    "January",
    "Christmas",
    "Mr",
    "Mrs",
    "Ms",
    "Dr",
    "I",
    "You",
    "We",
    "Us",
    "One",
    "Some",
    "Both",
    "Noon",
    "Morning",
    "Afternoon",
    "Evening",
    "English",
    "Chinese",
    "Please",
}


@dataclass(frozen=True)
class Frame:
    """What one message says, whatever state the conversation is in."""

    text: str
    norm: str
    lang: str | None = None  # the language the message is written in, when it is clear
    command: Command | None = None
    intents: frozenset[Intent] = frozenset()
    service: ServiceMention | None = None
    addons: tuple[str, ...] = ()
    pet: PetView | None = None  # a pet on file the message names
    pets: tuple[PetView, ...] = ()  # two or more pets on file the request is for ("max and bella")
    party: tuple[bool, ...] = ()  # optician: two or more people, each True for a child ("me and my son")
    new_pet_name: str | None = None  # a name that is not on file yet ("给我家球球洗澡")
    species: str | None = None
    breed: str | None = None
    size: str | None = None
    vaccinated: bool | None = None
    vaccinated_on: date | None = None
    child: bool | None = None
    age: int | None = None
    when: When = field(default_factory=When)
    booking_code: str | None = None
    answer: bool | None = None  # a plain yes / no
    long: bool = False
    focus: str = ""  # the part that asks for something (a story's asking sentences)
    same_time: bool = False  # "same time" / "时间不变": keep the time already chosen
    earliest: bool = False  # "earliest you have" / "越早越好": the first free time
    bath: bool = False  # "洗澡" / "a bath" for a pet whose species is not known yet
    staff_id: str | None = None  # "找陈医师" / "with Dr. Wang"
    removed_addons: tuple[str, ...] = ()  # "刷牙还是不要了" / "without the conditioner"
    wh_question: bool = False  # asks what/how much/when (not a yes/no question such as "周日可以吗")
    shift_minutes: int | None = None  # "an hour later" / "早半小时"
    new_pet: bool = False  # "our new dog" / "另一只猫": not the pet on file
    request_form: bool = False  # "can I ...", "能不能...": a request phrased as a question
    price_question: bool = False  # "多少钱" / "how much will it be": asks what something costs
    hesitant: bool = False  # "我再想想" / "let me think": not a yes, not a no
    symptom: bool = False  # "眼睛疼，还有点红" / "his skin is itchy": a health worry, not a booking
    complaint: bool = False  # "your groomer cut my dog's ear, not happy": staff take it, with an apology
    relative: str | None = None  # "anything earlier?" / "有没有晚一点的": "earlier" or "later" than offered
    time_options: tuple[time, ...] = ()  # "11 or 2, the earlier one if it's free": in the order to try
    after: time | None = None  # "anytime after 4" / "4点以后都行": any free time from then on
    booking_question: bool = False  # "can i just walk in or do i need to book?": asks about booking
    names_pet: bool = False  # "her name is Mumu", "它叫球球": says what a pet is called

    @property
    def has_day_or_reference(self) -> bool:
        """Whether the message points at one booking (a day, a service, a pet, a code)."""
        return bool(self.when.date or self.service or self.pet or self.booking_code or Intent.CANT_COME in self.intents)

    @property
    def service_named(self) -> bool:
        return self.service is not None or self.bath

    @property
    def question(self) -> bool:
        return Intent.ASK in self.intents

    def has(self, intent: Intent) -> bool:
        return intent in self.intents

    @property
    def day(self) -> date | None:
        return self.when.date

    @property
    def fills_booking(self) -> bool:
        """Whether the message gives any booking fact."""
        return bool(
            self.service
            or self.bath
            or self.staff_id
            or self.earliest
            or self.after is not None
            or self.relative is not None
            or bool(self.time_options)
            or self.pet
            or self.new_pet_name
            or self.species
            or self.size
            or self.vaccinated is not None
            or self.when.found
            or self.addons
            or self.child is not None
        )


_SPLIT_BATH = re.compile(r"洗(?:一次|一下|一个|个|次|了个|个香香)澡")  # "洗一次澡" is "洗澡"


def fix_typos(text: str) -> str:
    lowered = text.lower() if text.isascii() else text
    for wrong, right in TYPOS.items():
        if wrong in lowered:
            lowered = lowered.replace(wrong, right)
    return lowered


@dataclass(frozen=True, slots=True)
class _Reading:
    """One message read once: the text as typed (simplified script), with typos and aliases
    fixed, normalised, and the part of it that asks for something (a story's asking sentences)."""

    raw: str
    fixed: str
    norm: str
    focus: str
    focus_norm: str
    long: bool


def _read(text: str, shop: ShopConfig, today: date) -> _Reading:
    raw = to_simplified(text.strip())  # "想幫我家狗狗預約洗澡" reads as "想帮我家狗狗预约洗澡"
    fixed = _half_past(_joined_aliases(_SPLIT_BATH.sub("洗澡", fix_typos(raw)), shop))
    long = len(raw) > LONG_MESSAGE
    focus = _asking_part(fixed, today) if long else _present_part(fixed, today)
    return _Reading(raw, fixed, normalise(fixed), focus, normalise(focus), long)


def understand(
    text: str,
    shop: ShopConfig,
    pets: tuple[PetView, ...],
    today: date,
    *,
    lang: str = "zh",
    now: time | None = None,
) -> Frame:
    """The frame of one typed message (buttons are payloads and never reach here)."""
    r = _read(text, shop, today)
    raw, fixed, norm, focus, focus_norm, long = r.raw, r.fixed, r.norm, r.focus, r.focus_norm, r.long
    needs = _needs(r, shop)
    intents = _intents(r, needs)
    command = _command_of(r, shop, today, lang)
    intents |= _COMMAND_INTENTS.get(command, frozenset()) if command is not None else frozenset()
    if command == Command.GREET and intents & {Intent.BOOK, Intent.AVAILABILITY, Intent.SAME_AGAIN}:
        command = None  # "hi! same as last time for milo pls": the greeting opens a request
    answer = yes_no_answer(fixed)
    if answer is not None:
        intents.add(Intent.AFFIRM if answer else Intent.DENY)
    when = _when(focus, today, lang)
    if when.found and _has(focus_norm, ("free", "空", "有位", "open slot", "slots")):
        intents.add(Intent.AVAILABILITY)  # "Is Tuesday afternoon free?"
    when = _request_when(r, when, today, lang, now)
    pet, species, service, together = _subject(r, shop, pets)
    bath = service is None and shop.kind == "pet" and (_has(normalise(focus), BATH_WORDS) or needs[0])
    addons = _addons(_not_past_clauses(focus, today), shop)  # "上个月刚做过驱虫，这次就洗个澡": no deworming
    intents |= _booking_intents(norm, addons)
    about = _pet_facts(r, shop, pets, pet, species)
    vaccinated, vaccinated_on = _vaccination(_about_vaccines(fixed) if long else fixed, today)
    if Intent.ASK in intents and vaccinated is not None and not _has(norm, VACCINE_YES + VACCINE_NO):
        vaccinated = vaccinated_on = None  # "疫苗要打哪些？" asks, it does not answer
    child, age = _whose_exam(focus if long else fixed)  # a story's grandmother is not the patient
    after = None if long else _after_time(focus)
    if after is not None and when.time == after:  # "after 4pm" is not four o'clock
        when = When(date=when.date, period=when.period, span=when.span, spans=when.spans, past=when.past)
    options = () if long else _time_options(fixed)  # "11 or 2, the earlier one if it's free"
    return Frame(
        text=raw,
        norm=norm,
        lang=language_written(raw),
        command=command,
        intents=frozenset(intents),
        service=service,
        addons=addons,
        pet=about.pet,
        pets=together if about.pet is not None else (),
        party=people_together(focus) if shop.kind == "optician" else (),
        new_pet_name=about.new_name,
        species=about.species,
        breed=about.breed,
        size=about.size,
        vaccinated=vaccinated,
        vaccinated_on=vaccinated_on,
        child=child,
        age=age,
        when=when,
        booking_code=_booking_code(raw),
        answer=answer,
        long=long,
        focus=focus,
        same_time=_has(norm, SAME_TIME_WORDS),
        earliest=_has(norm, EARLIEST_WORDS) or (_has(norm, ANY_HOUR_WORDS) and after is None),
        bath=bath,
        staff_id=_staff(fixed, shop),
        removed_addons=_removed_addons(fixed, shop, addons),
        shift_minutes=_shift_minutes(fixed),
        new_pet=_has(norm, NEW_PET_WORDS),
        request_form=_has(norm, REQUEST_FORMS) and not _has(focus_norm, ASKING_FIRST),
        # a story's "好几道" asks nothing; "what about 2pm?" offers a time
        wh_question=Intent.ASK in intents and _has(focus_norm, WH_WORDS) and not _SUGGESTS.search(focus_norm),
        price_question=_has(focus_norm, PRICE_WORDS),
        hesitant=hesitates(raw),
        symptom=_has(normalise(focus), SYMPTOM_WORDS),
        complaint=_has(norm, COMPLAINT_WORDS) and not _COMPLAINT_NOT.search(fixed.lower()),
        relative=None if long or options else relative_time(fixed),  # "the earlier one" of two times named
        time_options=options,
        after=after,
        booking_question=_ASKS_IF_BOOKING_NEEDED.search(focus_norm) is not None,
        names_pet=_NAMING.search(raw.lower()) is not None,
    )


def _needs(r: _Reading, shop: ShopConfig) -> tuple[bool, bool]:
    """A bath, a groom said as a need ("he stinks", "毛太长了"), not denied ("doesn't need a bath");
    at the optician an exam ("she needs her eyes checked")."""
    if _NEED_NOT.search(r.focus.lower()):
        return False, False
    if shop.kind != "pet":
        return _has(r.focus_norm, NEED_EXAM_WORDS), False
    return _has(r.focus_norm, NEED_BATH_WORDS), _has(r.focus_norm, NEED_GROOM_WORDS)


def _intents(r: _Reading, needs: tuple[bool, bool]) -> set[Intent]:
    """What the message's words ask for, before commands, yes/no, days and add-ons."""
    intents: set[Intent] = set()
    if looks_like_question(r.raw) and not _only_time_question(r.raw) and not _has(normalise(r.raw), ANY_TIME_WORDS):
        intents.add(Intent.ASK)  # "随便哪个时间，最早的就行" answers, it does not ask
    wants = _has(_MY_BOOKING.sub(" ", r.focus_norm), BOOK_WORDS) or _BRING_IN.search(r.focus_norm) is not None
    if wants and not _ASKS_IF_BOOKING_NEEDED.search(r.focus_norm):
        intents.add(Intent.BOOK)
    if _has(r.focus_norm, AVAILABILITY_WORDS):
        intents.add(Intent.AVAILABILITY)
    if any(needs) and not _has(r.focus_norm, PRICE_WORDS):
        intents.add(Intent.BOOK)  # a need said, not asked about: the booking for it begins
    if _has(r.norm, SAME_WORDS):
        intents.add(Intent.SAME_AGAIN)
    if _has(r.norm, THANKS_WORDS) or _has(r.norm, BYE_WORDS):
        intents.add(Intent.THANKS)
    results = _has(r.focus_norm, RESULTS_WORDS) and not _RESULTS_NOT.search(r.focus_norm)
    if results and not _PAST.search(r.focus.lower()):
        intents.add(Intent.RESULTS)
    if _correction(r.norm):
        intents.add(Intent.CORRECTION)
    if _MY_BOOKING.search(r.norm) or status_question(r.norm):
        intents.add(Intent.MY_BOOKINGS)
    if _has(r.norm, CANT_COME_WORDS):
        intents.add(Intent.CANT_COME)
    return intents


_COMMAND_INTENTS = {
    Command.RESCHEDULE: frozenset({Intent.RESCHEDULE}),
    Command.CANCEL_BOOKING: frozenset({Intent.CANCEL_BOOKING}),
    Command.MY_BOOKINGS: frozenset({Intent.MY_BOOKINGS}),
}


def _command_of(r: _Reading, shop: ShopConfig, today: date, lang: str) -> Command | None:
    """The command the asking part gives, unless its words are denied or mean something else."""
    focus, lowered = r.focus, r.focus.lower()
    command = command_in(focus)
    if command is not None and _NOT_COMMAND.search(lowered):
        return None  # "哦不是改期，我是想再约个剪指甲": the command word is denied
    if command == Command.RESCHEDULE and _SWAP.search(focus) and addon_in(focus, shop) is not None:
        return None  # "驱虫不要了，换成护毛素": an add-on is swapped, the booking is not moved
    if command == Command.HUMAN and _MANUAL_METHOD.search(lowered):
        return None  # "你们是人工验光还是电脑验光？": how the exam is done, not "a person please"
    if command is None and _MOVE_TO.search(lowered) and _parse(focus, today, lang == "en").found:
        return Command.RESCHEDULE  # "can oreo's bath go to next saturday instead?"
    return command


_HOUR_AFTER_DAY = re.compile(
    r"\s+(?P<h>[1-9]|1[0-2])(?=\s*$|\s*[,.!?，。！？]|\s+(?:please|pls|ok|if|for|with|then)\b)"
)


def _hour_after_day(text: str, when: When) -> When:
    """"Rocky bath Sunday 2": a bare hour right after the day is the time (1-7 read as afternoon)."""
    if when.date is None or when.time is not None or when.period is not None or not when.spans:
        return when
    end = max(e for _, e in when.spans)
    m = _HOUR_AFTER_DAY.match(text, end)
    if m is None:
        return when
    hour = int(m.group("h"))
    if hour == when.date.day:
        return when  # "sat 12" when Saturday is the 12th: the date said twice
    hour = hour + 12 if hour <= 7 else hour
    return When(date=when.date, time=time(hour, 0), spans=(*when.spans, (m.start("h"), m.end("h"))))


def _request_when(r: _Reading, when: When, today: date, lang: str, now: time | None) -> When:
    """The day and time the request is about: a bare hour, "now", and not an event's day."""
    if not when.found:
        when = _bare_hour(r.focus) or when
    if lang == "en" or r.focus.isascii():
        when = _hour_after_day(r.focus, when)
    if not when.found and now is not None and _has(r.focus_norm, NOW_WORDS):
        return When(date=today, time=now.replace(second=0, microsecond=0), spans=((0, 1),))  # "现在马上能洗吗"
    if when.found and _event_date(r.focus, when):
        event = when
        when = _when(_without_events(r.focus), today, lang)  # only the days and times the request is about
        if not when.found and event.date is not None and _has(r.focus_norm, AFTER_THAT_WORDS):
            # "my son finishes school at 4 on Thursday, can we come after that?": that day, a time after it
            when = When(date=event.date, period=event.period, spans=event.spans)
    return when


# "Pumpkin is my cat, not a dog": the species denied is not the pet's
_NOT_SPECIES = re.compile(
    r"\bnot\s+(?:a\s+|an\s+|the\s+)?(?:dog|cat|puppy|kitten|pup)s?\b|不是(?:小)?(?:狗|猫)(?:狗|咪)?"
)


def _subject(
    r: _Reading, shop: ShopConfig, pets: tuple[PetView, ...]
) -> tuple[PetView | None, str | None, ServiceMention | None, tuple[PetView, ...]]:
    """The pet on file, the species and the service named, and the pets one request is for ("max
    and bella"); after a correction cue, what follows wins ("给旺财……不对，给咪咪约个洗澡")."""
    corrected = _corrected_part(r.focus)
    pet = (_pet(corrected, pets) if corrected else None) or _pet(r.focus, pets) or _pet(r.fixed, pets)
    together = () if corrected else pets_together(r.focus, pets)
    if together:
        pet = together[0]  # "baths for max and bella": the first named is booked first
    species = species_in(corrected or "") or species_in(_NOT_SPECIES.sub(" ", r.focus.lower())) or None
    kind = species or (pet.species if pet else None)
    service = _service(corrected, shop, kind) if corrected else None
    service = service or _service(r.focus, shop, kind)
    if service is None and not r.long:
        service = _service(r.fixed, shop, kind)
    return pet, species, service, together


def _booking_intents(norm: str, addons: tuple[str, ...]) -> set[Intent]:
    adds_extra = _has(norm, ("add something", "add anything", "add an extra", "加点什么", "加个项目", "加项目"))
    if _has(norm, ADD_WORDS) and (addons or _has(norm, BOOKING_REFERENCE) or adds_extra):
        return {Intent.ADD_ADDON}  # "can I add something to Biscuit's bath?"
    return set()


@dataclass(frozen=True, slots=True)
class _PetFacts:
    pet: PetView | None
    new_name: str | None
    species: str | None
    breed: str | None
    size: str | None


def _pet_facts(
    r: _Reading, shop: ShopConfig, pets: tuple[PetView, ...], pet: PetView | None, species: str | None
) -> _PetFacts:
    """Which pet, or the new pet's name, breed and size the message gives."""
    breed = breed_in(r.focus)
    explicit_size = _has(normalise(r.focus), SIZE_HINTS)
    sized = _NOT_SIZE.sub(" ", r.focus.lower())  # "she's actually medium not small": medium
    size = _size_from_weight(r.focus) or (size_in(sized) if (explicit_size or (breed and pet is None)) else None)
    if pet is not None:
        breed = None  # a breed in the message is someone else's ("我朋友家的金毛"), not the pet on file
    renamed = _renamed(r.raw) if shop.kind == "pet" else None
    meant = _pet(renamed[0], pets) if renamed is not None else None
    if meant is not None:
        pet = meant  # "是球球不是豆豆" with both on file: 球球
    elif renamed is not None and pet is not None and pet.name.lower() == renamed[1].lower():
        pet = None  # "her name is Mumu not Momo": Momo is the name being corrected, not the pet meant
    new_name = None if pet else (_new_pet_name(r.focus, shop) if r.long else None) or _new_pet_name(r.raw, shop)
    if renamed is not None and pet is None:
        new_name = renamed[0]
    if r.long and new_name and pet is None:  # "我家豆豆是一只四岁的泰迪": the story's facts about that pet
        about = _story_about(r.fixed, new_name)
        breed = breed or breed_in(about)  # the first clause that says what the pet is
        species = species or species_in(about) or None
        size = size or (size_in(about) if breed else None)
    return _PetFacts(pet, new_name, species, breed, size)


def _story_about(text: str, name: str) -> str:
    """The clause of a story that says what the pet called ``name`` is."""
    return next((c for c in _clauses(text) if name in c and (breed_in(c) or species_in(c))), "") or next(
        (c for c in _sentences(text) if name.lower() in c.lower() and breed_in(c)), ""
    )  # "We adopted Pickles, a little Maltese, about a year ago."


# ----------------------------------------------------------------------------- pieces


def _phrase_branch(phrase: str) -> str:
    """A phrase as whole words ("needs a" is not in "needs all"; "get a" is in "get an"); a last
    word of four letters or more may be a stem ("bring him" in "bring himself" is rare enough)."""
    last = phrase.rsplit(" ", 1)[-1]
    tail = "n?" if last == "a" else ("[a-z]*" if len(last) > 3 else "")
    return re.escape(phrase) + tail


@dataclass(frozen=True, slots=True)
class _WordList:
    """A word list normalised and compiled once into one pattern: Chinese words and longer English
    stems match as substrings, short English words only whole, English phrases as _phrase_branch
    says."""

    pattern: re.Pattern[str] | None


_PREPARED: dict[int, tuple[tuple[str, ...], _WordList]] = {}  # by the tuple's id: hashing it costs more


def _alternation(branches: list[str], template: str = "{}") -> str | None:
    if not branches:
        return None
    return template.format("|".join(sorted(set(branches), key=len, reverse=True)))


def _prepared(words: tuple[str, ...]) -> _WordList:
    held = _PREPARED.get(id(words))
    if held is not None and held[0] is words:
        return held[1]
    substrings: list[str] = []
    whole: list[str] = []
    phrases: list[str] = []
    for word in words:
        w = normalise(word)
        if not w:
            continue
        if not w.isascii() or (len(w) > 4 and " " not in w):
            substrings.append(re.escape(w))
        elif len(w) <= 4:
            whole.append(re.escape(w))
        else:
            phrases.append(_phrase_branch(w))
    parts = [
        part
        for part in (
            _alternation(substrings, "(?:{})"),
            _alternation(whole, "(?<= )(?:{})(?= )"),
            _alternation(phrases, "(?<![a-z])(?:{})(?![a-z])"),
        )
        if part is not None
    ]
    found = _WordList(re.compile("|".join(parts)) if parts else None)
    if len(_PREPARED) < 4096:  # word lists are module constants; a message-built tuple is rare
        _PREPARED[id(words)] = (words, found)
    return found


def _has(norm: str, words: tuple[str, ...]) -> bool:
    """Whether the normalised message holds one of the words: a stem matches longer words ("groom"
    in "grooming"); a phrase only whole ("needs a" is not in "needs all")."""
    pattern = _prepared(words).pattern
    return pattern is not None and pattern.search(f" {norm} ") is not None


_EN_WORDS = frozenset(
    """i im i'm me my we our you your he she it his her its they them the a an to for of in on at with and or
    is are was be been am do does did can could would will should may might have has had want wants like need
    needs please pls thanks thank hi hello hey yes yeah no not ok okay sure book booking appointment bath wash
    groom grooming nail nails trim dog cat puppy kitten exam eye eyes test glasses contacts lenses pick up how
    what when where which who why there here this that these those today tomorrow morning afternoon evening
    night week weekend next saturday sunday monday tuesday wednesday thursday friday time slot free available
    price cost much many long open close hours address park parking card pay sorry continue english chinese
    speak talk person human staff cancel reschedule change move add same last again just also too very so
    any some one two get make come go see let know think sounds good great fine about after before""".split()  # noqa: SIM905
)


def language_written(text: str) -> str | None:
    """zh for text with Chinese characters, en for Latin text with English words in it (also when
    it quotes a Chinese service name: "I want to book 儿童验光 for my son")."""
    lang = language_of(text)
    if lang == "zh":
        cjk = len(re.findall(r"[\u3400-\u9fff]", text))
        latin = [w.lower() for w in re.findall(r"[A-Za-z']+", text)]
        if cjk <= 6 and sum(1 for w in latin if w in _EN_WORDS) >= 4:
            return "en"
        return "zh"
    if lang != "en":
        return lang
    words = [w.lower() for w in re.findall(r"[A-Za-z']{1,}", text)]
    known = sum(1 for w in words if w in _EN_WORDS)
    if known >= 2:
        return "en"
    return None  # "OK" / "yes" alone do not say which language the customer prefers


_EARLIER = re.compile(
    r"(?:anything|something|any|a\s+bit|a\s+little|little|slightly|bit|even|much)\s+(?:earlier|sooner)"
    r"|\b(?:earlier|sooner)\s+(?:one|time|slot|option)s?\b|^(?:earlier|sooner)\s*(?:please|pls)?\s*\??$"
    r"|早一点|早点|更早|再早|早些|提前一点|提前点"
)
_LATER = re.compile(
    r"(?:anything|something|any|a\s+bit|a\s+little|little|slightly|bit|even|much)\s+later(?!\s+(?:date|day|week|month))"
    r"|\blater\s+(?:one|time|slot|option)s?\b|^later\s*(?:please|pls)?\s*\??$|later\s+in\s+the\s+day"
    r"|晚一点|晚点|更晚|再晚|晚些|往后一点|往后点"
)
_RELATIVE_NOT = re.compile(r"再说|再约|再联系|再来|回复|联系|告诉|call|get back|book later|text you|let you know")


_CLOCK = r"[0-9]{1,2}(?:[:.][0-9]{2})?\s*(?:am|pm|a\.m\.|p\.m\.|点半|点)?"
_TIME_OR = re.compile(
    rf"(?<![0-9:/.])(?P<a>{_CLOCK})\s*(?:or|或者|或|还是)\s*(?P<b>{_CLOCK})(?![0-9/.])(?!\s*(?:号|日|月|kg|斤|岁|years?))",
    re.IGNORECASE,
)
_LATER_ONE = re.compile(r"later\s+one|later\s+if|晚的那个|晚一点的那个|后面那个")


def _time_options(text: str) -> tuple[time, ...]:
    """ "11 or 2, the earlier one if it's free" -> (11:00, 14:00); "3点或者4点" -> (15:00, 16:00)."""
    m = _TIME_OR.search(text.lower())
    if m is None:
        return ()
    times = [t for t in (_clock_of(m.group("a"), m.group("b")), _clock_of(m.group("b"), m.group("b"))) if t]
    if len(times) != 2:
        return ()
    if _LATER_ONE.search(text.lower()):
        return tuple(sorted(times, reverse=True))
    if "earlier" in text.lower() or "早的" in text:
        return tuple(sorted(times))
    return tuple(times)


def _clock_of(part: str, other: str) -> time | None:
    """One clock of a pair; a bare 1-7 is the afternoon, am/pm of the second applies to the first."""
    m = re.match(r"([0-9]{1,2})(?:[:.]([0-9]{2}))?\s*(am|pm|a\.m\.|p\.m\.|点半|点)?", part.strip())
    if m is None:
        return None
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    mark = (m.group(3) or "").replace(".", "")
    if not mark:
        mark = re.sub(r"[^apm]", "", other.strip().lower()[-4:]) if other.strip().lower().endswith(("am", "pm")) else ""
    if mark == "点半":
        minute = 30
    if hour > 23 or minute > 59:
        return None
    if (mark == "pm" and hour < 12) or (mark != "am" and 1 <= hour <= 7):
        hour += 12  # "11 or 2": 2 is the afternoon
    return time(hour, minute)


def relative_time(text: str) -> str | None:
    """ "anything earlier?" / "有没有晚一点的": a time earlier or later than the one offered."""
    lowered = text.lower().strip()
    if len(lowered) > 40 or _RELATIVE_NOT.search(lowered):
        return None
    if _EARLIER.search(lowered):
        return "earlier"
    if _LATER.search(lowered):
        return "later"
    return None


_MOVE_TO = re.compile(
    r"\b(?:change|move|shift|switch)\s+(?:my|our|the|his|her|\w+\s?s)\s+(?:\w+\s+){0,2}?"
    r"(?:appointment|booking|visit|exam|fitting|groom|bath)\s+(?:to|till|until)\b"
    r"|\b(?:can|could)\s+(?:we|i)\s+(?:do|make\s+it|switch\s+to|go\s+for|come(?:\s+in)?)\s+.{0,30}\binstead\b"
    r"|\b(?:go|be\s+moved|move|moved|switch|shift|bump|push|changed?)\s+(?:it\s+|that\s+|this\s+|him\s+|her\s+)?"
    r"(?:to|till|until)\s+(?!a\b|an\b|the\s+(?:full|bath|groom|nail))"
    r"|(?:的|那个|那次)(?:预约|洗澡|美容|验光)?(?:能|可以)?(?:挪|换|改)到"
)


_RENAME_EN = re.compile(
    r"\b(?:name\s+is|name\s+s|called|it\s+s|it's|she\s+s|she's|he\s+s|he's)\s+(?P<new>[A-Za-z][a-z\-]{1,15})\s*,?\s+"
    r"(?:not|isn't|not\s+called)\s+(?P<old>[A-Za-z][a-z\-]{1,15})\b",
    re.IGNORECASE,
)
_RENAME_CN = re.compile(r"(?:叫|是)(?P<new>[\u4e00-\u9fff]{1,4}?)[，,\s]*(?:不是|不叫)(?P<old>[\u4e00-\u9fff]{1,4})")


# Renames, all here: "X not Y" (above), a typo fixed (_CN_RENAMED / _EN_RENAMED), and any wording
# that says what a pet is called (the flow renames a pet put on file a moment ago only then).
_NAMING = re.compile(r"\bname\s+is\b|\bcalled\b|\bnamed\b|名字是|叫")


def _renamed(text: str) -> tuple[str, str] | None:
    """ "her name is Mumu not Momo" / "它叫球球不叫豆豆": (the right name, the wrong one)."""
    m = _RENAME_EN.search(text) or _RENAME_CN.search(text)
    if m is None:
        return None
    new, old = m.group("new"), m.group("old")
    if new.lower() in _EN_WORDS or new.lower() in _NOT_NAME_WORDS or (new.isascii() and old.lower() in _EN_WORDS):
        return None
    return (new.capitalize() if new.isascii() else new), old


def _only_time_question(text: str) -> bool:
    """ "what's the soonest you can do?" / "最早什么时候可以？" asks for the first free time: a booking
    fact (the earliest), not an FAQ question."""
    norm = normalise(text)
    if len(norm) > 40 or _has(norm, PRICE_WORDS):
        return False
    return _has(norm, EARLIEST_WORDS) or relative_time(text) is not None


def _asking_part(text: str, today: date) -> str:
    """The sentences of a story that ask for something (a booking, a question, a future day)."""
    sentences = _sentences(text)
    asking = []
    for sentence in sentences:
        norm = normalise(sentence)
        when = parse_when(sentence, today)
        if when.past and not _has(norm, BOOK_WORDS):
            continue
        if _has(norm, HABIT_WORDS) or _has(norm, LATER_WORDS):
            continue  # "every day by 3pm", "my son next year, but not now": not this request
        if _usually(sentence, today):
            continue  # "周末一般都有空": when they are usually free, not a day asked for
        asks = _has(norm, BOOK_WORDS) or looks_like_question(sentence)
        if len(norm) >= NARRATIVE and when.date is None and not asks:
            continue  # "I work in design, staring at screens from 9 to 7, ...": a time in a story
        if _has(norm, UNAVAILABLE_WORDS) and when.date is not None:
            continue  # "明天我要加班，后天要去参加婚礼，所以这两天都不行": days that do NOT suit
        if (
            _has(norm, BOOK_WORDS)
            or _has(norm, AVAILABILITY_WORDS)
            or _story_question(sentence)
            or (when.date is not None and when.date >= today)
            or when.time is not None
        ):
            asking.append(sentence)
    if asking:
        dated = [s for s in asking if parse_when(s, today).date is not None]
        if len(dated) > 1:  # a story that names several days: the request is the last one
            asking = [s for s in asking if s not in dated[:-1]]
        return " ".join(asking)
    return sentences[-1] if sentences else text


def _narrative(sentence: str, today: date) -> bool:
    """ "晚上开车看路灯也有点发散": a long sentence that tells, with a part of the day but no day, and
    asks nothing (the same test _asking_part applies to a story's sentences)."""
    norm = normalise(sentence)
    if len(norm) < NARRATIVE_PERIOD or _has(norm, BOOK_WORDS) or looks_like_question(sentence):
        return False
    when = parse_when(sentence, today)
    return when.found and when.date is None and when.time is None


def _usually(sentence: str, today: date) -> bool:
    """ "周末一般都有空": a sentence about when they are usually free, not a day asked for."""
    norm = normalise(sentence)
    return _has(norm, USUALLY_WORDS) and parse_when(sentence, today).found and not looks_like_question(sentence)


# "我想先问一下，…吗？" / "I just wanted to ask …?": a question, not a request phrased as one
ASKING_FIRST = (
    *("问一下", "想问", "请问", "咨询一下", "想了解"),
    *("want to ask", "wanted to ask", "quick question", "just asking"),
)
ANY_TIME_WORDS = ("随便哪", "随便什么", "哪个都行", "哪天都行", "都可以的", "any time is fine", "whenever is fine")
# "whenever's good", "几点都行": any time of the day suits, so the first free one is proposed
ANY_HOUR_WORDS = (
    *("whenever", "any time is fine", "anytime is fine", "any time works", "anytime works", "whatever time"),
    *("whatever works", "whatever suits", "you pick", "up to you"),
    *("whatever s free", "whatever is free", "whatever s open", "whatever s available", "any free time"),
    *("随便几点", "几点都行", "几点都可以", "什么时间都行", "什么时候都行", "时间随便", "随便哪个时间"),
    *("你们定", "看你们安排"),
)
USUALLY_WORDS = ("一般", "通常", "平常", "usually", "normally", "generally", "most weekends", "most days")
# Sentences of a story about habits or about some other time, never the request itself.
HABIT_WORDS = (
    "every",
    "每个",
    "每周",
    "每次",
    "每逢",
    "every day",
    "everyday",
    "each day",
    "daily",
    "usually",
    "every morning",
    "every evening",
    "every night",
    "每天",
    "天天",
    "平时",
    "经常",
    "总是",
    "通常",
)
NARRATIVE = 80  # a sentence this long with a time and no request in it tells, it does not ask
NARRATIVE_PERIOD = 24  # ... and this long with only a part of the day ("晚上开车看路灯也有点发散")
LATER_WORDS = (
    "not now",
    "not yet",
    "next year",
    "later this year",
    "先不",
    "以后再",
    "明年",
    "暂时不",
    "不是现在",
    "这次不",
)


UNAVAILABLE_WORDS = (
    "except",
    "apart from",
    "除了",
    "不行",
    "来不及",
    "没办法",
    "没空",
    "没时间",
    "不方便",
    "来不了",
    "can t",
    "cannot",
    "busy",
    "won t work",
    "doesn t work",
)


def _story_question(sentence: str) -> bool:
    """A sentence of a story that asks something: it ends with a question mark or 吗/呢 (a 几 or
    什么 inside a story, "闹了好几天", tells)."""
    return re.search(r"([?？]|[吗呢么嘛][。！!…~～]*)\s*$", sentence.strip()) is not None


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[。！？!?；;\n])|(?<=(?<![0-9])\.)(?![0-9])", text)
    return [p for p in parts if p.strip()]


def _present_part(text: str, today: date) -> str:
    """The message without its sentences about the past ("Max had his teeth cleaned last month")."""
    sentences = _sentences(text)
    if len(sentences) < 2:
        return text
    kept = [
        s
        for s in sentences
        if not (_PAST.search(s.lower()) or parse_when(s, today).past or _usually(s, today) or _narrative(s, today))
        # "I'd like to get Pumpkin bathed Friday, she's had her shots": the request is kept
        or _has(normalise(s), (*BOOK_WORDS, *REQUEST_FORMS))
    ]
    return " ".join(kept) if kept else text


def _correction(norm: str) -> bool:
    padded = f" {norm} "
    for w in CORRECTION_WORDS:
        n = normalise(w)
        if n.isascii():
            if f" {n} " in padded:
                return True
        elif n in norm:
            return True
    return False


HESITATION_WORDS = (
    *("再想想", "想想", "考虑一下", "考虑考虑", "我考虑", "等等", "等一下", "等下", "稍等", "不确定", "犹豫", "纠结"),
    *("let me think", "think about it", "not sure", "i m not sure", "hold on", "give me a minute", "maybe", "unsure"),
    *("let me check", "check with my", "ask my", "i ll get back", "get back to you", "我问问", "问一下我", "商量一下"),
)
_STRETCHED_YES = re.compile(r"^y+e+s{2,}\b")


def hesitates(text: str) -> bool:
    """ "嗯…我再想想" / "hmm let me think": the customer has not decided."""
    return _has(normalise(text), HESITATION_WORDS)


_ORDINALS_EN = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
_ORDINALS_EN.update({"1st": 1, "2nd": 2, "3rd": 3, "4th": 4})
_ORDINAL_CN = re.compile(r"^(?:选|要|就)?第\s*([一二三四五六七八九十1-9])\s*(?:个|项|条|次|那个)?(?:吧|的)?[。!！]?$")
_ORDINAL_EN = re.compile(
    r"^(?:the\s+)?(first|second|third|fourth|fifth|1st|2nd|3rd|4th|last)(?:\s+(?:one|option|slot|time|choice))?"
    r"(?:\s+please)?[.!]?$"
)


_ORDINAL_AROUND = re.compile(
    r"^(?:(?:ok(?:ay)?|yeah|yes|yep|sure|hmm+|um+|uh+|so|then|and)[,.!\s]+)*"
    r"(?:i'?ll\s+(?:take|have|go\s+with|do)|i\s+(?:want|choose|pick|prefer)|let'?s\s+(?:do|go\s+with|say)|"
    r"go\s+with|gimme|give\s+me|book|take|pick|choose|make\s+it)?\s*"
    r"(?P<core>.+?)\s*"
    r"(?:[\s.!~,]*(?:(?:is|would\s+be|sounds|looks)\s+(?:fine|good|great|perfect|ok(?:ay)?|best)|"
    r"works(?:\s+for\s+me)?|for\s+me|then|thanks|thank\s+you|thx|ty|pls|plz|please)){0,3}[\s.!~,]*$"
)
_ORDINAL_AROUND_CN = re.compile(
    r"^(?:好的?|嗯+|行|那|那就|就|我要|要|选|我选|帮我约|约)*(?P<core>.+?)"
    r"(?:吧|就行|就好|就可以|可以|好了|行|谢谢|哈|呀|啊)*[。!！~～,，]*$"
)


def ordinal_choice(text: str) -> int | None:
    """ "第二个" / "the second one is fine" / "那就最后一个吧": which of the buttons shown (1-based;
    -1 the last)."""
    stripped = text.strip().lower()
    if len(stripped) > 40:
        return None
    for around in (_ORDINAL_AROUND, _ORDINAL_AROUND_CN):
        m = around.match(stripped)
        if m and m["core"] != stripped:
            inner = _ordinal_core(m["core"])
            if inner is not None:
                return inner
    return _ordinal_core(stripped)


def _ordinal_core(stripped: str) -> int | None:
    if stripped in ("最后一个", "最后那个", "最后一个时间", "the last one", "last one", "the last", "last option"):
        return -1
    m = _ORDINAL_CN.match(stripped)
    if m:
        from core.when import _cn_int

        value = m.group(1)
        return int(value) if value.isdigit() else _cn_int(value)
    m = _ORDINAL_EN.match(stripped)
    if m:
        return -1 if m.group(1) == "last" else _ORDINALS_EN[m.group(1)]
    return None


YES_EMOJI = frozenset("👍👌🆗✅✔☑🙆🤝💯")
NO_EMOJI = frozenset("👎❌✖🙅")
_SKIN_TONES = re.compile("[\U0001F3FB-\U0001F3FF\uFE0F]")


def yes_no_answer(text: str) -> bool | None:
    """A plain yes or no ("好的", "是的呀", "yes please", "no thanks", "不用了"), also when it
    opens a longer message ("yes. oh wait, he's medium")."""
    bare = _SKIN_TONES.sub("", text.strip())
    if bare.rstrip("。！!~～，,") in ("中", "妥", "成", "得嘞", "好嘞", "整", "安排", "k", "kk"):
        return True  # regional "OK"s ("中" in Henan, "得嘞" in Beijing), alone
    if bare and all(c in YES_EMOJI for c in bare):
        return True  # "👍" / "👌"
    if bare and all(c in NO_EMOJI for c in bare):
        return False
    first = re.split(r"[。.!！,，;；\n]", text.strip(), maxsplit=1)[0]
    if first and first != text.strip():
        answer = yes_no_answer(first)
        if answer is not None:
            return answer
    norm = _FILLER.sub("", normalise(text)).strip()
    if not norm or len(norm) > 24 or hesitates(text):
        return None  # "嗯…我再想想" is neither yes nor no
    return _yes_no_words(_STRETCHED_YES.sub("yes", norm))  # "yesss", "yess pls"


def _starts_with_word(norm: str, w: str) -> bool:
    """Whether ``norm`` is or opens with the normalised word ``w`` (an English word whole)."""
    return norm == w or (w.isascii() and norm.startswith(w + " ")) or (not w.isascii() and norm.startswith(w))


@cache
def _normalised(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(normalise(w) for w in words)


def _yes_no_words(norm: str) -> bool | None:
    """Yes or no from a short normalised answer's words."""
    if _has(norm, KEEP_WORDS) or (len(norm) <= 16 and _has(norm, NOT_GOOD)):
        return False
    if norm in ("不错", "没错", "不客气"):
        return True if norm == "没错" else None
    no = next((w for w in _normalised(_NO_START) if _starts_with_word(norm, w)), None)
    if no is not None:
        if no == "没" and norm.startswith("没问题"):
            return True
        if no == "不" and norm.startswith(("不错", "不客气")):
            return None
        return False
    yes = next((w for w in _normalised(_YES_START) if _starts_with_word(norm, w)), None)
    if yes is not None:
        return None if yes == "好" and norm.startswith(("好久", "好多", "好几")) else True
    return None


# "my dog stinks lol help" / "豆豆毛太长了 该收拾收拾了": a need that asks for a booking (a bath;
# or some grooming, which one is asked)
NEED_BATH_WORDS = (
    *("stinks", "stinky", "smells", "smelly", "so dirty", "filthy", "muddy", "rolled in", "reeks"),
    *("好臭", "有味道", "臭臭", "臭死", "脏兮兮", "一身泥", "太脏", "好脏"),
)
NEED_GROOM_WORDS = (
    *("too long", "so long", "getting long", "needs a tidy", "needs tidying", "scruffy", "shaggy", "overgrown"),
    *("毛太长", "毛长了", "毛好长", "该收拾", "收拾收拾", "收拾一下", "打理一下", "修一修", "修修毛", "剪剪毛"),
)
NEED_EXAM_WORDS = (
    *("eyes checked", "eyes tested", "eye checked", "eye tested", "eyes examined", "vision checked"),
    *("check her eyes", "check his eyes", "check my eyes", "test her eyes", "test his eyes", "test my eyes"),
    *("eye test", "eye check", "sight test", "needs glasses", "need glasses", "new glasses"),
    *("查视力", "测视力", "测一下视力", "查一下视力", "检查视力", "检查一下视力", "配副眼镜", "配眼镜"),
    *("该复查", "要复查", "想复查", "复查一下", "due for a check", "due a check", "time for a check"),
)
_NEED_NOT = re.compile(r"last\s+time|上次|after\s+(?:the|his|her)\s+(?:bath|groom)|洗完|剪完|美容完")
BATH_WORDS = (
    *("洗澡", "洗个澡", "洗洗", "洗一洗", "洗一下", "洗下", "能洗", "可以洗"),
    *("bath", "bathed", "bathe", "wash", "washed", "shower"),
)
ASK_CUES = ("想", "约", "要", "帮我", "给我", "预约", "能不能", "可以", "book", "want", "need", "like", "can", "could")


HELP_WORDS = ("do something", "help", "帮", "弄", "处理", "搞")  # "can you do something about Max's fur"
DECLINE_WORDS = ("不用", "不需要", "不做", "没必要", "no need", "don t need", "doesn t need", "not need", "skip the")


_DENIED_SERVICE = re.compile(
    r"\b(?:not|instead\s+of|rather\s+than)\s+(?:the\s+|a\s+|an\s+|his\s+|her\s+)?[a-z]+(?:\s+(?:cut|trim|bath|groom))?\b"
    r"|(?:而不是|不是|不要)(?:做|约)?[\u4e00-\u9fff]{2}(?=[，,。.!！]|$)"
)


def _service(text: str, shop: ShopConfig, species: str | None) -> ServiceMention | None:
    """The service a message asks for: the one in a clause that asks ("想验个光"), else any; never
    the one it turns down ("make it the bath not the groom", "洗澡，不是美容")."""
    kept = _DENIED_SERVICE.sub(" ", text.lower() if text.isascii() else text)
    if kept.strip() and kept != text and service_in(text, shop) is not None:
        text = kept  # what is left may name no service ("the bath" is a bath word, read elsewhere)
    clauses = [c for c in re.split(r"[，,;；。.!?！？]|\band\b|\bbut\b|但是|不过", text) if c.strip()]
    wanted = [c for c in clauses if not _has(normalise(c), DECLINE_WORDS)]
    if wanted and len(wanted) < len(clauses):  # "这次不用做造型，就简单洗个澡就好": not the grooming
        clauses, text = wanted, "，".join(wanted)
    if len(clauses) > 1:
        for clause in clauses:
            if _has(normalise(clause), ASK_CUES):
                mention = _one_service(clause, shop, species)
                if mention is not None:
                    return mention
    return _one_service(text, shop, species)


_FAMILY = re.compile(
    r"\b(?:my|our|for (?:my|our))\s+(?:son|daughter|kid|kids|child|children|boy|girl)\b|我(?:儿子|女儿|孩子)"
)


def _one_service(text: str, shop: ShopConfig, species: str | None) -> ServiceMention | None:
    # "contacts fitting for my daughter": the service named wins over a person that is also an alias
    mention = service_in(_FAMILY.sub(" ", _mask_people(text)), shop) or service_in(_mask_people(text), shop)
    if mention is None and species is not None:
        mention = bath_for_species(text, shop, species)
    if mention is None and not _has(normalise(text), BATH_WORDS):
        mention = _fuzzy_service(text, shop)
    return mention


_HALF = re.compile(
    r"\bhalf\s+(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|[0-9]{1,2})\b(?!\s*(?:past|to))", re.I
)
_WORD_HOURS = {
    w: n
    for n, w in enumerate(
        ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"), 1
    )
}


def _half_past(text: str) -> str:
    """British "half three" is 3:30."""

    def replace(m: re.Match[str]) -> str:
        word = m.group(1).lower()
        hour = _WORD_HOURS.get(word) or int(word)
        return f"{hour}:30"

    return _HALF.sub(replace, text) if "half" in text.lower() else text


def _joined_aliases(text: str, shop: ShopConfig) -> str:
    """ "验个光" / "剪一下指甲" -> "验光" / "剪指甲": a verb and its noun split by a measure word."""
    lowered = text.lower()
    if shop.kind != "pet" and re.search(r"needs? (?:new )?glasses|check-?\s?up|yearly check", lowered):
        text = text + " eye exam"  # "my kid needs glasses", "time for my yearly check-up"
    if shop.kind != "pet" and "眼镜" in text and "取" in text and "取眼镜" not in text:
        text = text + " 取眼镜"  # "眼镜做好了，想约个时间来取"
    if shop.kind != "pet" and "验" in text:
        text = re.sub(r"验(?:个|一下|一个|下)光", "验光", text)
        text = re.sub(r"(?:重新|再)验(?:一下|一次|下)?(?!光)", "验光", text)
        text = re.sub(r"(?:看看|查查?|测一?下?|验一?下?)度数", "验光", text)
    text = re.sub(r"剪(?:个|一下|下)指甲", "剪指甲", text)
    text = re.sub(r"洗(?:一下|下)澡", "洗澡", text)
    return text


def _mask_people(text: str) -> str:
    """ "美容师" is a person, not the grooming service: drop service words that name a job."""
    return re.sub(r"(美容|洗澡|修剪|验光)(师|店|院|员)", r"\2", text)


def _fuzzy_service(text: str, shop: ShopConfig) -> ServiceMention | None:
    """A misspelt service name ("grroming", "狗狗洗躁" is fixed earlier): fuzzy over aliases."""
    norm = normalise(text)
    if not norm or len(norm) > 80:
        return None
    words = norm.split()
    best: tuple[float, ServiceMention] | None = None
    grams: dict[int, list[str]] = {}
    for alias, n, mention in _fuzzy_aliases(shop):
        if n not in grams:
            grams[n] = [" ".join(words[i : i + n]) for i in range(max(len(words) - n + 1, 0))]
        for gram in grams[n]:
            score = fuzz.ratio(gram, alias, score_cutoff=85)  # "grroming", "nial trim"; not "is my cat"
            if score and (best is None or score > best[0]):
                best = (score, mention)
    return best[1] if best else None


_FUZZY_ALIASES: dict[int, tuple[ShopConfig, tuple[tuple[str, int, ServiceMention], ...]]] = {}


def _fuzzy_aliases(shop: ShopConfig) -> tuple[tuple[str, int, ServiceMention], ...]:
    """The shop's English aliases of five letters or more, normalised, with their word counts
    (computed once per shop config)."""
    held = _FUZZY_ALIASES.get(id(shop))
    if held is not None and held[0] is shop:
        return held[1]
    candidates: list[tuple[str, ServiceMention]] = []
    for cid, category in shop.categories.items():
        for alias in [*category.aliases, category.name.en]:
            candidates.append((normalise(alias), ServiceMention(category=cid)))
    for sid, service in shop.services.items():
        for alias in [*service.aliases, service.name.en]:
            candidates.append((normalise(alias), ServiceMention(service_id=sid)))
    found = tuple((a, len(a.split()), m) for a, m in candidates if a.isascii() and len(a) >= 5)
    _FUZZY_ALIASES[id(shop)] = (shop, found)
    return found


def _removed_addons(text: str, shop: ShopConfig, addons: tuple[str, ...]) -> tuple[str, ...]:
    """The add-ons a message drops: those in a clause that says so ("驱虫不要了，换成护毛素" drops
    only the deworming)."""
    if not addons or not _has(normalise(text), REMOVE_WORDS):
        return ()
    clauses = _clauses(text)
    if len(clauses) < 2:
        return addons
    dropped = {a for c in clauses if _has(normalise(c), REMOVE_WORDS) for a in _addons(c, shop)}
    return tuple(a for a in addons if a in dropped)


def _not_past_clauses(text: str, today: date) -> str:
    """The clauses that are not about something done before ("做过驱虫", "had his teeth done")."""
    clauses = _clauses(text)
    kept = [c for c in clauses if not (_PAST.search(c.lower()) or _DONE.search(c) or parse_when(c, today).past)]
    return "，".join(kept) if kept and len(kept) < len(clauses) else text


_DONE = re.compile(r"(?:做|打|剪|洗|弄|驱|刷)过|刚做|已经做")


def _addons(text: str, shop: ShopConfig) -> tuple[str, ...]:
    found: list[str] = []
    rest = text
    while True:
        addon = addon_in(rest, shop, allowed=[a for a in shop.addons if a not in found])
        if addon is None:
            break
        found.append(addon)
    return tuple(found)


def _size_from_weight(text: str) -> Size | None:
    """ "12kg", "十二公斤", "三十多斤" (a jin is half a kilo), "about 20 lbs"."""
    m = re.search(
        r"(\d{1,3}(?:\.\d)?|[一二两三四五六七八九十]{1,3})\s*(?:多|来|几)?\s*"
        r"(kilos?|kilograms?|kgs?|公斤|千克|斤|lbs?|pounds?)",
        text.lower(),
    )
    if not m:
        return None
    from core.when import _cn_int

    number = m.group(1)
    value = float(number) if number[0].isdigit() else float(_cn_int(number) or 0)
    if value <= 0:
        return None
    unit = m.group(2)
    per_kg = 0.5 if unit == "斤" else 0.4536 if unit.startswith(("lb", "pound")) else 1.0
    low = value * per_kg
    # "二十多公斤" is 20 to 29 kg: a size only when the whole range falls in one
    high = (value + (10 if value >= 10 else 1) - 0.01) * per_kg if re.search(r"多|来|几", m.group(0)) else low
    sizes = {_size_of_kg(low), _size_of_kg(high)}
    return sizes.pop() if len(sizes) == 1 else None


def _size_of_kg(kg: float) -> Size:
    return "small" if kg < 10 else "medium" if kg <= 25 else "large"


_NOT_YET = re.compile(r"(?:没|未)(?:有|来得及|去|空)?[^，。,.]{0,3}打|haven t|hasn t|not (?:been|had|got)")


def _clauses(text: str) -> list[str]:
    return [c for c in re.split(r"[，,。.!！?？;；\n]", text) if c.strip()]


def _about_vaccines(text: str) -> str:
    """The clauses of a story about vaccination ("它的疫苗今年五月份刚打过")."""
    words = ("疫苗", "狂犬", "vaccin", "shot", "jab", "booster", "rabies")
    return "，".join(c for c in _clauses(text) if any(w in c.lower() for w in words))


def _vaccination(text: str, today: date) -> tuple[bool | None, date | None]:
    norm = normalise(text)
    if _NOT_YET.search(norm):
        return False, None
    said_no = any(normalise(w) in norm for w in VACCINE_NO if not normalise(w).isascii()) or _has(
        norm, tuple(w for w in VACCINE_NO if normalise(w).isascii())
    )
    if said_no:
        return False, None
    said_yes = any(normalise(w) in norm for w in VACCINE_YES if not normalise(w).isascii()) or _has(
        norm, tuple(w for w in VACCINE_YES if normalise(w).isascii())
    )
    dated = _vaccination_month(text, today)
    jab_words = ("打", "shot", "vaccin", "jab", "booster", "rabies", "狂犬")
    if not said_yes and dated is not None and any(w in norm for w in jab_words):
        said_yes = True  # "今年3月份打的" / "had them in March"
    if not said_yes and not ("疫苗" in norm and any(w in norm for w in ("有", "齐", "全", "打"))):
        return None, None
    on = _vaccination_month(text, today)
    if on is not None and on < today - timedelta(days=365):
        return False, on  # done, but more than a year ago: no longer valid
    return True, on


_EN_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
    "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip


def _vaccination_month(text: str, today: date) -> date | None:
    lowered = text.lower()
    if re.search(r"last\s+week|上周|上个?星期", lowered):
        return today - timedelta(days=7)
    if re.search(r"last\s+month|上个?月", lowered):
        return today - timedelta(days=30)
    m_en = re.search(r"\bin\s+(?:early\s+|late\s+|mid\s+)?([a-z]{3,9})\b", lowered)
    if m_en and m_en.group(1) in _EN_MONTHS:
        month = _EN_MONTHS[m_en.group(1)]
        day = date(today.year, month, 1)
        return day if day <= today else date(today.year - 1, month, 1)
    m = re.search(r"(今年|去年)?\s*(\d{1,2}|十[一二]?|[一二三四五六七八九])\s*月", text)
    if m:
        from core.when import _cn_int

        year = today.year - (1 if m.group(1) == "去年" else 0)
        month = int(m.group(2)) if m.group(2).isdigit() else (_cn_int(m.group(2)) or 0)
        if 1 <= month <= 12:
            day = date(year, month, 1)
            if day > today and m.group(1) is None:
                day = date(year - 1, month, 1)
            return day if day <= today else None
    return None


def _whose_exam(text: str) -> tuple[bool | None, int | None]:
    norm = normalise(text)
    age: int | None = None
    m = _AGE.search(text.lower()) or _AGE_IS.search(text.lower())
    if m:
        age = int(m.group(1))
    else:
        cm = _CN_AGE.search(text)
        if cm:
            from core.when import _cn_int

            age = _cn_int(cm.group(1))
    if age is not None and age < 16:
        return True, age
    if age is not None and age >= 16:
        return False, age  # "帮我女儿约个验光，她25岁了": a grown-up daughter has an adult exam
    not_me = _NOT_ME.search(norm) is not None
    if not_me and _has(norm, CHILD_WORDS):
        return True, age  # "oh sorry, it's not for me, it's for my son"
    adult = _has(_SUITS_ME.sub(" ", norm), ADULT_WORDS)  # "2:45pm works for me" says when, not whose exam
    if (adult and not not_me) or _NOT_THE_CHILD.search(norm):
        return False, age  # "我儿子上次验得挺准，这次给自己约", "it's for me, not the kids"
    if _has(norm, CHILD_WORDS):
        return True, age
    return None, age


EVENT_WORDS = (
    "生日",
    "放学",
    "下班",
    "考试",
    "开学",
    "出差",
    "筛查",
    "birthday",
    "screening",
    "school",
    "turned",
    "finishes",
    "flight",
    "wedding",
    "exam day",
)


def _corrected_part(text: str) -> str | None:
    """The words after a correction cue inside a message ("约个洗澡……哦不是，是剪指甲" -> "，是剪指甲"),
    or None when the message corrects nothing (a cue at the start corrects the previous message)."""
    norm = text.lower()
    best = -1
    end = 0
    for cue in CORRECTION_CUES:
        at = norm.rfind(cue)
        if at > 0 and at > best and _cue_is_correction(norm, at, cue):
            best, end = at, at + len(cue)
    rest = text[end:].lstrip(" ，,.。…!！-—")
    first = re.split(r"[，,。.!！;；]", rest, maxsplit=1)[0] if rest else ""
    return first if best > 0 and first.strip() else None  # "说错了，是球球，豆豆上周刚洗过": "是球球"


def _cue_is_correction(norm: str, at: int, cue: str) -> bool:
    if cue == "不是" and (norm[at - 1 : at] == "是" or norm[at + 2 : at + 3] in ("很", "太", "特")):
        return False  # "是不是", "不是很怕水": a question or a description, not a correction
    if cue == "不是" and re.search(r"是[^，,。；;!！?？]{1,12}$", norm[:at]):
        return False  # "是咪咪不是豆豆": what comes first is meant
    after_comma = norm[:at].rstrip()[-1:] in ("，", ",")
    if cue == "不是" and after_comma and re.match(r"[\u4e00-\u9fff](?<![是的])", norm[at + 2 :]):
        return False  # "洗澡，不是美容": what follows is turned down (a correction says "不是，是剪指甲")
    if cue in ("actually", "sorry"):
        return norm[:at].rstrip()[-1:] in (",", "，", ".", "。", "…", "-", "—", "!", "！")  # ", actually a groom"
    return True


def _when(text: str, today: date, lang: str) -> When:
    """The day and time the message asks for: a correction within the message wins ("10点，哦不，
    10点半"), a day said not to work is skipped ("周五不行，周四可以"), a bare hour after a
    correction cue is a time ("I meant 11 not 10")."""
    day_first = lang == "en"
    norm = text.lower()
    for cue in CORRECTION_CUES:
        at = norm.rfind(cue)
        if at == 0 and len(norm.split()) <= 6:  # "actually make it 4 instead", "i meant 11"
            after = _parse(text[len(cue) :], today, day_first)
            hour = _CORRECTED_HOUR.search(text[len(cue) :].lower())
            if not after.found and hour and 1 <= int(hour.group(1)) <= 12:
                h = int(hour.group(1))
                return When(time=_time(h + 12 if h <= 7 else h), spans=((0, 1),))
        if at > 0:
            after = _parse(text[at + len(cue) :], today, day_first)
            before = _parse(text[:at], today, day_first)
            if after.found and before.found:
                return When(
                    date=after.date or before.date,
                    # "28号下午3点，哦不对，是29号": the day is corrected, the time stays (not "下午吧")
                    time=after.time or (before.time if after.period is None else None),
                    period=after.period or (before.period if after.time is None else None),
                    span=after.span,
                    spans=after.spans or before.spans,
                )
            if not after.found and at > 0:
                hour = _CORRECTED_HOUR.search(text[at + len(cue) :].lower())  # not "她6岁"
                if hour and 1 <= int(hour.group(1)) <= 12:
                    h = int(hour.group(1))
                    h = h + 12 if 1 <= h <= 7 else h
                    # "Monday at 10, no wait, 11": the hour is corrected, the day stays
                    return When(date=before.date, time=_time(h), spans=((at, at + 1),))
    clauses = re.split(r"[，,;；。]|\s[-–—]\s", text)
    if len(clauses) > 1:
        kept = [c for c in clauses if not _has(normalise(c), NEGATIONS)]
        if kept and len(kept) < len(clauses):
            found = parse_when("，".join(kept), today, prefer_afternoon_for_small_hours=True, day_first=day_first)
            if found.found:
                return found
    return parse_when(text, today, prefer_afternoon_for_small_hours=True, day_first=day_first)


_BARE_HOUR = re.compile(
    r"(?:(?:ok|okay|sure|yes|yeah|then|let s do|lets do|how about|那|那就|好|好的|就)[\s,，]*)?"
    r"(?:(?:at|around|about|say|maybe|大概|差不多)\s*)?([0-9]{1,2})(?:[:.]([0-9]{2}))?"
    r"\s*(?:then|please|pls|ok|instead|ish|or so|吧|点吧|左右|可以吗|行吗|好了)?[?？!！.。]*"
)


_AFTER = re.compile(
    r"(?:any\s*time\s+|anything\s+|from\s+|at\s+)?after\s+(?:about\s+|around\s+)?([0-9]{1,2})(?:[:.]([0-9]{2}))?\s*(am|pm|o'?clock)?\b"
    r"|([0-9]{1,2}|[一二两三四五六七八九十]{1,3})点(?:半)?(?:以后|之后|后)"
)


_NOT_EARLY = re.compile(
    r"not\s+(?:too|so|very)\s+early|not\s+first\s+thing|nothing\s+(?:too\s+)?early|"
    r"不要太早|别太早|不想太早|太早不行|早上起不来|起不来"
)
_NOT_MORNING = re.compile(
    r"not\s+a\s+morning\s+person|not\s+(?:in\s+)?the\s+morning|no\s+mornings|mornings?\s+(?:are|is)\s+(?:bad|no\s+good|"
    r"difficult|hard)|can'?t\s+do\s+mornings?|上午不行|上午不方便|上午没空|早上不行|早上没空"
)


_AFTER_LUNCH = re.compile(r"\bafter\s+lunch(?:\s?time)?\b|午饭后|午饭以后|吃完午饭|午休后")


def _after_time(text: str) -> time | None:
    """ "anytime after 4 is good", "after 4:30pm", "4点以后都行": the time from which any time suits;
    "not too early" is from 11:00, "not a morning person" / "上午不行" from noon."""
    lowered = text.lower()
    if _NOT_MORNING.search(lowered):
        return time(12, 0)
    if _NOT_EARLY.search(lowered):
        return time(11, 0)
    if _AFTER_LUNCH.search(lowered) and not re.search(r"[0-9]|[一二两三四五六七八九十]点", lowered):
        return time(13, 0)  # "anything after lunch" / "午饭后" (but "after lunch, like 1-ish" is 1pm)
    m = _AFTER.search(lowered)
    if m is None:
        return None
    if m.group(4):
        from core.when import _cn_int

        hour = int(m.group(4)) if m.group(4).isdigit() else _cn_int(m.group(4))
        minute = 30 if "半" in m.group(0) else 0
        pm = None
    else:
        hour, minute, pm = int(m.group(1)), int(m.group(2) or 0), m.group(3)
    if hour is None or not (0 <= hour <= 23 and minute < 60):
        return None
    if pm == "pm" and hour < 12:
        hour += 12
    elif pm != "am" and 1 <= hour <= 7:
        hour += 12  # "after 4": in the afternoon
    return time(hour, minute)


def _bare_hour(text: str) -> When | None:
    """ "10 then" / "3 please" answering "which time?": a clock hour (1-7 read as afternoon)."""
    m = _BARE_HOUR.fullmatch(text.strip().lower())
    if not m or text.strip().isdigit():
        return None  # a number alone presses a button
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if not (1 <= hour <= 12 and minute < 60):
        return None
    if hour <= 7:
        hour += 12
    return When(time=time(hour, minute), spans=((0, len(text)),))


_SHIFT = re.compile(
    r"(?P<n>an?|one|two|half an?|1|2|3|半|一|两|1个|2个|一个|两个)\s*(?P<u>hours?|小时|个小时|钟头)"
    r"\s*(?P<d>later|earlier|之后|以后|后)?"
    r"|(?P<cn>晚|早|推迟|提前)(?P<n2>半|一|两|1|2|一个|两个)?\s*(?P<u2>个?小时|钟头)"
)


_DAY_SHIFT = re.compile(
    r"(?P<later>往后挪|往后推|推迟|延后|晚|后延|push(?:\s+it)?\s+back|a\s+day\s+later|one\s+day\s+later)"
    r"\s*(?:一|1|a|one)?\s*(?:天|day)?"
    r"|(?P<earlier>提前|早|a\s+day\s+earlier|one\s+day\s+earlier)\s*(?:一|1)\s*天"
    # "the following day" / "the day after" / "第二天" / "后一天": the day after the booking's day
    r"|(?P<later2>the\s+(?:following|next)\s+day|the\s+day\s+after(?!\s+(?:tomorrow|tmrw|tmr))|后一天|第二天|隔天|次日)"
    r"|(?P<earlier2>the\s+day\s+before(?!\s+(?:yesterday))|the\s+previous\s+day|前一天)"
)


_SHIFT_LATER = re.compile(r"\b(?:back|later|push|pushed|delay)\b|往后|推迟|延后|晚")
_SHIFT_EARLIER = re.compile(r"\b(?:forward|earlier|bring|brought|sooner)\b|往前|提前|早")


def _shift_minutes(text: str) -> int | None:
    """ "an hour later" -> +60, "push it back an hour" -> +60, "早半小时" -> -30, "往后挪一天" -> +1
    day: relative to the booking's time; a move by hours wins over the day words around it."""
    lowered = text.lower()
    m = _SHIFT.search(lowered)
    if m:
        if m.group("cn"):
            n = m.group("n2") or "一"
            sign: int | None = 1 if m.group("cn") in ("晚", "推迟") else -1
        else:
            n = m.group("n")
            direction = m.group("d") or ""
            if direction:
                sign = -1 if direction == "earlier" else 1
            else:  # "push it back an hour" / "bring it forward an hour": the direction is said before
                later, earlier = _SHIFT_LATER.search(lowered), _SHIFT_EARLIER.search(lowered)
                sign = 1 if later and not earlier else -1 if earlier and not later else None
        if sign is not None:
            amount = {"半": 30, "half a": 30, "half an": 30, "两": 120, "2": 120, "two": 120, "两个": 120}.get(n, 60)
            if n in ("3",):
                amount = 180
            return sign * amount
    day = _DAY_SHIFT.search(lowered)
    if day and ("天" in day.group(0) or "day" in day.group(0) or "back" in day.group(0) or "日" in day.group(0)):
        return 1440 if day.group("later") or day.group("later2") else -1440
    return None


def _parse(text: str, today: date, day_first: bool) -> When:
    return parse_when(text, today, prefer_afternoon_for_small_hours=True, day_first=day_first)


def _time(hour: int) -> time:
    return time(hour, 0)


_BOTH_PETS = re.compile(
    r"\bboth\s+(?:of\s+(?:them|my\s+\w+)|my\s+\w+|dogs|cats|pups|puppies|kitties|babies)\b|\bthe\s+two\s+of\s+them\b"
    r"|两只都|两只一起|两个都|俩都|它俩|他俩|她俩|两只(?:狗狗|猫咪|狗|猫|宝贝)|两个宝贝"
)
_NOT_PET = r"(?:不是|not|instead of|而不是|only|just|只|就)\s*"


_ADULT_REL = (
    r"wife|husband|partner|boyfriend|girlfriend|mom|mum|mother|dad|father|friend|colleague|roommate"
    r"|grandma|grandpa|grandmother|grandfather|sister|brother|fianc[eé]e?"
)
_CHILD_REL = r"son|daughter|kid|child|boy|girl|little one"
_CN_ADULT_REL = r"老公|老婆|爱人|先生|太太|妈妈|爸爸|妈|爸|朋友|同事|男朋友|女朋友|对象|姐姐|妹妹|哥哥|弟弟|婆婆|公公"
_CN_CHILD_REL = r"儿子|女儿|孩子|闺女|小孩|宝宝|娃"
_RELATION = re.compile(rf"(?:{_CHILD_REL}|{_CN_CHILD_REL})s?")
# (pattern, the people it names: None for "me" and the relation it names, me first or last)
_PARTY_PATTERNS: tuple[tuple[re.Pattern[str], tuple[bool, ...] | None, bool], ...] = (
    (re.compile(rf"\b(?:me|myself)\s+and\s+(?:my\s+|our\s+)?(?P<rel>{_ADULT_REL}|{_CHILD_REL})s?\b"), None, True),
    (re.compile(rf"\b(?:my|our)\s+(?P<rel>{_ADULT_REL}|{_CHILD_REL})\s+and\s+(?:i|me|myself)\b"), None, False),
    (re.compile(rf"我和(?:我的?)?(?P<rel>{_CN_ADULT_REL}|{_CN_CHILD_REL})"), None, True),
    (re.compile(rf"(?P<rel>{_CN_CHILD_REL}|{_CN_ADULT_REL})和我"), None, False),
    (
        re.compile(
            r"\b(?:my|our)\s+(?:two|2)\s+(?:kids|children|sons|daughters|boys|girls)\b"
            r"|\bboth\s+(?:my\s+|our\s+)?(?:kids|children)\b|两个孩子|俩孩子|两个娃|两个小孩|两个宝宝|两个儿子|两个女儿"
        ),
        (True, True),
        True,
    ),
    (
        re.compile(
            r"\b(?:both\s+of\s+us|the\s+two\s+of\s+us|two\s+of\s+us|us\s+both|for\s+two\s+(?:people|adults))\b"
            r"|我们(?:两个|俩)|两个人|两位大人"
        ),
        (False, False),
        True,
    ),
)


def people_together(text: str) -> tuple[bool, ...]:
    """The people one optician request is for when it names two ("me and my wife both need eye
    exams", "我和儿子都想验光"), each True for a child, in the order said; empty for one person."""
    lowered = text.lower()
    for pattern, fixed, me_first in _PARTY_PATTERNS:
        m = pattern.search(lowered)
        if m is None:
            continue
        if fixed is not None:
            return fixed
        child = _RELATION.fullmatch(m.group("rel")) is not None
        return (False, child) if me_first else (child, False)
    return ()


def pets_together(text: str, pets: tuple[PetView, ...]) -> tuple[PetView, ...]:
    """The pets on file one request is for when it names two or more ("baths for max and bella",
    "豆豆和球球都洗"), or says "both" with exactly two on file; in the order named. Empty when
    one of them is denied ("是球球不是豆豆") or singled out ("just max")."""
    if len(pets) < 2:
        return ()
    norm = normalise(text)
    named = [p for p in pets if p.name and normalise(p.name) in norm]
    if len(named) < 2:
        return pets if not named and len(pets) == 2 and _BOTH_PETS.search(text.lower()) else ()
    lowered = text.lower()
    if any(re.search(_NOT_PET + re.escape(p.name.lower()), lowered) for p in named):
        return ()
    return tuple(sorted(named, key=lambda p: norm.index(normalise(p.name))))


def _pet(text: str, pets: tuple[PetView, ...]) -> PetView | None:
    """The pet a message is about: "是咪咪不是豆豆" / "it's for Bear, not Max" names two, means one."""
    named = [p for p in pets if p.name and normalise(p.name) in normalise(text)]
    if len(named) <= 1:
        return named[0] if named else pet_in(text, pets)
    lowered = text.lower()
    kept = [
        p
        for p in named
        if not re.search(rf"(?:不是|not|instead of|而不是)\s*{re.escape(p.name.lower())}", lowered)
    ]
    return kept[0] if len(kept) == 1 else pet_in(text, pets)


NOW_WORDS = ("现在", "马上", "立刻", "right now", "asap", "straight away", "immediately")
NEW_PET_WORDS = (
    "new dog",
    "new cat",
    "new puppy",
    "new kitten",
    "another dog",
    "another cat",
    "other dog",
    "other cat",
    "second dog",
    "新来的",
    "新养的",
    "刚养的",
    "另一只",
    "另外一只",
    "新的狗",
    "新的猫",
)
REQUEST_FORMS = (
    "can i",
    "could i",
    "can we",
    "could we",
    "can you",
    "could you",
    "may i",
    "i d like",
    "i want",
    "i need",
    "please",
    "能不能",
    "能否",
    "可以",
    "帮我",
    "能帮",
    "我想",
    "我要",
    "能",
)
CANT_COME_WORDS = (
    *("something came up", "something s come up", "something has come up", "临时有事"),
    "can t make it",
    "cannot make it",
    "won t make it",
    "be able to make it",
    "can t come",
    "won t be able to come",
    "来不了",
    "不能来",
    "去不了",
    "没法来",
    "有事来不了",
)
REMOVE_WORDS = ("不要", "不用", "去掉", "取消", "不加", "不做", "without", "remove", "skip", "drop", "no ", "don t")
COMPLAINT_WORDS = (
    *("投诉", "不满意", "很不满", "太差了", "太差劲", "差评", "失望", "气死", "退款", "赔偿", "什么态度", "怎么搞的"),
    *("搞什么", "不负责", "剪坏了", "剪破", "弄伤", "受伤了", "流血了", "剪伤", "烫伤了", "被剪到", "太过分"),
    *("not happy", "unhappy", "disappointed", "disappointing", "unacceptable", "refund", "so rude", "very rude"),
    *("complaint", "complain", "furious", "upset about", "ruined", "butchered", "compensation"),
    *("cut my dog", "cut my cat", "cut his ear", "cut her ear", "hurt my dog", "hurt my cat", "injured my"),
    *("not ok", "not okay", "came home with", "a cut on", "nicked", "was bleeding", "is bleeding", "razor burn"),
    *("worst service", "terrible service", "not impressed", "very poor", "回来就", "回家发现"),
)
# "can i just walk in or do i need to book?" / "需要提前预约吗": asks about booking, books nothing
_ASKS_IF_BOOKING_NEEDED = re.compile(
    r"\bwalk\s?in|\bwalk-in|\bdo (?:i|we|you) (?:need|have) to (?:book|make an appointment|reserve)"
    r"|\bis (?:a )?booking (?:needed|required|necessary)"
    r"|(?:需要|要|得)(?:提前)?预约吗|用预约吗|可以直接(?:来|过来|去)|直接过来(?:就)?(?:行|可以)"
)
_COMPLAINT_NOT = re.compile(r"won.t be disappointed|never disappointed|不会失望|没有不满|从没失望")
SYMPTOM_WORDS = (
    "疼",
    "痛",
    "发红",
    "有点红",
    "红肿",
    "痒",
    "肿",
    "流泪",
    "不舒服",
    "充血",
    "分泌物",
    "hurts",
    "hurting",
    "painful",
    "pain",
    "sore",
    "itchy",
    "swollen",
    "red and",
    "bloodshot",
    "infection",
    *("burns", "burning", "stings", "stinging", "splashed", "got something in", "can t see", "blurry all of a sudden"),
    *("bleeding", "流血", "出血", "伤口", "wound"),
    *("灼", "辣眼", "刺痛", "溅到", "进了东西", "看不清了", "突然看不清"),
)
PRICE_WORDS = (
    "多少钱",
    "几多钱",
    "几钱",
    "价格",
    "价钱",
    "价位",
    "收费",
    "费用",
    "总共多少",
    "一共多少",
    "总价",
    "how much",
    "price",
    "cost",
    "charge",
    "total",
    "fee",
)
WH_WORDS = (
    "多少",
    "几点",
    "几",
    "怎么",
    "什么",
    "哪",
    "多久",
    "how",
    "what",
    "when",
    "where",
    "which",
    "why",
    "price",
    "cost",
    "charge",
)


def _staff(text: str, shop: ShopConfig) -> str | None:
    """A staff member named in the message ("陈医师", "Dr Chen", "小美")."""
    lowered = text.lower().replace(".", "")
    for staff_id, staff in shop.staff.items():
        names = {staff.name.zh, staff.name.en.lower().replace(".", "")}
        zh = staff.name.zh
        for title in ("医师", "医生", "大夫", "师傅", "老师"):
            if zh.endswith(title):
                base = zh[: -len(title)]
                names.update(base + t for t in ("医师", "医生", "大夫", "师傅", "老师"))
        en = staff.name.en.lower().replace(".", "")
        if en.startswith("dr "):
            names.update({"doctor " + en[3:], "dr" + en[3:]})
        if any(n and n in lowered for n in names):
            return staff_id
    return None


AFTER_THAT_WORDS = (
    *("after that", "afterwards", "after school", "after work"),
    *("之后", "以后", "完了", "结束后", "放学后", "下班后"),
)


def _event_date(text: str, when: When) -> bool:
    """Whether the day or time belongs to something else ("老公28号生日", "下午4点放学")."""
    return _without_events(text) != text


def _without_events(text: str) -> str:
    clauses = [c for c in re.split(r"[，,;；。.!?！？]", text) if c.strip()]
    kept = [
        c
        for c in clauses
        if not (_has(normalise(c), EVENT_WORDS) and not _has(normalise(c), (*BOOK_WORDS, "能", "can", "could")))
    ]
    return "，".join(kept) if len(kept) != len(clauses) else text


SIZE_PREFIXES = (
    *("小型犬", "中型犬", "大型犬", "小型", "中型", "大型", "狗狗", "猫咪"),
    *("的", "新来的", "刚来的", "那只", "这只"),
)
_NAME_PREFIXES = sorted(
    [*BREED_NAMES, *SIZE_PREFIXES],
    key=len,
    reverse=True,
)


def _clean_cn_name(name: str) -> str:
    """ "金毛大黄" -> "大黄", "小型犬豆豆" -> "豆豆": drop a breed, size or species said before the name."""
    changed = True
    while changed and name:
        changed = False
        for word in _NAME_PREFIXES:
            if name.startswith(word) and len(name) > len(word):
                name = name[len(word) :]
                changed = True
    return name


# a story's introduction of the pet: "我家肉松是一只三岁的柯基", "We adopted Pickles, a little Maltese"
_CN_MY_PET_IS = re.compile(
    r"我家(?:的)?(?P<name>[\u4e00-\u9fff]{2,4}?)(?:是一只|是只|是个|是一条|今年|已经|[0-9一二两三四五六七八九十]+岁)"
)
_EN_PET_IS = re.compile(
    r"\b(?P<name>[A-Z][a-z\-]{1,15})(?:,\s*|\s+is\s+)(?:a|an|our|my)\s+(?P<what>(?:[a-z]+\s+){0,2}[a-z]+)"
    r"|\badopted\s+(?P<adopted>[A-Z][a-z\-]{1,15})\b"
)


_EN_SIZE_WORDS = frozenset("small medium large big tiny little huge giant mini toy standard xl".split())  # noqa: SIM905


def _story_pet_name(text: str, shop: ShopConfig) -> str | None:
    for m in _CN_MY_PET_IS.finditer(text):
        name = _clean_cn_name(m.group("name"))
        if _good_cn_name(name, shop):
            return name
    for m in _EN_PET_IS.finditer(text):
        name = m.group("name") or m.group("adopted")
        what = m.group("what") or ""
        if name in _EN_NOT_NAMES or name.lower() in _EN_WORDS or name.lower() in _EN_SIZE_WORDS:
            continue  # "Hi, my cat Mochi": not "Hi"; "Small, a chihuahua called Pip": not "Small"
        if m.group("name") and not (species_in(what) or breed_in(what)):
            continue
        return name
    return None


def _new_pet_name(text: str, shop: ShopConfig) -> str | None:
    """A pet's name in "给我家球球洗个澡" / "bath for Max" / "他叫球球" / "her name is Luna"."""
    if shop.kind != "pet":
        return None
    story = _story_pet_name(text, shop)  # "Max is my golden retriever", "我家肉松是一只柯基"
    if story:
        return story
    for rx in (_CN_RENAMED, _CN_NAMED, _CN_MY_PET, _CN_FOR_PET, _CN_MY_PET_END):
        for m in rx.finditer(text):
            name = _clean_cn_name(m.group("name"))
            if _good_cn_name(name, shop):
                return name
    return _english_pet_name(text)


_EN_TRAILING_NAME = re.compile(
    r",\s*(?P<name>[A-Z][a-z]{1,15})\s*[.!?]*\s*$"
    r"|\b(?:for|of)\s+(?:her|him)\s*,\s*(?P<name2>[A-Z][a-z]{1,15})\s*,"  # "a nail trim for her, Whiskers, sunday"
)


def _english_pet_name(text: str) -> str | None:
    """A name in English: "her name is Luna", "bath for Max", "my corgi biscuit" (in lower case),
    "he's a 4 month old lab, Toby" (a capitalised name after the pet is described)."""
    trailing = _EN_TRAILING_NAME.search(text)
    named = trailing.group("name") or trailing.group("name2") if trailing else None
    if trailing and named and named.lower() not in _EN_NOT_NAMES:
        described = text[: trailing.start()] if trailing.group("name") else text
        if species_in(described) or breed_in(described) or re.search(r"\b(?:puppy|pup|kitten)\b", described.lower()):
            return named
    renamed = _EN_RENAMED.search(text)
    if renamed and renamed.group("name").lower() not in _EN_NOT_NAMES:
        return renamed.group("name").capitalize()
    named = _EN_NAMED.search(normalise(text))
    if named:
        name = named.group("name").capitalize()
        if name not in _EN_NOT_NAMES:
            return name
    for m in _EN_PET_NAME.finditer(text):
        name = m.group("name") or m.group("name2")
        if name and name not in _EN_NOT_NAMES:
            return name
    for m in _EN_KIND_NAME.finditer(text.lower()):  # "my corgi biscuit", "my cat mimi": typed in lower case
        name = m.group("name")
        if _plain_word(name) or breed_in(name) or species_in(name):
            continue
        return name.capitalize()
    return None


_EN_KIND_NAME = re.compile(
    rf"\b(?:my|our)\s+(?:(?:little|old|new|baby|fur|sweet|senior|young|small|big|\d+\s?(?:yo|y/o|year old|kg))\s+)*"
    rf"(?:{_EN_KINDS})(?:\s+(?:girl|boy|mix|cross|puppy|pup))?\s+(?P<name>[a-z][a-z\-]{{1,15}})\b"
)


def _plain_word(word: str) -> bool:
    """An English word that is no pet's name ("my dog needs", "my cat tomorrow", "my poodle is")."""
    w = word.lower()
    if w in _EN_WORDS or w in _EN_SIZE_WORDS or w.capitalize() in _EN_NOT_NAMES:
        return True
    if w in _NOT_NAME_WORDS or parse_when(w, date(2026, 1, 1)).found:
        return True
    return w.endswith(("ing", "ed")) and len(w) > 5  # "my dog barking", "my cat vaccinated"


_NOT_NAME_WORDS = frozenset(
    """needs need wants want has had is was gets got hates loves likes seems looks really also still
    named called who which that and or but with without please pls plz thx asap tmrw tmr tonight sat sun mon tue
    tues wed thu thur thurs fri arvo vaxxed vaccinated shots jabs up fully full half since for in on at to
    from into as if so too very just only bath baths wash groom grooming haircut cut trim nails nail teeth
    ears medium large small tiny big little old young puppy kitten mix cross breed boy girl he she it him her
    his hers they them one two three four five six seven eight nine ten years year months month kg kilos lbs""".split()  # noqa: SIM905
)


def _good_cn_name(name: str, shop: ShopConfig) -> bool:
    if not name or name in _NAME_STOP or len(name) > 6 or len(name) < 2:
        return False
    if name[0] in "了着过的得地是在也都就还又一" or "一声" in name:
        return False  # "它疼得叫了一声": a verb's tail, not a name
    if species_in(name) or breed_in(name) or service_in(name, shop):
        return False
    if parse_when(name, date(2026, 1, 1)).found:
        return False
    return not any(w in name for w in ("我", "你", "一下", "个", "时间", "预约", "洗", "美容", "剪", "疫苗", "家"))


_CODE = re.compile(r"\b([A-HJ-NP-Z2-9]{6})\b")


def _booking_code(text: str) -> str | None:
    m = _CODE.search(text.upper())
    if m and any(c.isdigit() for c in m.group(1)) and any(c.isalpha() for c in m.group(1)):
        return m.group(1)
    return None


def looks_like_pet_name(text: str, shop: ShopConfig) -> bool:
    """Whether a whole message can be a pet's name (asked "what is your pet called?")."""
    name = text.strip()
    if not name or len(name) > 20 or "\n" in name:
        return False
    if looks_like_question(name) or any(c in name for c in "?？!！,，。"):
        return False
    if name.isascii():
        words = name.split()
        return 1 <= len(words) <= 3 and all(w.isalpha() for w in words)
    return _good_cn_name(name, shop) or (len(name) <= 4 and not species_in(name) and not service_in(name, shop))


def fuzzy_similar(a: str, b: str) -> float:
    return float(fuzz.ratio(normalise(a), normalise(b)))
