"""config/demo.yaml: the size of the synthetic community `qunyun demo` builds."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from qunyun.config.loading import load_yaml_model


class DemoDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    members: int = Field(2000, ge=10)
    groups: int = Field(20, ge=4)
    days: int = Field(60, ge=7)
    seed: int = 7


def load_demo_defaults(config_dir: Path) -> DemoDefaults:
    path = config_dir / "demo.yaml"
    return load_yaml_model(path, DemoDefaults) if path.exists() else DemoDefaults()
