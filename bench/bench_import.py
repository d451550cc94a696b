"""Benchmark `qunyun import members` on a 1,000,000-row GBK CSV with Chinese headers.

Generates the file in a temp folder (streamed, realistic: +86/dashed phones, tags split on
；/、/, , group names, several date formats, a few bad rows), imports it with the real CLI
(`qunyun import members FILE --json`) into a fresh SQLite workspace in a child process, and
appends rows/s, seconds and the child's peak RSS to bench/results/import.md.

    /work/venv/bin/python bench/bench_import.py            # 1,000,000 rows
    /work/venv/bin/python bench/bench_import.py --rows 100000 --no-record
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "import.md"
HEADER = [
    "客户ID", "昵称", "手机号", "性别", "来源渠道", "标签", "所在群", "入群时间",
    "最近互动时间", "累计消费(元)", "备注", "跟进人",
]
TAGS = ["宝妈", "育儿", "美妆", "护肤", "健身", "母婴", "高价值", "新客", "复购", "铁粉"]
GROUPS = [f"{city}宝妈交流{n}群" for city in ("北京", "上海", "杭州", "成都") for n in range(1, 26)]
CHANNELS = ["朋友圈", "直播", "公众号", "小程序", "门店", "裂变海报"]
GENDERS = ["男", "女", "未知", ""]
SEPS = ["；", "、", ",", ";"]


def generate(path: Path, rows: int, seed: int = 7) -> int:
    """Write the CSV; return the number of rows meant to be rejected (1 in 1000)."""
    rnd = random.Random(seed)
    bad = 0
    with path.open("w", encoding="gbk", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for i in range(rows):
            phone = f"1{rnd.choice('3456789')}{rnd.randrange(10**9):09d}"
            style = i % 4
            if style == 1:
                phone = "+86 " + phone
            elif style == 2:
                phone = f"{phone[:3]}-{phone[3:7]}-{phone[7:]}"
            month, day = rnd.randint(1, 12), rnd.randint(1, 28)
            joined = (
                f"2025-{month:02d}-{day:02d} 08:{i % 60:02d}:00" if i % 3 == 0
                else f"2025/{month}/{day}" if i % 3 == 1
                else f"2025年{month}月{day}日"
            )
            active = f"2026-{rnd.randint(1, 9):02d}-{rnd.randint(1, 28):02d} 20:15"
            spend = f"{rnd.randint(0, 500000) / 100:.2f}"
            if i % 1000 == 999:  # the nasty minority: one bad field each
                bad += 1
                kind = (i // 1000) % 4
                if kind == 0:
                    phone = "12345"
                elif kind == 1:
                    joined = "2025-02-30"
                elif kind == 2:
                    spend = "-5"
                else:
                    active = "2099-01-01"
            tags = rnd.choice(SEPS).join(rnd.sample(TAGS, rnd.randint(0, 3)))
            w.writerow([
                f"wm{i:012d}", f"用户{i}", phone, rnd.choice(GENDERS), rnd.choice(CHANNELS),
                tags, rnd.choice(GROUPS), joined, active, spend,
                "老客户, 爱分享" if i % 50 == 0 else "", f"staff{i % 40:02d}",
            ])
    return bad


def run(rows: int, record: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="qunyun-bench-") as tmp:
        tmpdir = Path(tmp)
        csv_path = tmpdir / "members_gbk.csv"
        t0 = time.perf_counter()
        expected_bad = generate(csv_path, rows)
        gen_s = time.perf_counter() - t0
        size_mb = csv_path.stat().st_size / 1e6
        env = dict(os.environ, QUNYUN_HOME=str(tmpdir / "ws"))
        env.pop("QUNYUN_DATABASE_URL", None)
        # Create the schema first so the timed run measures the import, not Alembic.
        subprocess.run(
            [sys.executable, "-c", "from qunyun import db, workspace; "
             "db.migrate(workspace.current().database_url)"],
            env=env, check=True,
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_before = os.getloadavg()[0]
        t1 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", "from qunyun.cli import main; main()",
             "import", "members", str(csv_path), "--json"],
            env=env, capture_output=True, text=True,
        )
        wall = time.perf_counter() - t1
        if proc.returncode != 0:
            raise SystemExit(f"import failed ({proc.returncode}): {proc.stderr[-2000:]}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_kib = usage.ru_maxrss  # KiB on Linux: the largest child, i.e. the import
        cpu_s = (usage.ru_utime + usage.ru_stime) - (before.ru_utime + before.ru_stime)
        result = {
            "rows": rows,
            "file_mb": round(size_mb, 1),
            "generate_s": round(gen_s, 1),
            "wall_s": round(wall, 1),
            "import_s": out["seconds"],
            "rows_per_s": round(rows / wall),
            "cpu_s": round(cpu_s, 1),
            "load_avg_1m": round(max(load_before, os.getloadavg()[0]), 1),
            "peak_rss_mib": round(peak_kib / 1024),
            "accepted": out["accepted"],
            "rejected": out["rejected"],
            "expected_rejected": expected_bad,
            "encoding": out["encoding"],
        }
    print(json.dumps(result, ensure_ascii=False))
    if record:
        _record(result)
    return result


def _record(r: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    new = not RESULTS.exists()
    with RESULTS.open("a", encoding="utf-8") as fh:
        if new:
            fh.write(
                "# `qunyun import members` benchmark\n\n"
                "Written by `bench/bench_import.py`: a generated GBK CSV with Chinese headers "
                "(12 columns: phones in +86/dashed/plain forms, 0-3 tags per row on mixed "
                "separators, one of 100 groups, three date formats, 1 row in 1000 bad), "
                "imported by the real CLI (`--json`, no progress bar) into a fresh SQLite "
                "workspace. Wall time is the whole child process (Python start, read, "
                "validate, upsert members/tags/groups/memberships, commit); peak RSS is that "
                "child's `ru_maxrss`; CPU s is its user+system time (two threads: parsing "
                "overlaps the SQLite writes), and the 1-minute load average shows how busy the "
                "shared machine was. Target: ≤ 60 s and ≤ 1 GiB for 1,000,000 rows.\n\n"
                "| date | machine | load | rows | file MB | wall s | CPU s | rows/s | "
                "peak RSS MiB | accepted | rejected (expected) |\n"
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            )
        machine = (
            f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
            f"SQLite {__import__('sqlite3').sqlite_version}"
        )
        fh.write(
            f"| {datetime.now():%Y-%m-%d %H:%M} | {machine} | {r['load_avg_1m']} | "
            f"{r['rows']:,} | {r['file_mb']} | {r['wall_s']} | {r['cpu_s']} | "
            f"{r['rows_per_s']:,} | {r['peak_rss_mib']} | {r['accepted']:,} | "
            f"{r['rejected']:,} ({r['expected_rejected']:,}) |\n"
        )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--no-record", action="store_true", help="print only; don't append results")
    args = ap.parse_args()
    run(args.rows, record=not args.no_record)
