"""The operator's YAML under config/, validated by pydantic with errors naming file, key and problem."""

from qunyun.config.calendar import Calendar, Column, ContentItem, Slot, load_calendar
from qunyun.config.caps import Caps, load_caps
from qunyun.config.channels import ChannelsConfig, load_channels
from qunyun.config.demo import DemoDefaults, load_demo_defaults

__all__ = [
    "Calendar", "Caps", "ChannelsConfig", "Column", "ContentItem", "DemoDefaults", "Slot",
    "load_calendar", "load_caps", "load_channels", "load_demo_defaults",
]
