"""WeChat template notices: payloads checked against WeChat's field rules (since 2023-05).

Keyword fields only (first/remark refused), each value one line within its type's limit, cut on
a character boundary with an ellipsis; only service notices may become template messages; the
field types are checked by `config check` with the line of the mistake.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.wechat_templates import LIMITS, cut, fit, notice_kind, notice_values, rule_problem, template_message
from core.config import AppConfig, ConfigError, WeChatConfig, load_config, wechat_field_type
from core.messages import Button, IncomingMessage, OutgoingMessage

ROOT = Path(__file__).resolve().parent.parent


def wechat(**extra: object) -> WeChatConfig:
    return WeChatConfig.model_validate({"app_id": "wx1", "app_secret": "s", "token": "t", **extra})


TEMPLATES = {
    "reminder": {
        "template_id": "TPL-REMIND",
        "fields": {"thing1": "service", "time2": "time", "character_string3": "code", "thing4": "address"},
    },
    "booking_change": {
        "template_id": "TPL-CHANGE",
        "fields": {"thing1": "title", "phrase2": "status", "time3": "time"},
    },
    "shop_change": {"template_id": "TPL-SHOP", "fields": {"thing1": "body", "name2": "staff"}},
    "waitlist_offer": {"template_id": "TPL-WAIT", "fields": {"thing1": "service", "date2": "time"}},
}


def facts(demo_config: AppConfig, **extra: str) -> dict[str, object]:
    shop = demo_config.shops["pawspa"]
    values = notice_values(
        shop,
        lang="zh",
        service_id="dog_bath_small",
        staff_id=next(iter(shop.staff)),
        start=datetime(2026, 11, 21, 2, 0, tzinfo=UTC),
        code="K7Q2MX",
        pet_name="豆豆",
        status="已改期",
    )
    return {**values, **extra}


def assert_follows_wechat_rules(payload_data: dict[str, dict[str, str]], types: dict[str, str]) -> None:
    assert "first" not in payload_data and "remark" not in payload_data
    for name, body in payload_data.items():
        assert set(body) == {"value"}
        assert rule_problem(body["value"], types[name]) is None, (name, body["value"])


def test_reminder_payload_has_keyword_fields_only_within_limits(demo_config: AppConfig) -> None:
    cfg = wechat(templates=TEMPLATES)
    long_address = "上海市徐汇区宛平南路88号1楼靠近地铁站三号口旁边的宠物店二楼"
    details = {"reminder_kind": "day_before", "notice": facts(demo_config, address=long_address)}
    message = template_message(cfg, "reminder", details, "明天见！\n10:00 小型犬洗澡")
    assert message is not None and message.template_id == "TPL-REMIND"
    types = {"thing1": "thing", "time2": "time", "character_string3": "character_string", "thing4": "thing"}
    assert_follows_wechat_rules(message.data, types)
    assert message.data["time2"]["value"] == "2026年11月21日 10:00"  # the shop's wall clock (Asia/Shanghai)
    assert message.data["character_string3"]["value"] == "K7Q2MX"
    address = message.data["thing4"]["value"]
    assert len(address) == LIMITS["thing"] and address.endswith("…") and long_address.startswith(address[:-1])


def test_every_service_notice_kind_renders_and_follows_the_rules(demo_config: AppConfig) -> None:
    cfg = wechat(templates=TEMPLATES)
    cases = [
        ("notice", {"reminder_kind": "cancelled"}, "TPL-CHANGE"),
        ("reminder", {"reminder_kind": "confirmation"}, "TPL-CHANGE"),
        ("notice", {"reminder_kind": "shop_change"}, "TPL-SHOP"),
        ("notice", {"reminder_kind": "waitlist_offer"}, "TPL-WAIT"),
    ]
    text = "您的预约有变动，请点开对话查看可选的新时间以及为表歉意赠送的服务\n" + "第二行也很长" * 8
    for outbox_kind, details, template_id in cases:
        message = template_message(cfg, outbox_kind, {**details, "notice": facts(demo_config)}, text)
        assert message is not None and message.template_id == template_id
        types = {name: wechat_field_type(name) or "thing" for name in message.data}
        assert_follows_wechat_rules(message.data, types)
    change = template_message(cfg, "notice", {"reminder_kind": "rescheduled", "notice": facts(demo_config)}, text)
    assert change is not None and change.data["phrase2"]["value"] == "已改期"


def test_staff_replies_marketing_and_chat_never_use_templates(demo_config: AppConfig) -> None:
    cfg = wechat(templates=TEMPLATES, reminder_template_id="LEGACY")
    for outbox_kind, details in [
        ("staff", {}),
        ("message", {}),  # chat replies and shop news (`chatbook notice send`)
        ("notice", {"reminder_kind": "rebook"}),  # "time for the next bath?" is marketing
        ("notice", {"reminder_kind": "follow_up"}),
        ("anything", {}),
    ]:
        assert notice_kind(outbox_kind, details) is None
        assert template_message(cfg, outbox_kind, {**details, "notice": facts(demo_config)}, "hello") is None


def test_a_template_with_a_missing_value_is_not_sent() -> None:
    cfg = wechat(templates=TEMPLATES)
    assert template_message(cfg, "reminder", {"reminder_kind": "day_before"}, "明天见") is None  # no time, no code


def test_legacy_template_settings_drop_first_and_remark() -> None:
    default = wechat(reminder_template_id="OLD")  # template_fields defaults to {first: title, remark: body}
    assert template_message(default, "reminder", {"reminder_kind": "day_before"}, "明天见\n10:00") is None
    fields = {"first": "title", "keyword1": "text", "remark": "body"}
    legacy = wechat(reminder_template_id="OLD", template_fields=fields)
    message = template_message(legacy, "reminder", {"reminder_kind": "day_before"}, "明天见\n" + "很长" * 30)
    assert message is not None and set(message.data) == {"keyword1"}
    value = message.data["keyword1"]["value"]
    assert len(value) == 20 and value.endswith("…") and "\n" not in value
    assert template_message(legacy, "staff", {}, "hi") is None


def test_cut_keeps_whole_characters() -> None:
    assert cut("短", 20) == "短"
    assert cut("a" * 25, 20) == "a" * 19 + "…"
    family = "👨\u200d👩\u200d👧"
    cutting = cut("x" * 17 + family + "tail", 20)
    assert "\u200d" not in cutting[-2:] and cutting.endswith("…")
    accented = cut("e" * 18 + "e\u0301" + "zz", 20)  # never leave the accent without its letter
    assert accented == "e" * 18 + "…"
    assert fit("预约\n成功", "thing") == "预约 成功"
    assert fit("已改期啦！abc", "phrase") == "已改期啦"
    assert fit("AB-12 中文 " + "9" * 40, "character_string") == ("AB-12" + "9" * 40)[:29] + "..."
    assert fit("2026-03-29T10:00:00+02:00", "time") == "2026年3月29日 10:00"
    assert fit("2026-03-29T10:00:00+02:00", "date") == "2026年3月29日"
    assert rule_problem("今天", "time") is not None
    assert rule_problem("abc", "phrase") is not None


def write_config(tmp_path: Path, wechat_block: str) -> Path:
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    marker = "    channels:\n      web:\n"
    assert marker in text
    text = text.replace(marker, "    channels:\n" + wechat_block + "      web:\n", 1)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_check_validates_each_field_type(tmp_path: Path) -> None:
    good = """      wechat:
        app_id: wx1
        app_secret: s
        token: t
        templates:
          reminder:
            template_id: TPL
            fields: {thing1: service, time2: time, character_string3: code, keyword4: {value: title, type: thing}}
