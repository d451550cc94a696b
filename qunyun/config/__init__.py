"""The operator's YAML under config/, validated by pydantic with errors naming file, key and problem."""

from qunyun.config.calendar import Calendar, Column, ContentItem, Slot, load_calendar
from qunyun.config.caps import Caps, load_caps
from qunyun.config.channels import ChannelsConfig, load_channels

__all__ = [
    "Calendar", "Caps", "ChannelsConfig", "Column", "ContentItem", "Slot",
    "load_calendar", "load_caps", "load_channels",
]
