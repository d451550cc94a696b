"""config/content_calendar.yaml: weekday × time slot → column → item rotation (栏目式运营)."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from qunyun.config.loading import load_yaml_model
from qunyun.models import GROUP_KINDS
from qunyun.segments import Segment

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SLUG = r"^[a-z0-9][a-z0-9-]*$"


class GroupAudience(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Literal["group"]
    group_kinds: list[str] = list(GROUP_KINDS)

    @field_validator("group_kinds")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        unknown = [k for k in v if k not in GROUP_KINDS]
        if unknown:
            raise ValueError(f"未知的群类型 (unknown group kind): {', '.join(unknown)}")
        return v


class MemberAudience(Segment):
    level: Literal["member"]


class ContentItem(BaseModel):
    """One item (素材): a template from the 话术库 plus the data it is filled with."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=SLUG, max_length=64)
    title: str = ""
    template: str
    msgtype: Literal["text", "markdown", "news"] = "text"
    audience: GroupAudience | MemberAudience = Field(discriminator="level")
    vars: dict = {}
    # A welcome or first-order guide goes to a member once, however often its slot runs.
    once_per_member: bool = False
    valid_from: date | None = None
    valid_to: date | None = None

    @property
    def level(self) -> str:
        return self.audience.level

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )

    @model_validator(mode="after")
    def _member_text_only(self) -> ContentItem:
        if self.once_per_member and self.audience.level != "member":
            raise ValueError("once_per_member 只用于客户消息 (only for member-level items)")
        if self.audience.level == "member" and self.msgtype != "text":
            raise ValueError("客户群发只支持 text 消息 (member-level items must be msgtype text)")
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to 早于 valid_from (valid_to before valid_from)")
        return self


class Column(BaseModel):
    """A column (栏目) and the rotation of its items."""

    model_config = ConfigDict(extra="forbid")
    rotation: Literal["daily", "weekly"] = "daily"
    items: list[ContentItem] = Field(min_length=1)


class Slot(BaseModel):
    """A fixed time on some weekdays when a column goes out."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=SLUG, max_length=48)
    time: time
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = list(WEEKDAYS)
    column: str

    def runs_on(self, day: date) -> bool:
        return WEEKDAYS[day.weekday()] in self.weekdays


class Calendar(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: str = "Asia/Shanghai"
    columns: dict[str, Column]
    slots: list[Slot]

    @model_validator(mode="after")
    def _references(self) -> Calendar:
        names = [s.name for s in self.slots]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"时段名称重复 (duplicate slot name): {', '.join(sorted(dup))}")
        for i, slot in enumerate(self.slots):
            if slot.column not in self.columns:
                raise ValueError(
                    f"slots.{i} ({slot.name}) 引用了未知栏目 (unknown column) '{slot.column}'；"
                    f"已有栏目: {', '.join(self.columns)}"
                )
        ids = [item.id for col in self.columns.values() for item in col.items]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"素材 id 重复 (duplicate item id): {', '.join(sorted(dup))}")
        return self

    def slot(self, name: str) -> Slot:
        for slot in self.slots:
            if slot.name == name:
                return slot
        raise KeyError(name)

    def items(self) -> list[ContentItem]:
        return [item for col in self.columns.values() for item in col.items]


def load_calendar(config_dir: Path) -> Calendar:
    return load_yaml_model(config_dir / "content_calendar.yaml", Calendar)
