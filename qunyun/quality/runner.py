"""Run the suites in `qunyun.quality.suites` as SQL on the app database with GX 1.x.

One ephemeral GX context and one SQL data source per gate run; one table asset (or query asset,
for a windowed suite) and one whole-table batch per suite. Every check runs in the database:

1. The whole suite is validated at once with BASIC results and no examples, so GX folds the
   column checks of a suite into a few aggregate queries (one or two scans of the table), and
   SQL checks only count their rows (`UnexpectedRowsCount`: one query instead of two).
2. Only the checks that failed are validated again, one by one, asking for a few examples
   (LIMIT 3 / at most 200 rows for SQL checks); the examples are masked before they leave here.

Nothing is stored: no GX project folder, no data docs, no validation results on disk.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

from qunyun.pii import mask_phone, mask_text  # noqa: E402
from qunyun.quality.report import ExpectationOutcome, GateReport  # noqa: E402
from qunyun.quality.suites import SUITES, Check, Suite  # noqa: E402

log = logging.getLogger(__name__)

TZ = ZoneInfo("Asia/Shanghai")
EXAMPLES = 3
_COUNT_ONLY = {"result_format": "BASIC", "partial_unexpected_count": 0}
_EXAMPLE_LEN = 60


def run_gates(
    database_url: str, suites: Sequence[str], *, as_of: datetime | None = None
) -> GateReport:
    """Validate `suites` (names in SUITES) against the database at `database_url`.

    `as_of` is the moment the data is checked against (naive, the app's clock, Asia/Shanghai;
    an aware value is converted): no join or event may be dated after it, and windowed suites
    look back from it. Default: now. Raises KeyError for an unknown suite name.
    """
    as_of = _naive(as_of)
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise KeyError(f"未知的检查套件 (unknown gate suite): {', '.join(unknown)}; "
                       f"可用 (known): {', '.join(SUITES)}")
    started = time.perf_counter()
    context, datasource = _gx_source(database_url)
    report = GateReport(outcomes=[], suites=list(suites), as_of=as_of)
    for name in suites:
        t0 = time.perf_counter()
        report.outcomes.extend(_run_suite(context, datasource, SUITES[name], as_of))
        report.seconds[name] = round(time.perf_counter() - t0, 3)
    report.seconds["total"] = round(time.perf_counter() - started, 3)
    return report


# ---------------------------------------------------------------------------------------------


def _naive(as_of: datetime | None) -> datetime:
    if as_of is None:
        return datetime.now(TZ).replace(tzinfo=None, microsecond=0)
    if as_of.tzinfo is not None:
        return as_of.astimezone(TZ).replace(tzinfo=None)
    return as_of


def _gx_source(database_url: str):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for noisy in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    kwargs = {"connect_args": {"timeout": 30}} if database_url.startswith("sqlite") else {}
    with warnings.catch_warnings():
        # GX suggests the dialect-specific source; the generic one is the same SQL for us.
        warnings.simplefilter("ignore")
        datasource = context.data_sources.add_sql(
            name="qunyun", connection_string=database_url, kwargs=kwargs
        )
    return context, datasource


def _sql_params(suite: Suite, as_of: datetime) -> dict[str, str]:
    start = as_of - timedelta(days=suite.window_days)
    return {
        ":window_start": f"'{start:%Y-%m-%d %H:%M:%S.%f}'",
        ":as_of": f"'{as_of:%Y-%m-%d %H:%M:%S.%f}'",
    }


def _fill(sql: str, params: dict[str, str]) -> str:
    for name, literal in params.items():
        sql = sql.replace(name, literal)
    return sql


def _batch(datasource, suite: Suite, params: dict[str, str]):
    if suite.where:
        query = f"SELECT * FROM {suite.table} WHERE {_fill(suite.where, params)}"
        asset = datasource.add_query_asset(name=suite.name, query=query)
    else:
        asset = datasource.add_table_asset(name=suite.name, table_name=suite.table)
    return asset.add_batch_definition_whole_table("whole").get_batch()


def _expectation(check: Check, params: dict[str, str], *, count_only: bool = False):
    update = {
        "description": check.description,
        "severity": check.severity,
        "meta": {"qunyun_key": check.key},
    }
    query = getattr(check.expectation, "unexpected_rows_query", None)
    if query:
        update["unexpected_rows_query"] = _fill(query, params)
        if count_only:
            return _count_only_class()(**update)
    return check.expectation.copy(update=update, deep=True)


_COUNT_ONLY_CLASS = None


def _count_only_class():
    """`UnexpectedRowsExpectation` that only counts the rows (GX runs its query twice: once to
    fetch up to 200 rows, once to count them; on a 30M-row table the fetch is a second scan)."""
    global _COUNT_ONLY_CLASS
    if _COUNT_ONLY_CLASS is None:
        from great_expectations.expectations import UnexpectedRowsExpectation

        class UnexpectedRowsCount(UnexpectedRowsExpectation):
            metric_dependencies = ("unexpected_rows_query.row_count",)

            def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
                count = metrics["unexpected_rows_query.row_count"]
                return {"success": count == 0, "result": {"observed_value": count}}

        _COUNT_ONLY_CLASS = UnexpectedRowsCount
    return _COUNT_ONLY_CLASS


def _run_suite(context, datasource, suite: Suite, as_of: datetime) -> list[ExpectationOutcome]:
    import great_expectations as gx

    params = _sql_params(suite, as_of)
    gx_params = {"as_of": as_of}
    try:
        batch = _batch(datasource, suite, params)
    except Exception as exc:  # the table or window query itself is broken
        return [_outcome(suite, c, None, error=_short(exc)) for c in suite.checks]

    expectations = {c.key: _expectation(c, params, count_only=True) for c in suite.checks}
    gx_suite = gx.ExpectationSuite(name=f"qunyun-{suite.name}")
    for exp in expectations.values():
        gx_suite.add_expectation(exp)
    result = batch.validate(gx_suite, result_format=_COUNT_ONLY, expectation_parameters=gx_params)
    by_key = {r.expectation_config.meta.get("qunyun_key"): r for r in result.results}

    # Second pass, failures only: a few examples (masked) from the database. The failed checks
    # of one kind are validated together, so GX shares the row count and aggregates again.
    failed = [c for c in suite.checks
              if (r := by_key.get(c.key)) is not None and not r.success and not _raised(r)]
    detailed: dict[str, object] = {}
    for fmt in ({"result_format": "BASIC", "partial_unexpected_count": EXAMPLES},
                {"result_format": "COMPLETE"}):  # SQL checks: at most 200 rows (GX's cap)
        group = [c for c in failed if _example_format(c) == fmt]
        if not group:
            continue
        again = gx.ExpectationSuite(name=f"qunyun-{suite.name}-examples")
        for c in group:
            again.add_expectation(_expectation(c, params))
        res = batch.validate(again, result_format=fmt, expectation_parameters=gx_params)
        detailed |= {r.expectation_config.meta.get("qunyun_key"): r for r in res.results}

    outcomes = []
    for check in suite.checks:
        res = by_key.get(check.key)
        examples = _examples(suite, check, detailed[check.key]) if check.key in detailed else []
        outcomes.append(_outcome(suite, check, res, examples=examples))
    return outcomes


def _example_format(check: Check) -> dict:
    if check.expectation.expectation_type == "unexpected_rows_expectation":
        return {"result_format": "COMPLETE"}
    return {"result_format": "BASIC", "partial_unexpected_count": EXAMPLES}


def _raised(res) -> bool:
    info = res.exception_info or {}
    if "raised_exception" in info:
        return bool(info.get("raised_exception"))
    return any(v.get("raised_exception") for v in info.values() if isinstance(v, dict))


def _error_text(res) -> str:
    info = res.exception_info or {}
    if "exception_message" in info:
        return _short(info.get("exception_message"))
    for v in info.values():
        if isinstance(v, dict) and v.get("raised_exception"):
            return _short(v.get("exception_message"))
    return "检查无法执行 (check could not run)"


def _short(value, limit: int = 200) -> str:
    text = mask_text(" ".join(str(value).split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mask_value(column: str | None, value) -> str:
    if value is None:
        return "NULL"
    text = str(value)
    if column and ("phone" in column or "mobile" in column):
        text = mask_phone(text)
    return _short(text, _EXAMPLE_LEN)


def _examples(suite: Suite, check: Check, res) -> list[str]:
    result = res.result or {}
    column = getattr(check.expectation, "column", None)
    if "details" in result:  # UnexpectedRowsExpectation, COMPLETE
        rows = (result["details"] or {}).get("unexpected_rows") or []
        out = []
        for row in rows[:EXAMPLES]:
            row = dict(row)
            cells = [f"{k}={_mask_value(k if k in suite.pii_columns else None, v)}"
                     for k, v in row.items()]
            out.append(_short(" ".join(cells), _EXAMPLE_LEN * 2))
        return out
    values = result.get("partial_unexpected_list") or []
    if column is None:  # column pairs
        cols = [getattr(check.expectation, "column_A", None),
                getattr(check.expectation, "column_B", None)]
        return [
            " ".join(f"{c}={_mask_value(c, v)}" for c, v in zip(cols, pair, strict=False))
            if isinstance(pair, (list, tuple)) else _mask_value(None, pair)
            for pair in values[:EXAMPLES]
        ]
    pii = column if column in suite.pii_columns else None
    return [_mask_value(pii, v) for v in values[:EXAMPLES]]


def _outcome(suite: Suite, check: Check, res, *, examples=(), error=None) -> ExpectationOutcome:
    out = ExpectationOutcome(
        suite=suite.name,
        key=check.key,
        description=check.description,
        severity=check.severity,
        success=False,
        expectation=check.expectation.expectation_type,
        examples=list(examples),
        error=error,
    )
    if res is None:
        out.error = out.error or "检查未执行 (check did not run)"
        return out
    if _raised(res):
        out.error = _error_text(res)
        return out
    out.success = bool(res.success)
    result = res.result or {}
    if "observed_value" in result and "unexpected_count" not in result:
        out.unexpected_count = int(result["observed_value"] or 0)
    else:
        out.unexpected_count = result.get("unexpected_count")
        out.element_count = result.get("element_count")
        pct = result.get("unexpected_percent")
        out.unexpected_percent = round(float(pct), 4) if pct is not None else None
    return out
