"""What customers call their pets: species words and common breeds with their usual size.

Used to understand "给我家金毛洗澡" (a golden retriever is a large dog) without asking.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

Species = Literal["dog", "cat"]
Size = Literal["small", "medium", "large"]

SPECIES_WORDS: dict[Species, tuple[str, ...]] = {
    "dog": ("狗狗", "狗子", "小狗", "狗", "犬", "汪", "puppy", "puppies", "pup", "doggy", "doggie", "doggo", "dog"),
    "cat": ("猫咪", "小猫", "猫猫", "猫", "喵", "kitten", "kitty", "kitties", "cat"),
}

SIZE_WORDS: dict[Size, tuple[str, ...]] = {
    "small": ("小型", "小只", "小的", "small", "little", "tiny", "toy"),
    "medium": ("中型", "中等", "中的", "medium", "mid-size", "mid"),
    "large": ("大型", "大只", "大狗", "大的", "large", "big", "giant"),
}

# breed -> (species, usual size); sizes follow the shops' bands (<10 kg, 10-25 kg, >25 kg).
BREEDS: dict[str, tuple[Species, Size | None]] = {
    "泰迪": ("dog", "small"),
    "贵宾": ("dog", "small"),
    "poodle": ("dog", "small"),
    "比熊": ("dog", "small"),
    "bichon": ("dog", "small"),
    "博美": ("dog", "small"),
    "pomeranian": ("dog", "small"),
    "吉娃娃": ("dog", "small"),
    "chihuahua": ("dog", "small"),
    "约克夏": ("dog", "small"),
    "yorkie": ("dog", "small"),
    "西施": ("dog", "small"),
    "shih tzu": ("dog", "small"),
    "马尔济斯": ("dog", "small"),
    "maltese": ("dog", "small"),
    "雪纳瑞": ("dog", "small"),
    "schnauzer": ("dog", "small"),
    "法斗": ("dog", "medium"),
    "法国斗牛": ("dog", "medium"),
    "french bulldog": ("dog", "medium"),
    "柯基": ("dog", "medium"),
    "corgi": ("dog", "medium"),
    "柴犬": ("dog", "medium"),
    "shiba": ("dog", "medium"),
    "比格": ("dog", "medium"),
    "beagle": ("dog", "medium"),
    "边牧": ("dog", "medium"),
    "边境牧羊犬": ("dog", "medium"),
    "border collie": ("dog", "medium"),
    "金毛": ("dog", "large"),
    "golden retriever": ("dog", "large"),
    "golden": ("dog", "large"),
    "拉布拉多": ("dog", "large"),
    "拉拉": ("dog", "large"),
    "labrador": ("dog", "large"),
    "哈士奇": ("dog", "large"),
    "二哈": ("dog", "large"),
    "husky": ("dog", "large"),
    "萨摩耶": ("dog", "large"),
    "samoyed": ("dog", "large"),
    "阿拉斯加": ("dog", "large"),
    "malamute": ("dog", "large"),
    "德牧": ("dog", "large"),
    "german shepherd": ("dog", "large"),
    "英短": ("cat", None),
    "british shorthair": ("cat", None),
    "美短": ("cat", None),
    "布偶": ("cat", None),
    "ragdoll": ("cat", None),
    "暹罗": ("cat", None),
    "siamese": ("cat", None),
    "橘猫": ("cat", None),
    "狸花": ("cat", None),
    "加菲": ("cat", None),
    "persian": ("cat", None),
    # more of the breeds customers name (sizes by the usual adult weight: under 10 kg small,
    # 10-25 kg medium, over 25 kg large; a breed that straddles a line has no size)
    **dict.fromkeys(("巴哥", "pug", "腊肠", "dachshund", "sausage dog", "蝴蝶犬", "papillon"), ("dog", "small")),
    **dict.fromkeys(("京巴", "北京犬", "pekingese", "西高地", "westie", "west highland"), ("dog", "small")),
    **dict.fromkeys(("杰克罗素", "jack russell", "骑士查理", "cavalier", "小鹿犬", "min pin"), ("dog", "small")),
    **dict.fromkeys(("玛尔济斯", "yorkshire terrier", "toy poodle", "迷你贵宾", "茶杯"), ("dog", "small")),
    **dict.fromkeys(("可卡", "cocker spaniel", "cocker", "喜乐蒂", "sheltie", "英斗", "英国斗牛"), ("dog", "medium")),
    **dict.fromkeys(("bulldog", "沙皮", "shar pei", "牛头梗", "bull terrier", "惠比特", "whippet"), ("dog", "medium")),
    **dict.fromkeys(("史宾格", "springer", "澳牧", "australian shepherd", "aussie"), ("dog", "medium")),
    **dict.fromkeys(("杜宾", "doberman", "罗威纳", "rottweiler", "大白熊", "great pyrenees"), ("dog", "large")),
    **dict.fromkeys(("伯恩山", "bernese", "圣伯纳", "saint bernard", "st bernard", "纽芬兰"), ("dog", "large")),
    **dict.fromkeys(("newfoundland", "大丹", "great dane", "秋田", "akita", "马犬", "malinois"), ("dog", "large")),
    **dict.fromkeys(("古牧", "old english sheepdog", "萨摩", "standard poodle", "标准贵宾"), ("dog", "large")),
    **dict.fromkeys(("松狮", "chow chow", "阿富汗", "afghan hound", "雪橇犬"), ("dog", None)),
    **dict.fromkeys(("缅因", "maine coon", "折耳", "scottish fold", "无毛猫", "sphynx", "金渐层"), ("cat", None)),
    **dict.fromkeys(("银渐层", "异短", "exotic shorthair", "孟加拉豹猫", "bengal", "蓝猫"), ("cat", None)),
    **dict.fromkeys(("russian blue", "俄罗斯蓝猫"), ("cat", None)),
    **dict.fromkeys(("挪威森林", "norwegian forest", "德文", "devon rex", "三花", "奶牛猫", "tabby"), ("cat", None)),
    **dict.fromkeys(("american shorthair", "美国短毛"), ("cat", None)),
}


def _find(text: str, words: tuple[str, ...] | list[str]) -> str | None:
    """The longest of ``words`` in ``text``: Chinese words anywhere, English ones as whole words
    (a plural allowed), so "qualifications" names no cat and "midday" no medium size."""
    lowered = text.lower()
    words = tuple(words)
    if _any_of(words).search(lowered) is None:
        return None  # most messages name none: one search instead of one per word
    for word, whole in _patterns(words):
        if (whole.search(lowered) is not None) if whole is not None else word in lowered:
            return word
    return None


@lru_cache(maxsize=64)
def _any_of(words: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern that matches where any of ``words`` would (the same whole-word rule)."""
    ordered = sorted(words, key=len, reverse=True)
    english = [re.escape(w) for w in ordered if w.isascii() and w[:1].isalpha()]
    other = [re.escape(w) for w in ordered if not (w.isascii() and w[:1].isalpha())]
    branches = [rf"(?<![a-z])(?:{'|'.join(english)})(?:s|es)?(?![a-z])"] if english else []
    branches += other
    return re.compile("|".join(branches) or r"(?!)")


@lru_cache(maxsize=64)
def _patterns(words: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str] | None], ...]:
    ordered = sorted(words, key=len, reverse=True)
    return tuple(
        (w, re.compile(rf"(?<![a-z]){re.escape(w)}(?:s|es)?(?![a-z])") if w.isascii() and w[:1].isalpha() else None)
        for w in ordered
    )


def species_in(text: str) -> Species | None:
    for species, words in SPECIES_WORDS.items():
        if _find(text, words):
            return species
    breed = breed_in(text)
    return BREEDS[breed][0] if breed else None


# A breed named as part of a cross ("goldendoodle", "柯基串串", "lab mix") says the species, not the size.
_CROSS = re.compile(r"doodle|oodle|\bpoo\b|\bmix\b|mixed|cross|串串|混血|串儿|土狗|田园")


def size_in(text: str) -> Size | None:
    for size, words in SIZE_WORDS.items():
        if _find(text, words):
            return size
    breed = breed_in(text)
    if breed is None or _CROSS.search(text.lower()):
        return None
    return BREEDS[breed][1]


def breed_in(text: str) -> str | None:
    return _find(text, list(BREEDS))
