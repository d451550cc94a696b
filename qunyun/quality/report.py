"""The result of a gate run: one outcome per check, rendered for operators (Chinese first)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

SEVERITY_LABEL = {"critical": "严重 critical", "warning": "警告 warning"}


@dataclass
class ExpectationOutcome:
    """What one check found. `examples` are already masked and shortened."""

    suite: str
    key: str
    description: str
    severity: str  # critical | warning
    success: bool
    expectation: str  # the GX expectation type, e.g. expect_column_values_to_be_in_set
    unexpected_count: int | None = None
    element_count: int | None = None
    unexpected_percent: float | None = None
    examples: list[str] = field(default_factory=list)
    error: str | None = None  # the check itself could not run (SQL error, missing column ...)

    @property
    def check_id(self) -> str:
        return f"{self.suite}.{self.key}"

    @property
    def result_label(self) -> str:
        if self.success:
            return "通过 pass"
        if self.error:
            return "出错 error"
        return "未通过 fail"


@dataclass
class GateReport:
    outcomes: list[ExpectationOutcome]
    suites: list[str] = field(default_factory=list)
    as_of: datetime | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # per suite, plus "total"

    @property
    def critical_failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "critical"]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "warning"]

    @property
    def passed(self) -> bool:
        """True when no critical check failed (warnings do not stop a flow)."""
        return not self.critical_failures

    def outcome(self, check_id: str) -> ExpectationOutcome:
        """The outcome of `suite.key`, e.g. ``members.external_id_unique``."""
        for o in self.outcomes:
            if o.check_id == check_id:
                return o
        raise KeyError(check_id)

    def counts(self) -> dict:
        return {
            "checks": len(self.outcomes),
            "passed": sum(o.success for o in self.outcomes),
            "critical_failures": len(self.critical_failures),
            "warnings": len(self.warnings),
        }

    def summary_line(self) -> str:
        """One line naming the failed critical checks and counts (for errors and logs)."""
        if self.passed:
            c = self.counts()
            return f"数据质量闸门通过 (gate passed): {c['passed']}/{c['checks']} 项通过, " \
                   f"{c['warnings']} 项警告"
        parts = [
            f"{o.check_id} {o.description} ({_count_text(o)})" for o in self.critical_failures
        ]
        return "数据质量闸门未通过 (gate failed): " + "; ".join(parts)

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "suites": self.suites,
            "counts": self.counts(),
            "seconds": self.seconds,
            "outcomes": [asdict(o) | {"check_id": o.check_id} for o in self.outcomes],
        }

    def to_markdown(self) -> str:
        verdict = "✅ 通过 passed" if self.passed else "⛔ 未通过 failed (critical)"
        c = self.counts()
        lines = [
            f"## 数据质量闸门 Data-quality gate: {verdict}",
            "",
            f"检查时刻 as_of: {self.as_of:%Y-%m-%d %H:%M:%S}" if self.as_of else "",
            f"套件 suites: {', '.join(self.suites)}; 共 {c['checks']} 项, 通过 {c['passed']}, "
            f"严重失败 {c['critical_failures']}, 警告 {c['warnings']}",
            "",
            "| 检查项 Check | 严重度 Severity | 结果 Result | 异常数 Unexpected | 示例 Examples |",
            "|---|---|---|---:|---|",
        ]
        # Failures first (critical, then warning), then passes, in spec order within each.
        order = sorted(
            self.outcomes, key=lambda o: (o.success, o.severity != "critical")
        )
        for o in order:
            examples = o.error or ", ".join(o.examples)
            lines.append(
                f"| {_md(o.description)} (`{o.check_id}`) | {SEVERITY_LABEL.get(o.severity)} | "
                f"{o.result_label} | {_count_text(o)} | {_md(examples)} |"
            )
        return "\n".join(line for line in lines if line is not None) + "\n"


def _count_text(o: ExpectationOutcome) -> str:
    if o.unexpected_count is None:
        return "-"
    if o.element_count:
        return f"{o.unexpected_count} / {o.element_count}"
    return str(o.unexpected_count)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
