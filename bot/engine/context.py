"""What a question asked in the middle of a flow is probably about.

A receptionist who has just asked "how big is Hazel?" hears "what counts as medium?" as a
question about sizes, and "is there a fee for changing it?" during a reschedule as one about
changing bookings. These are the words of each open question's topic (recognition data, both
languages always: customers mix them) and the service being booked; flows.answer_from_faq reads
a question with them only to choose between FAQ entries the question itself already points at.
"""

from __future__ import annotations

from bot.engine.draft import Mode, StateName
from bot.engine.turn import Turn

_STATE_TOPICS: dict[StateName, str] = {
    StateName.PET_SIZE: "size small medium large kg weight 体型 大小 小型 中型 大型 公斤 斤",
    StateName.VACCINATION: "vaccine vaccination rabies record 疫苗 狂犬 疫苗本",
    StateName.PET_SPECIES: "dog cat 狗 猫",
    StateName.RESCHEDULE_CONFIRM: "reschedule change booking 改期 改时间 预约",
    StateName.CANCEL_CONFIRM: "cancel booking 取消 预约",
    StateName.BOOKING_ACTIONS: "reschedule cancel change booking 改期 取消 预约",
    StateName.ADDON_CHOOSE: "add-on extra 加项 附加",
    StateName.ADDON_CONFIRM: "add-on extra 加项 附加",
}
_MODE_TOPICS: dict[Mode, str] = {
    Mode.RESCHEDULE: "reschedule change booking 改期 改时间 预约",
    Mode.MANAGE: "booking change cancel 预约 取消 改期",
}


def question_contexts(t: Turn) -> list[str]:
    """What the conversation is about right now, nearest first: the open question's topic, the
    flow's (a reschedule), the service being booked; none out of a flow."""
    if t.state == StateName.IDLE:
        return []
    draft = t.draft
    contexts = [_STATE_TOPICS.get(t.state, ""), _MODE_TOPICS.get(draft.mode, "") if draft.mode else ""]
    if draft.service:
        contexts.append(t.service_name(draft.service))
    elif draft.category:
        contexts.append(t.category_name(draft.category))
    return [c for c in contexts if c]
