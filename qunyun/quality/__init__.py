"""Data-quality gates (数据质量闸门): the suites every flow runs before it plans anything.

    from qunyun.quality import SUITES, run_gates
    report = run_gates(database_url, ["members", "events"], as_of=now)
    report.passed            # False when a critical check failed
    report.to_markdown()     # the table published as a Prefect artifact

The specification itself is `qunyun.quality.suites`. No Prefect imports here.
"""

from qunyun.quality.report import ExpectationOutcome, GateReport
from qunyun.quality.runner import run_gates
from qunyun.quality.suites import CRITICAL, SUITES, WARNING, Check, Suite, critical, warning

__all__ = [
    "CRITICAL",
    "SUITES",
    "WARNING",
    "Check",
    "ExpectationOutcome",
    "GateReport",
    "Suite",
    "critical",
    "run_gates",
    "warning",
]