"""
    config = load_config(write_config(tmp_path, good), environ={})
    assert config.shops["pawspa"].channels.wechat is not None
    bad = """      wechat:
        app_id: wx1
        app_secret: s
        token: t
        templates:
          reminder:
            template_id: TPL
            fields: {first: title, time2: service, phrase3: code, keyword4: body, thing5: {value: code, type: time}}
          marketing:
            template_id: TPL2
            fields: {thing1: text}
"""
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, bad), environ={})
    report = str(caught.value)
    assert "first/remark" in report
    assert "'time2': a time field can show time, not 'service'" in report
    assert "'phrase3'" in report and "'keyword4': type unknown" in report
    assert "'thing5': the name says thing but type is time" in report
    assert "templates.marketing" in report
    lines = {issue.line for issue in caught.value.issues}
    assert all(line > 1 for line in lines)


class NoEngine:
    async def handle(self, msg: IncomingMessage, *, replay: bool = True) -> list[OutgoingMessage]:
        raise AssertionError("the sender never calls the engine")


async def test_the_sender_bridges_a_closed_window_only_for_service_notices(demo_config: AppConfig) -> None:
    from channels.base import ChannelContext, DeliveryError
    from channels.wechat import WeChatSender
    from core.clock import FixedClock
    from tests.channels.fake_wechat import FakeWeChatApi
    from tests.channels.fake_wechat import wechat_config as fake_wechat_config

    api = await FakeWeChatApi().start()
    try:
        cfg = fake_wechat_config(api.url, aes=False).model_copy(
            update={"templates": wechat(templates=TEMPLATES).templates, "reminder_template_id": "LEGACY"}
        )
        shop = demo_config.shops["pawspa"]
        shops = {
            **demo_config.shops,
            "pawspa": shop.model_copy(update={"channels": shop.channels.model_copy(update={"wechat": cfg})}),
        }
        ctx = ChannelContext(
            config=demo_config.model_copy(update={"shops": shops}), engine=NoEngine(), clock=FixedClock()
        )
        sender = WeChatSender(ctx)
        reminder = OutgoingMessage("明天见哦~\n小型犬洗澡 · 11月21日 10:00", (Button("我会准时到", "rc:1"),))
        details = {"reminder_kind": "day_before", "notice": facts(demo_config)}
        api.fail_next(45015)
        assert await sender.send("pawspa", "oUser_0001", reminder, kind="reminder", details=details)
        [sent] = api.templates
        assert sent["template_id"] == "TPL-REMIND"
        types = {name: wechat_field_type(name) or "thing" for name in sent["data"]}
        assert_follows_wechat_rules(sent["data"], types)
        for kind, extra in (("staff", {}), ("message", {}), ("notice", {"reminder_kind": "rebook"})):
            api.fail_next(45015)
            with pytest.raises(DeliveryError) as refused:
                await sender.send("pawspa", "oUser_0001", OutgoingMessage("新品八折！"), kind=kind, details=extra)
            assert refused.value.permanent and refused.value.reason == "window closed"
        assert len(api.templates) == 1  # staff replies and marketing never went out as templates
    finally:
        await api.stop()


# ----------------------------------------------------------------------------- through the outbox


def with_templates(demo_config: AppConfig, api_url: str) -> AppConfig:
    from tests.channels.fake_wechat import wechat_config as fake_wechat_config

    cfg = fake_wechat_config(api_url, aes=False).model_copy(update={"templates": wechat(templates=TEMPLATES).templates})
    shop = demo_config.shops["pawspa"]
    channels = shop.channels.model_copy(update={"wechat": cfg})
    shops = {**demo_config.shops, "pawspa": shop.model_copy(update={"channels": channels})}
    return demo_config.model_copy(update={"shops": shops})


async def test_reminders_outside_the_window_reach_wechat_as_template_notices(
    demo_config: AppConfig, db_url: str
) -> None:
    """The whole way: booking -> reminder row -> outbox (with the notice's facts) -> delivery loop ->
    WeChat refuses the customer service message (45015, window closed) -> a template message that
    follows WeChat's rules. A staff reply in the same situation never becomes a template."""
    from datetime import timedelta

    from bot.bootstrap import bootstrap
    from channels.base import ChannelContext
    from channels.wechat import WeChatSender
    from core.bookings import BookingRequest
    from core.clock import FixedClock
    from core.i18n import texts
    from core.results import Actor, Booked
    from tests.channels.fake_wechat import FakeWeChatApi
    from tests.conftest import NOW
    from tests.helpers import MON, at
    from tests.support.collecting import CollectingChannel

    api = await FakeWeChatApi().start()
    clock = FixedClock(NOW)
    config = with_templates(demo_config, api.url)
    ctx = ChannelContext(config=config, engine=NoEngine(), clock=clock)
    services = await bootstrap(config, clock=clock, database_url=db_url, senders_override={"wechat": WeChatSender(ctx)})
    try:
        chat = CollectingChannel(services.engine, "pawspa", user="oUser_0001", channel="wechat")
        await chat.push("你好")
        customer = await services.customers.identify("pawspa", "wechat", "oUser_0001")
        booked = await services.bookings.book(
            BookingRequest("pawspa", "grooming", at(MON, "10:00"), customer_id=customer.id), Actor.customer(customer.id)
        )
        assert isinstance(booked, Booked)  # grooming waits for the shop's approval
        await services.bookings.approve("pawspa", booked.booking.id, Actor.staff("lin"))
        assert await services.reminders.tick() == 1  # the confirmation, due at once
        api.fail_next(45015)  # the customer last wrote more than 48 hours ago
        assert await services.delivery.tick() == 1
        [confirmation] = api.templates
        assert confirmation["template_id"] == "TPL-CHANGE" and confirmation["touser"] == "oUser_0001"
        data = confirmation["data"]
        assert_follows_wechat_rules(data, {name: wechat_field_type(name) or "thing" for name in data})
        assert data["phrase2"]["value"] == texts("zh").t("notice_status.confirmation")
        assert data["time3"]["value"] == "2026年11月23日 10:00"  # the shop's wall clock
        assert api.messages == []

        conv = await services.store.open("pawspa", "wechat", "oUser_0001", customer_id=customer.id, language="zh")
        staff_id = await services.store.enqueue(conv, OutgoingMessage("新品八折！"), author="staff:lily")
        api.fail_next(45015)
        await services.delivery.tick()
        assert len(api.templates) == 1  # a staff reply never goes as a template
        assert [r.id for r in await services.outbox.needing_staff("pawspa")] == [staff_id]

        clock.set(at(MON, "00:00") - timedelta(hours=5, minutes=59))  # Sunday 18:01 in Shanghai
        assert await services.reminders.tick() == 1  # the day before
        api.fail_next(45015)
        assert await services.delivery.tick() == 1
        reminder = api.templates[-1]
        assert reminder["template_id"] == "TPL-REMIND"
        data = reminder["data"]
        assert_follows_wechat_rules(data, {name: wechat_field_type(name) or "thing" for name in data})
        assert data["character_string3"]["value"] == booked.booking.code
        assert data["thing1"]["value"] == demo_config.shops["pawspa"].services["grooming"].name.get("zh")[:20]
    finally:
        await services.close()
        await api.stop()


def test_notice_facts_for_an_english_reader_keep_phrases_chinese(demo_config: AppConfig) -> None:
    from bot.notice_texts import notice_facts
    from core.i18n import texts
    from core.models import Booking

    shop = demo_config.shops["pawspa"]
    visit = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    booking = Booking(shop_id="pawspa", service_id="dog_bath_small", staff_id=None, start_at=visit, code="K7Q2MX")
    facts_en = notice_facts("cancelled", booking, shop, "Bean", "en")
    assert facts_en["service"] == shop.services["dog_bath_small"].name.get("en")
    assert facts_en["staff"] == texts("en").t("reminder.staff_any")  # anyone free: still a value
    details = {"reminder_kind": "cancelled", "notice": facts_en}
    message = template_message(wechat(templates=TEMPLATES), "notice", details, "x")
    assert message is not None
    assert message.data["phrase2"]["value"] == texts("zh").t("notice_status.cancelled")  # WeChat: Chinese only
    assert message.data["time3"]["value"] == "2026年11月23日 10:00"
