"""Importing SCRM / WeCom admin exports (CSV or XLSX) into the app database.

Plain functions, no Prefect: `import_members` and `import_events` stream a file, reject rows
that cannot be trusted (listed in a rejects CSV with file, row, field, reason and a masked
value) and upsert the rest in set-based batches. See `qunyun import --help`.
"""

from qunyun.importing.common import ImportResult
from qunyun.importing.events import import_events
from qunyun.importing.members import group_external_id, import_members
from qunyun.importing.reading import EVENT_FIELDS, MEMBER_FIELDS, detect_encoding

__all__ = [
    "EVENT_FIELDS",
    "MEMBER_FIELDS",
    "ImportResult",
    "detect_encoding",
    "group_external_id",
    "import_events",
    "import_members",
]
