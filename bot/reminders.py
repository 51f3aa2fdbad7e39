"""Kept only for one import of bot/engine/policy.py (``compose_shop_change``), until it imports
bot/notice_texts.py: the reminder notifier is bot/notifier.py, the planner core/reminders.py.
Nothing else may import this module; delete it with that import."""

from bot.notice_texts import compose_shop_change

__all__ = ["compose_shop_change"]
