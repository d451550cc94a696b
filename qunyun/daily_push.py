"""Planning the daily content push (每日内容推送): which item goes to which groups and members.

The plan for a logical date is computed in SQL (audience and suppression), rendered once per
recipient, and written to the ledger in one transaction. Nothing is sent here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, Engine, and_, case, exists, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from qunyun import ledger
from qunyun.config import Calendar, Caps, ContentItem, Slot
from qunyun.db import large_write_cache
from qunyun.errors import BadInput
from qunyun.models import (
    ContentItem as ContentItemRow,
)
from qunyun.models import (
    Delivery,
    Group,
    Member,
    Staff,
    Suppression,
    Tag,
)
from qunyun.segments import member_filter
from qunyun.templating import CheckedTemplate, load_template, robot_payload
from qunyun.vocab import (
    ACTIVITY_LABELS,
    FAN_LEVEL_LABELS,
    GROUP_KIND_LABELS,
    STAGE_LABELS,
    WEEKDAY_LABELS,
)

JOB = "daily-push"
ROBOT = "wecom_robot"
CUSTOMER = "wecom_customer"
CHUNK = 10_000
PREVIEWS_PER_STEP = 3


@dataclass
class PlanSummary:
    """What a plan holds: new rows written, breakdowns, and a few rendered previews."""

    logical_date: date
    slots: list[str]
    new_rows: int = 0
    by_column: Counter = field(default_factory=Counter)
    by_group_kind: Counter = field(default_factory=Counter)
    by_channel: Counter = field(default_factory=Counter)
    by_reason: Counter = field(default_factory=Counter)
    previews: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "date": self.logical_date.isoformat(),
            "slots": self.slots,
            "new_rows": self.new_rows,
            "by_column": dict(self.by_column),
            "by_group_kind": dict(self.by_group_kind),
            "by_channel": dict(self.by_channel),
            "suppressed_by_reason": dict(self.by_reason),
            "previews": self.previews,
        }


def slots_for(calendar: Calendar, day: date, slot: str | None) -> list[Slot]:
    if slot is not None:
        try:
            chosen = calendar.slot(slot)
        except KeyError:
            names = ", ".join(s.name for s in calendar.slots)
            raise BadInput(
                f"config/content_calendar.yaml: 没有名为 '{slot}' 的时段 (unknown slot)；已有: {names}"
            ) from None
        return [chosen] if chosen.runs_on(day) else []
    return [s for s in calendar.slots if s.runs_on(day)]


def rotation_index(rotation: str, day: date) -> int:
    return day.toordinal() if rotation == "daily" else day.toordinal() // 7


def pick_items(calendar: Calendar, slot: Slot, day: date) -> tuple[dict[str, ContentItem],
                                                                     ContentItem | None]:
    """The column's item for each group kind, and the member-level item, on this day."""
    column = calendar.columns[slot.column]
    index = rotation_index(column.rotation, day)
    valid = [item for item in column.items if item.valid_on(day)]
    by_kind: dict[str, ContentItem] = {}
    group_items = [item for item in valid if item.level == "group"]
    kinds = {kind for item in group_items for kind in item.audience.group_kinds}
    for kind in sorted(kinds):
        candidates = [item for item in group_items if kind in item.audience.group_kinds]
        by_kind[kind] = candidates[index % len(candidates)]
    member_items = [item for item in valid if item.level == "member"]
    member_item = member_items[index % len(member_items)] if member_items else None
    return by_kind, member_item


def sync_content(conn: Connection, calendar: Calendar) -> None:
    """Mirror the calendar's items into content_items, so gates and reports can see them."""
    rows = [
        {
            "id": item.id, "column_name": column_name, "title": item.title,
            "template": item.template, "msgtype": item.msgtype, "level": item.level,
            "targeting": item.audience.model_dump(), "valid_from": item.valid_from,
            "valid_to": item.valid_to,
        }
        for column_name, column in calendar.columns.items()
        for item in column.items
    ]
    if not rows:
        return
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        ContentItemRow
    )
    stmt = insert.on_conflict_do_update(
        index_elements=["id"],
        set_={c: insert.excluded[c] for c in rows[0] if c != "id"},
    )
    conn.execute(stmt, rows)


def prepare_content(engine: Engine, calendar: Calendar, env) -> int:
    """Check every template and segment, and mirror the calendar's items into the database."""
    check_templates(env, calendar)
    with engine.begin() as conn:
        check_segment_tags(conn, calendar)
        sync_content(conn, calendar)
    return len(calendar.items())


