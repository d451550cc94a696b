"""The data-quality specification (数据质量规范): what the data every flow acts on must look like.

Read this module like documentation of the data, in the spirit of dbt's schema tests. Each
suite names a table (optionally a window of it the flows act on) and a list of checks; each
check is one Great Expectations 1.x expectation with a plain-language Chinese description and
a severity:

- ``critical`` (严重): a failure stops the flow before anything is planned (CLI exit 3).
- ``warning`` (警告): a failure is published and logged; the flow goes on.

Parameters the runner fills in at run time:

- ``{"$PARAMETER": "as_of"}`` in an expectation's arguments (GX suite parameters), and
- ``:as_of`` / ``:window_start`` inside SQL (``UnexpectedRowsExpectation`` queries and a
  suite's ``where`` window), replaced by timestamp literals.

``as_of`` is the moment the data is looked at (default: now), ``window_start`` is
``as_of - window_days``. Adding a suite is one more entry in ``SUITES``; adding a check is one
more line in a suite.

Writing SQL checks: ``{batch}`` is the suite's table (or window) as a derived table. In a
query without a JOIN, GX aliases it itself (``FROM {batch} WHERE ...``); a query with a JOIN
must alias it (``FROM {batch} ms LEFT JOIN members m ON ...``). Reference checks use
``LEFT JOIN ... IS NULL`` (an anti-join on PostgreSQL too, never ``NOT IN (subquery)``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no phoning home, before GX loads

import great_expectations.expectations as gxe  # noqa: E402

from qunyun.models import (  # noqa: E402
    ACTIVITY_STATES,
    EVENT_KINDS,
    FAN_LEVELS,
    GROUP_KINDS,
    ROLES,
    STAGES,
)

Severity = Literal["critical", "warning"]
CRITICAL: Severity = "critical"
WARNING: Severity = "warning"

MSGTYPES = ("text", "markdown", "news")
CONTENT_LEVELS = ("group", "member")
AS_OF = {"$PARAMETER": "as_of"}


@dataclass(frozen=True)
class Check:
    """One rule: a stable key, the Chinese description operators read, a severity, the GX
    expectation that tests it. The expectation is a template; the runner copies it per run."""

    key: str
    description: str
    severity: Severity
    expectation: gxe.Expectation


@dataclass(frozen=True)
class Suite:
    """The checks over one table, or over the window of it (``where``) the flows act on."""

    name: str
    title: str
    table: str
    checks: tuple[Check, ...]
    where: str | None = None  # SQL condition selecting the rows to check; may use :as_of etc.
    window_days: int = 90
    pii_columns: frozenset[str] = field(default_factory=lambda: frozenset({"phone"}))


def critical(key: str, description: str, expectation: gxe.Expectation) -> Check:
    return Check(key, description, CRITICAL, expectation)


def warning(key: str, description: str, expectation: gxe.Expectation) -> Check:
    return Check(key, description, WARNING, expectation)


def rows(sql: str) -> gxe.UnexpectedRowsExpectation:
    """A SQL check: the query selects the rows that break the rule (none = pass)."""
    return gxe.UnexpectedRowsExpectation(unexpected_rows_query=sql)


# ---------------------------------------------------------------------------------------------
# 客户 members
# ---------------------------------------------------------------------------------------------
MEMBERS = Suite(
    name="members",
    title="客户 members",
    table="members",
    checks=(
        critical("external_id_not_null", "客户ID 不能为空",
                 gxe.ExpectColumnValuesToNotBeNull(column="external_id")),
        critical("external_id_unique", "客户ID 不能重复",
                 gxe.ExpectColumnValuesToBeUnique(column="external_id")),
        critical("stage_in_set", f"生命周期阶段 stage 只能是 {'/'.join(STAGES)}",
                 gxe.ExpectColumnValuesToBeInSet(column="stage", value_set=list(STAGES))),
        critical("activity_state_in_set",
                 f"活跃状态 activity_state 只能是 {'/'.join(ACTIVITY_STATES)}",
                 gxe.ExpectColumnValuesToBeInSet(column="activity_state",
                                                 value_set=list(ACTIVITY_STATES))),
        critical("fan_level_in_set", f"粉丝等级 fan_level 只能是 {'/'.join(FAN_LEVELS)}",
                 gxe.ExpectColumnValuesToBeInSet(column="fan_level", value_set=list(FAN_LEVELS))),
        critical("phone_11_digits", "手机号如填写必须是 11 位",
                 gxe.ExpectColumnValueLengthsToEqual(column="phone", value=11)),
        critical("joined_at_not_future", "入群/添加时间不能晚于检查时刻 (as_of)",
                 gxe.ExpectColumnValuesToBeBetween(column="joined_at", max_value=AS_OF)),
        critical("total_spend_non_negative", "累计消费 total_spend 不能为负数",
                 gxe.ExpectColumnValuesToBeBetween(column="total_spend", min_value=0)),
        warning("owner_mostly_present", "至少 90% 的客户有归属员工 (owner_userid)",
                gxe.ExpectColumnValuesToNotBeNull(column="owner_userid", mostly=0.9)),
    ),
)

# ---------------------------------------------------------------------------------------------
# 群成员关系 memberships
# ---------------------------------------------------------------------------------------------
MEMBERSHIPS = Suite(
    name="memberships",
    title="群成员关系 memberships",
    table="memberships",
    checks=(
        critical("member_exists", "群成员关系指向的客户必须存在",
                 rows("SELECT ms.id, ms.member_id FROM {batch} ms "
                      "LEFT JOIN members m ON m.id = ms.member_id WHERE m.id IS NULL")),
        critical("group_exists", "群成员关系指向的社群必须存在",
                 rows("SELECT ms.id, ms.group_id FROM {batch} ms "
                      "LEFT JOIN groups g ON g.id = ms.group_id WHERE g.id IS NULL")),
        critical("role_in_set", f"群内角色 role 只能是 {'/'.join(ROLES)}",
                 gxe.ExpectColumnValuesToBeInSet(column="role", value_set=list(ROLES))),
        critical("left_after_joined", "退群时间不能早于入群时间",
                 gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                     column_A="left_at", column_B="joined_at", or_equal=True,
                     ignore_row_if="either_value_is_missing")),
    ),
)

# ---------------------------------------------------------------------------------------------
# 行为事件 events: the window the flows act on (the last 90 days before as_of, plus anything
# dated after as_of or undated, which are exactly the rows the checks below must catch).
# ---------------------------------------------------------------------------------------------
EVENTS = Suite(
    name="events",
    title="行为事件 events (近 90 天)",
    table="events",
    where="occurred_at >= :window_start OR occurred_at IS NULL",
    window_days=90,
    checks=(
        critical("kind_in_set", f"事件类型 kind 只能是 {'/'.join(EVENT_KINDS)}",
                 gxe.ExpectColumnValuesToBeInSet(column="kind", value_set=list(EVENT_KINDS))),
        critical("occurred_at_not_null", "事件发生时间不能为空",
                 gxe.ExpectColumnValuesToNotBeNull(column="occurred_at")),
        critical("occurred_at_not_future", "事件发生时间不能晚于检查时刻 (as_of)",
                 gxe.ExpectColumnValuesToBeBetween(column="occurred_at", max_value=AS_OF)),
        critical("amount_non_negative", "金额不能为负数 (购买等事件)",
                 gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0)),
        warning("purchase_has_amount", "购买事件应填写金额",
                rows("SELECT id, member_id, occurred_at FROM {batch} "
                     "WHERE kind = 'purchase' AND amount IS NULL")),
        # Distinct ids first: one lookup per member, not per event (the window's member ids
        # stream out of ix_events_member_occurred in order).
        critical("member_exists", "事件指向的客户必须存在",
                 rows("SELECT e.member_id FROM (SELECT DISTINCT member_id FROM {batch} w) e "
                      "LEFT JOIN members m ON m.id = e.member_id WHERE m.id IS NULL")),
    ),
)

# ---------------------------------------------------------------------------------------------
# 素材 content_items
# ---------------------------------------------------------------------------------------------
CONTENT = Suite(
    name="content",
    title="素材 content_items",
    table="content_items",
    checks=(
        critical("id_unique", "素材ID 不能重复",
                 gxe.ExpectColumnValuesToBeUnique(column="id")),
        critical("msgtype_in_set", f"消息类型 msgtype 只能是 {'/'.join(MSGTYPES)}",
                 gxe.ExpectColumnValuesToBeInSet(column="msgtype", value_set=list(MSGTYPES))),
        critical("level_in_set", "投放层级 level 只能是 group(群)/member(个人)",
                 gxe.ExpectColumnValuesToBeInSet(column="level", value_set=list(CONTENT_LEVELS))),
        critical("template_not_null", "素材必须指定模板 template",
                 gxe.ExpectColumnValuesToNotBeNull(column="template")),
        critical("valid_window_ordered", "有效期结束日不能早于开始日",
                 gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                     column_A="valid_to", column_B="valid_from", or_equal=True,
                     ignore_row_if="either_value_is_missing")),
    ),
)

# ---------------------------------------------------------------------------------------------
# 社群 groups
# ---------------------------------------------------------------------------------------------
GROUPS = Suite(
    name="groups",
    title="社群 groups",
    table="groups",
    checks=(
        critical("external_id_unique", "群ID 不能重复",
                 gxe.ExpectColumnValuesToBeUnique(column="external_id")),
        critical("kind_in_set", f"群类型 kind 只能是 {'/'.join(GROUP_KINDS)}",
                 gxe.ExpectColumnValuesToBeInSet(column="kind", value_set=list(GROUP_KINDS))),
        critical("robot_secret_present", "启用的企业微信机器人群必须配置密钥名 robot_secret",
                 rows("SELECT id, external_id, name FROM {batch} WHERE active "
                      "AND channel = 'wecom_robot' "
                      "AND (robot_secret IS NULL OR robot_secret = '')")),
    ),
)

SUITES: dict[str, Suite] = {s.name: s for s in (MEMBERS, MEMBERSHIPS, EVENTS, CONTENT, GROUPS)}
