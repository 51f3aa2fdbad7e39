"""The zh and en catalogs say the same things: same keys, same placeholders."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from core.i18n import language_tag, placeholders, texts


def test_catalogs_have_the_same_keys_and_placeholders() -> None:
    zh, en = texts("zh").entries, texts("en").entries
    assert sorted(zh) == sorted(en)
    for key in zh:
        if isinstance(zh[key], str):
            assert placeholders(zh[key]) == placeholders(en[key]), key
        else:
            assert len(zh[key]) == len(en[key]), key


def test_times_are_written_in_the_shop_zone() -> None:
    moment = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    shanghai = ZoneInfo("Asia/Shanghai")
    assert texts("zh").format_when(moment, shanghai) == "11月23日（周一）10:00"
    assert texts("en").format_when(moment, shanghai) == "Mon 23 Nov, 10:00"
    assert texts("en").format_price(88) == "¥88"
    assert texts("zh").format_price(12.5) == "¥12.5"


def test_no_key_was_read_as_a_yaml_boolean() -> None:
    # YAML 1.1 reads bare yes/no/on/off keys as booleans: the text would silently be missing.
    for lang in ("zh", "en"):
        parts = {part for key in texts(lang).entries for part in key.split(".")}
        assert not parts & {"True", "False"}, lang


def test_one_mapping_from_language_tags_to_ours() -> None:
    # Telegram's language_code, the widget's navigator.language, a browser's Accept-Language
    assert [language_tag(t) for t in ("zh-hans", "zh-TW", "en", "en-GB,en;q=0.9", " EN-us")] == [
        "zh",
        "zh",
        "en",
        "en",
        "en",
    ]
    assert [language_tag(t) for t in ("fr", "", None, "de-CH,zh;q=0.5")] == [None, None, None, None]