def check_segment_tags(conn: Connection, calendar: Calendar) -> None:
    """A tag no member has is almost always a typo: refuse it rather than reach nobody."""
    known = set(conn.execute(select(Tag.name)).scalars())
    if not known:
        return  # nothing imported yet: there is nothing to check against, and no one to reach
    for item in calendar.items():
        if item.level != "member":
            continue
        unknown = sorted(item.audience.tags_used() - known)
        if unknown:
            raise BadInput(
                f"config/content_calendar.yaml: 素材 {item.id} 的受众用了不存在的标签 (unknown tag) "
                f"{', '.join(unknown)}；请检查拼写或先导入客户标签"
            )


def check_templates(env, calendar: Calendar) -> dict[str, CheckedTemplate]:
    """Compile every item's template up front: a broken one stops the plan before any send."""
    checked = {}
    for item in calendar.items():
        channel = ROBOT if item.level == "group" else CUSTOMER
        checked[item.id] = load_template(env, item.template, item.level, channel, item.msgtype)
    return checked


class Planner:
    """Writes one logical date's daily-push plan into the ledger."""

    def __init__(self, conn: Connection, calendar: Calendar, caps: Caps, templates: dict,
                 day: date, progress: Callable[[int], None] | None = None):
        self.conn = conn
        self.calendar = calendar
        self.caps = caps
        self.templates = templates
        self.day = day
        self.as_of = datetime.combine(day, datetime.min.time()) + timedelta(days=1)
        self.planned_at = ledger.now()
        self.progress = progress
        self.date_value = ledger.sql_date(conn, day)
        self.planned_at_value = ledger.sql_datetime(conn, self.planned_at)

    def common_context(self, slot: Slot, item: ContentItem) -> dict:
        return {
            "date": self.day.isoformat(),
            "weekday": WEEKDAY_LABELS[self.day.weekday()],
            "slot": {"name": slot.name, "time": slot.time.strftime("%H:%M")},
            "item": {"id": item.id, "title": item.title, **item.vars},
        }

    def _row(self, step, kind, recipient, channel, sender, item, msgtype, payload, reason):
        return (
            ledger.idempotency_key(JOB, self.day, step, kind, recipient), JOB, self.date_value,
            step, kind, recipient, channel, sender, item, msgtype, payload,
            ledger.payload_hash(payload) if payload else "",
            "suppressed" if reason else "planned", reason, 0, self.planned_at_value,
        )

    def _live_counts(self, kind: str, since: date, step: str):
        """Live ledger rows per recipient since a date (what counts against the caps).

        A re-plan of the same step finds its own earlier rows; they are the rows being planned
        again, not other messages, so they don't count.
        """
        return (
            select(Delivery.recipient_id.label("rid"), func.count().label("n"))
            .where(Delivery.recipient_kind == kind,
                   Delivery.logical_date.between(since, self.day),
                   ~((Delivery.logical_date == self.day) & (Delivery.step == step)),
                   Delivery.status.in_(ledger.LIVE_STATUSES))
            .group_by(Delivery.recipient_id)
            .subquery()
        )

    def plan_group_posts(self, slot: Slot, summary: PlanSummary) -> Iterator[tuple]:
        by_kind, _ = pick_items(self.calendar, slot, self.day)
        if not by_kind:
            return
        quiet = self.caps.quiet_hours.contains(slot.time)
        today = self._live_counts("group", self.day, slot.name)
        reason = case(
            (Group.robot_secret.is_(None), literal("no_sender")),
            (literal(quiet), literal("quiet_hours")),
            (func.coalesce(today.c.n, 0) >= self.caps.group.per_day, literal("group_daily_cap")),
            else_=literal(None),
        )
        query = (
            select(Group.external_id, Group.name, Group.kind, Group.robot_secret, reason)
            .outerjoin(today, today.c.rid == Group.external_id)
            .where(Group.active.is_(True), Group.channel == ROBOT, Group.kind.in_(list(by_kind)))
            .order_by(Group.id)
        )
        contexts = {kind: self.templates[item.id].context(self.common_context(slot, item))
                    for kind, item in by_kind.items()}
        previews = 0
        for ext_id, name, kind, secret, why in self.conn.execute(query):
            item = by_kind[kind]
            payload = ""
            if why is None:
                context = contexts[kind]
                context["group"] = {"name": name, "kind": GROUP_KIND_LABELS[kind]}
                content = self.templates[item.id].render(context)
                payload = robot_payload(item.msgtype, content, item.vars)
                if previews < PREVIEWS_PER_STEP:
                    previews += 1
                    summary.previews.append({"slot": slot.name, "item": item.id,
                                             "to": f"群 {name}", "content": content})
            summary.by_column[slot.column] += 1
            summary.by_group_kind[GROUP_KIND_LABELS[kind]] += 1
            summary.by_channel[ROBOT] += 1
            if why:
                summary.by_reason[why] += 1
            yield self._row(slot.name, "group", ext_id, ROBOT, secret, item.id, item.msgtype,
                            payload, why)

    def plan_member_messages(self, slot: Slot, summary: PlanSummary) -> Iterator[tuple]:
        _, item = pick_items(self.calendar, slot, self.day)
        if item is None:
            return
        quiet = self.caps.quiet_hours.contains(slot.time)
        today = self._live_counts("member", self.day, slot.name)
        week_start = self.day - timedelta(days=self.day.weekday())
        week = self._live_counts("member", week_start, slot.name)
        suppressed = (
            select(Suppression.member_id)
            .where((Suppression.until.is_(None)) | (Suppression.until >= self.day))
            .scalar_subquery()
        )
        capped = Member.whitelisted.is_(False)  # 白名单 members are exempt from frequency caps
        reason = case(
            (Member.is_staff.is_(True), literal("staff")),
            (Member.opted_out.is_(True), literal("opted_out")),
            (Member.blacklisted.is_(True), literal("blacklisted")),
            (Member.id.in_(suppressed), literal("suppression_list")),
            (Member.owner_userid.is_(None), literal("no_sender")),
            (literal(quiet), literal("quiet_hours")),
            (and_(capped, func.coalesce(today.c.n, 0) >= self.caps.member.per_day),
             literal("member_daily_cap")),
            (and_(capped, func.coalesce(week.c.n, 0) >= self.caps.member.per_week),
             literal("member_weekly_cap")),
            else_=literal(None),
        )
        query = (
            select(Member.external_id, Member.nickname, Member.stage, Member.activity_state,
                   Member.fan_level, Member.owner_userid, Staff.name, reason)
            .outerjoin(Staff, Staff.userid == Member.owner_userid)
            .outerjoin(today, today.c.rid == Member.external_id)
            .outerjoin(week, week.c.rid == Member.external_id)
            .where(member_filter(item.audience, self.as_of))
            .order_by(Member.id)
        )
        if item.once_per_member:
            query = query.where(~exists().where(
                Delivery.recipient_kind == "member", Delivery.recipient_id == Member.external_id,
                Delivery.content_item == item.id, Delivery.logical_date != self.day,
                Delivery.status.in_(ledger.LIVE_STATUSES)))
        template = self.templates[item.id]
        context = template.context(self.common_context(slot, item))
        previews = 0
        rows = self.conn.execution_options(yield_per=CHUNK).execute(query)
        for ext_id, nickname, stage, state, fan, owner, staff_name, why in rows:
            payload = ""
            if why is None:
                context["member"] = {
                    "nickname": nickname, "stage": STAGE_LABELS.get(stage, stage),
                    "activity": ACTIVITY_LABELS.get(state, state),
                    "fan_level": FAN_LEVEL_LABELS.get(fan, fan),
                }
                context["staff"] = {"name": staff_name or ""}
                payload = template.render(context)
                if previews < PREVIEWS_PER_STEP:
                    previews += 1
                    summary.previews.append({"slot": slot.name, "item": item.id,
                                             "to": f"客户 {nickname}", "content": payload})
            summary.by_column[slot.column] += 1
            summary.by_group_kind["客户群发"] += 1
            summary.by_channel[CUSTOMER] += 1
            if why:
                summary.by_reason[why] += 1
            yield self._row(slot.name, "member", ext_id, CUSTOMER, owner, item.id, "text",
                            payload, why)

    def write(self, rows: Iterator[tuple], summary: PlanSummary) -> None:
        chunk: list[tuple] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= CHUNK:
                summary.new_rows += ledger.insert_plan_rows(self.conn, chunk)
                if self.progress:
                    self.progress(len(chunk))
                chunk = []
        summary.new_rows += ledger.insert_plan_rows(self.conn, chunk)
        if self.progress and chunk:
            self.progress(len(chunk))

    def plan(self, slots: list[Slot]) -> PlanSummary:
        summary = PlanSummary(self.day, [s.name for s in slots])
        for slot in sorted(slots, key=lambda s: s.time):
            self.write(self.plan_group_posts(slot, summary), summary)
            self.write(self.plan_member_messages(slot, summary), summary)
        return summary


def plan_daily_push(engine: Engine, calendar: Calendar, caps: Caps, env, day: date,
                    slot: str | None = None, dry_run: bool = False,
                    progress: Callable[[int], None] | None = None) -> PlanSummary:
    """Plan the day's push in one transaction; a dry run computes the same and rolls back."""
    templates = check_templates(env, calendar)
    slots = slots_for(calendar, day, slot)
    with engine.connect() as conn, large_write_cache(conn):
        transaction = conn.begin()
        try:
            summary = Planner(conn, calendar, caps, templates, day, progress).plan(slots)
        except BaseException:
            transaction.rollback()
            raise
        if dry_run:
            transaction.rollback()
        else:
            transaction.commit()
    return summary
