"""The application layer: the use cases the staff console, the CLI and the engine share.

One module per family, named for it; each function is one use case, takes the wired parts it
needs (``bot.bootstrap.Services`` or a narrower part such as the conversation store) and
returns a typed outcome. Adapters (bot/console/api.py, bot/cli.py, bot/web.py) parse their
input, call one of these and render the outcome; they hold no SQL and no business rule.

    handoff         take / reply / note / release a chat, hand one to staff; the inbox lists
    day_view        a shop's bookings for a day or a week, the approvals waiting
    manual_booking  staff book a customer who phoned or walked in
    booking_actions staff approve / decline / cancel / reschedule / mark attendance / follow up
    time_off        staff time off (affected customers offered alternatives)
    notices         shop news to customers who opted in; opting in and out
    staff_calls     whom staff must phone (unanswered shop changes, undeliverable messages)
    reports         the figures' date range rules (core/reports.py computes them)
    late_replies    replies that missed a channel's inline window go through the outbox
    staff_logins    console logins managed from the CLI

Domain rules stay in core/ (bookings, cut-offs, reminders); these functions only sequence
core services, publish console events and keep the adapters' behaviour identical.
"""

from bot.usecases.errors import Refused

__all__ = ["Refused"]
