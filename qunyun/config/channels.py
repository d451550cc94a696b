"""config/channels.yaml: where each channel's API lives; secrets by name only."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from qunyun.config.loading import load_yaml_model


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["wecom_robot", "wecom_customer"]
    base_url: str
    timeout_seconds: float = Field(10.0, gt=0)
    # wecom_robot: the provider allows 20 messages per minute per robot.
    per_robot_per_minute: int = Field(20, ge=1, le=20)
    # wecom_customer: corp id and the *name* of the secret holding the app secret.
    corp_id: str | None = None
    corp_secret: str | None = None
    concurrency: int = Field(16, ge=1, le=64)


class SimulatorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    autostart: bool = True
    port: int = 18650


class ChannelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channels: dict[str, Channel]
    simulator: SimulatorSettings = SimulatorSettings()

    def points_at_simulator(self) -> bool:
        """True when every channel targets the local simulator's port."""
        for channel in self.channels.values():
            parts = urlsplit(channel.base_url)
            if parts.hostname not in ("127.0.0.1", "localhost") or parts.port != self.simulator.port:
                return False
        return True


def load_channels(config_dir: Path) -> ChannelsConfig:
    return load_yaml_model(config_dir / "channels.yaml", ChannelsConfig)
