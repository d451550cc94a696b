"""config/caps.yaml: frequency caps and quiet hours (anti-disturbance rules)."""

from __future__ import annotations

from datetime import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from qunyun.config.loading import load_yaml_model


class MemberCaps(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per_day: int = Field(1, ge=0, description="每位客户每天最多收到的消息数")
    per_week: int = Field(3, ge=0, description="每位客户每周 (周一起) 最多收到的消息数")


class GroupCaps(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per_day: int = Field(6, ge=0, description="每个群每天最多推送的消息数")


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: time = time(22, 0)
    end: time = time(8, 0)

    def contains(self, t: time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


class Caps(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member: MemberCaps = MemberCaps()
    group: GroupCaps = GroupCaps()
    quiet_hours: QuietHours = QuietHours()


def load_caps(config_dir: Path) -> Caps:
    return load_yaml_model(config_dir / "caps.yaml", Caps)
