"""群运 Qunyun: the domain library behind the community-operations flows (no Prefect imports)."""

__version__ = "0.1.0"
