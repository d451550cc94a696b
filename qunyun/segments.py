"""Segments: declarative member filters compiled to one SQL query (never a Python loop)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import and_, exists

from qunyun.models import (
    ACTIVITY_STATES,
    FAN_LEVELS,
    GROUP_KINDS,
    STAGES,
    Group,
    Member,
    Membership,
    MemberTag,
    Tag,
)


def _check_subset(values: list[str], allowed: tuple[str, ...], what: str) -> list[str]:
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"未知的{what} (unknown {what}): {', '.join(unknown)}；可选: {', '.join(allowed)}")
    return values


class Segment(BaseModel):
    """Who a member-level message is for. Empty lists mean "no condition"."""

    model_config = ConfigDict(extra="forbid")
    tags_any: list[str] = []
    tags_all: list[str] = []
    tags_none: list[str] = []
    group_kinds: list[str] = []
    stages: list[str] = []
    activity_states: list[str] = []
    fan_levels: list[str] = []
    active_within_days: int | None = Field(None, ge=1)
    inactive_for_days: int | None = Field(None, ge=1)
    spend_min: float | None = Field(None, ge=0)
    spend_max: float | None = Field(None, ge=0)

    @field_validator("group_kinds")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        return _check_subset(v, GROUP_KINDS, "group kind")

    @field_validator("stages")
    @classmethod
    def _stages(cls, v: list[str]) -> list[str]:
        return _check_subset(v, STAGES, "stage")

    @field_validator("activity_states")
    @classmethod
    def _states(cls, v: list[str]) -> list[str]:
        return _check_subset(v, ACTIVITY_STATES, "activity state")

    @field_validator("fan_levels")
    @classmethod
    def _levels(cls, v: list[str]) -> list[str]:
        return _check_subset(v, FAN_LEVELS, "fan level")

    def tags_used(self) -> set[str]:
        return set(self.tags_any) | set(self.tags_all) | set(self.tags_none)


def _has_tag(names: list[str]):
    return exists().where(
        MemberTag.member_id == Member.id, MemberTag.tag_id == Tag.id, Tag.name.in_(names)
    )


def member_filter(segment: Segment, as_of: datetime):
    """The segment as one SQL boolean expression over `members`."""
    conds = []
    if segment.tags_any:
        conds.append(_has_tag(segment.tags_any))
    for name in segment.tags_all:
        conds.append(_has_tag([name]))
    if segment.tags_none:
        conds.append(~_has_tag(segment.tags_none))
    if segment.group_kinds:
        conds.append(
            exists().where(
                Membership.member_id == Member.id,
                Membership.left_at.is_(None),
                Membership.group_id == Group.id,
                Group.kind.in_(segment.group_kinds),
            )
        )
    if segment.stages:
        conds.append(Member.stage.in_(segment.stages))
    if segment.activity_states:
        conds.append(Member.activity_state.in_(segment.activity_states))
    if segment.fan_levels:
        conds.append(Member.fan_level.in_(segment.fan_levels))
    if segment.active_within_days:
        conds.append(Member.last_active_at >= as_of - timedelta(days=segment.active_within_days))
    if segment.inactive_for_days:
        cutoff = as_of - timedelta(days=segment.inactive_for_days)
        conds.append((Member.last_active_at < cutoff) | Member.last_active_at.is_(None))
    if segment.spend_min is not None:
        conds.append(Member.total_spend >= segment.spend_min)
    if segment.spend_max is not None:
        conds.append(Member.total_spend <= segment.spend_max)
    return and_(True, *conds)
