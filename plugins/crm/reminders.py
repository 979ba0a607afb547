"""Scheduled follow-up reminders (a job ``dovetail worker`` runs daily).

For every user with open follow-up tasks due today or earlier (company time zone), one
``crm.followup.due`` event carries how many are due today and overdue and their ids, so an
integration (SMS, WeCom, e-mail through a webhook) can remind the rep.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select

from core.db import db
from core.events import emit
from plugins.crm.models import Activity
from plugins.crm.services import today_local

JOB_NAME = "crm.followup_reminder"
EVENT_FOLLOW_UP_DUE = "crm.followup.due"
#: At most this many task ids travel in one reminder (the counts are always complete).
MAX_IDS = 200


def follow_up_reminders() -> int:
    """Emit one reminder per assignee of open tasks due today or overdue; returns how many."""
    today = today_local()
    rows = db.session.execute(
        select(Activity.id, Activity.assignee_id, Activity.due_date)
        .where(Activity.done.is_(False), Activity.due_date.is_not(None), Activity.due_date <= today,
               Activity.assignee_id.is_not(None))
        .order_by(Activity.assignee_id, Activity.due_date, Activity.id)).all()
    per_user: dict[int, dict[str, Any]] = defaultdict(lambda: {"due_today": 0, "overdue": 0, "activity_ids": []})
    for activity_id, assignee_id, due in rows:
        entry = per_user[assignee_id]
        entry["due_today" if due == today else "overdue"] += 1
        if len(entry["activity_ids"]) < MAX_IDS:
            entry["activity_ids"].append(activity_id)
    for assignee_id, entry in per_user.items():
        emit(EVENT_FOLLOW_UP_DUE, assignee_id=assignee_id, day=today.isoformat(), **entry)
    db.session.commit()
    return len(per_user)
