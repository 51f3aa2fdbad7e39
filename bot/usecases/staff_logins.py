"""Console logins managed from the command line (``chatbook staff logout``)."""

from __future__ import annotations

from sqlalchemy import select

from core.models import StaffAccount
from core.staff_accounts import StaffAccounts


async def logout_everywhere(accounts: StaffAccounts, username: str) -> int | None:
    """End every session of the account (open consoles close within seconds); how many ended,
    or None when there is no such account."""
    async with accounts.db.reading() as s:
        account_id = await s.scalar(select(StaffAccount.id).where(StaffAccount.username == username))
    if account_id is None:
        return None
    return await accounts.logout_everywhere(account_id)
