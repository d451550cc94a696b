"""Channel adapters: one interface, one module per provider."""

from qunyun.channels.base import Outcome, SendResult

__all__ = ["Outcome", "SendResult"]
