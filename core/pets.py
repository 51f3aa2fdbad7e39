"""What customers call their pets: species words and common breeds with their usual size.

Used to understand "给我家金毛洗澡" (a golden retriever is a large dog) without asking.
"""

from __future__ import annotations

import re
from typing import Literal

Species = Literal["dog", "cat"]
Size = Literal["small", "medium", "large"]

SPECIES_WORDS: dict[Species, tuple[str, ...]] = {
    "dog": ("狗狗", "狗子", "小狗", "狗", "犬", "汪", "puppy", "doggy", "dog"),
    "cat": ("猫咪", "小猫", "猫猫", "猫", "喵", "kitten", "kitty", "cat"),
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
}


def _find(text: str, words: tuple[str, ...] | list[str]) -> str | None:
    lowered = text.lower()
    for word in sorted(words, key=len, reverse=True):
        if word in lowered:
            return word
    return None


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
