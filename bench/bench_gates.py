"""Benchmark: the data-quality gates over 1M members and 30M events (SQLite).

    /work/venv/bin/python bench/bench_gates.py                 # build (once) and measure
    /work/venv/bin/python bench/bench_gates.py --members 100000 --events 3000000   # smaller

Builds bench/work/gates-<members>-<events>.db with `qunyun.db.migrate` (the real schema), fills
it with raw sqlite3 `executemany` of generated tuples (events spread over the 365 days before
AS_OF, so the 90-day window the events suite checks holds about a quarter of them), then runs
`qunyun.quality.run_gates` over every suite in a fresh subprocess (so its peak RSS is the
gate's own) three times: clean data twice (first and repeated run), then after planting a few
bad rows (the failure path, which fetches masked examples). Appends the figures to
bench/results/gates.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
RESULTS = HERE / "results" / "gates.md"
AS_OF = datetime(2025, 6, 30, 12, 0, 0)
SUITES = ["members", "memberships", "events", "content", "groups"]
TARGET_S = 20.0

KINDS = ["join", "leave", "message", "checkin", "like", "comment", "share", "click", "purchase",
         "referral"]
KIND_WEIGHTS = [3, 1, 40, 15, 15, 8, 5, 8, 4, 1]
CHUNK = 500_000


def build(path: Path, n_members: int, n_events: int, n_groups: int = 500) -> None:
    from qunyun.db import migrate

    if path.exists():
        return
    tmp = path.with_suffix(".building")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    migrate(f"sqlite:///{tmp}").dispose()
    conn = sqlite3.connect(tmp)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    # Load without the secondary indexes on events, then build them once (sorted), exactly as
    # the migration declared them.
    index_sql = [r[0] for r in conn.execute(
        "SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name='events' AND sql IS NOT NULL"
    )]
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='events' "
        "AND sql IS NOT NULL"
    ).fetchall():
        conn.execute(f"DROP INDEX {name}")
    rnd = random.Random(42)
    t0 = time.perf_counter()

    stages = ["prospect", "customer", "member", "koc"]
    states = ["new", "active", "silent", "at_risk", "churned"]
    levels = ["passerby", "friendly", "devoted", "advocate"]
    days = [(AS_OF - timedelta(days=d)).strftime("%Y-%m-%d ") for d in range(0, 1100)]
    clock = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]

    def ts(max_days: int) -> str:
        # Strictly before AS_OF: at least one second earlier.
        d = rnd.randrange(1, max_days)
        return days[d] + clock[rnd.randrange(86400)]

    staff = [f"staff{i:03d}" for i in range(60)]
    conn.executemany(
        "INSERT INTO staff(id, userid, name, role) VALUES (?,?,?,?)",
        [(i + 1, s, f"员工{i}", "service") for i, s in enumerate(staff)],
    )
    kinds = ["interest", "seeding", "superfan", "vip"]
    conn.executemany(
        "INSERT INTO groups(id, external_id, name, kind, channel, robot_secret, owner_userid,"
        " created_at, active) VALUES (?,?,?,?,?,?,?,?,?)",
        [(g, f"wrgroup{g:05d}", f"社群{g}", kinds[g % 4], "wecom_robot", f"robot_{g}",
          staff[g % 60], ts(1000), 1) for g in range(1, n_groups + 1)],
    )

    def members():
        for i in range(1, n_members + 1):
            phone = f"1{rnd.choice('3456789')}{rnd.randrange(10**9):09d}" \
                if rnd.random() < 0.7 else None
            owner = staff[i % 60] if rnd.random() < 0.95 else None
            yield (i, f"wm{i:09d}", f"用户{i}", phone, "wecom", owner, ts(1000), ts(90),
                   round(rnd.random() * 500, 2), None, 0, 0, 0, 0,
                   stages[i % 4], states[i % 5], levels[i % 4])

    conn.executemany(
        "INSERT INTO members(id, external_id, nickname, phone, source_channel, owner_userid,"
        " joined_at, last_active_at, total_spend, note, opted_out, blacklisted, whitelisted,"
        " is_staff, stage, activity_state, fan_level) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        members(),
    )
    conn.executemany(
        "INSERT INTO memberships(id, member_id, group_id, role, joined_at, left_at)"
        " VALUES (?,?,?,?,?,?)",
        ((i, i, i % n_groups + 1, "member", ts(900), None) for i in range(1, n_members + 1)),
    )
    conn.executemany(
        "INSERT INTO content_items(id, column_name, title, template, msgtype, level, targeting,"
        " valid_from, valid_to) VALUES (?,?,?,?,?,?,?,?,?)",
        [(f"c{i:04d}", "早安", f"素材{i}", f"messages/wecom_robot/c{i}.md.j2",
          ["text", "markdown", "news"][i % 3], ["group", "member"][i % 2], "{}",
          "2025-01-01", "2025-12-31") for i in range(200)],
    )
    conn.commit()
    print(f"  members/groups/memberships: {time.perf_counter() - t0:.1f}s", flush=True)

    def events():
        choices = rnd.choices
        rr = rnd.randrange
        eid = 0
        while eid < n_events:
            n = min(CHUNK, n_events - eid)
            ks = choices(KINDS, KIND_WEIGHTS, k=n)
            for k in ks:
                eid += 1
                yield (eid, rr(1, n_members + 1), rr(1, n_groups + 1), k,
                       days[rr(1, 365)] + clock[rr(86400)], None,
                       round(rr(100, 100000) / 100, 2) if k == "purchase" else None)

    conn.executemany(
        "INSERT INTO events(id, member_id, group_id, kind, occurred_at, campaign, amount)"
        " VALUES (?,?,?,?,?,?,?)",
        events(),
    )
    conn.commit()
    print(f"  events inserted: {time.perf_counter() - t0:.1f}s", flush=True)
    for sql in index_sql:
        conn.execute(sql)
    conn.commit()
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    print(f"  indexes built: {time.perf_counter() - t0:.1f}s", flush=True)
    tmp.rename(path)


BAD_EVENT_BASE = 9_000_000_000


def plant_bad_rows(path: Path) -> tuple[str, list]:
    """Break a few rows; return a description and the statements that undo it."""
    conn = sqlite3.connect(path)
    old = conn.execute(
        "SELECT id, total_spend, phone FROM members WHERE id IN (11, 22, 33, 44)"
    ).fetchall()
    conn.execute("UPDATE members SET total_spend = -1 WHERE id IN (11, 22, 33)")
    conn.execute("UPDATE members SET phone = '1380013800' WHERE id = 44")
    when = (AS_OF - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
    conn.executemany(
        "INSERT INTO events(id, member_id, group_id, kind, occurred_at) VALUES (?,?,?,?,?)",
        [(BAD_EVENT_BASE + i, 7, 1, "poke", when) for i in range(1, 6)],
    )
    conn.commit()
    conn.close()
    return "3 negative total_spend, 1 10-digit phone, 5 events of unknown kind", old


def undo_bad_rows(path: Path, old: list) -> None:
    conn = sqlite3.connect(path)
    conn.executemany("UPDATE members SET total_spend = ?, phone = ? WHERE id = ?",
                     [(spend, phone, i) for i, spend, phone in old])
    conn.execute("DELETE FROM events WHERE id > ?", (BAD_EVENT_BASE,))
    conn.commit()
    conn.close()


def measure(url: str) -> dict:
    """Run in a fresh process: the gate's own time and peak RSS."""
    from qunyun.quality import run_gates

    t0 = time.perf_counter()
    report = run_gates(url, SUITES, as_of=AS_OF)
    wall = time.perf_counter() - t0
    return {
        "wall_s": round(wall, 2),
        "seconds": report.seconds,
        "passed": report.passed,
        "failed": [o.check_id for o in report.outcomes if not o.success],
        "peak_rss_mb": peak_rss_mb(),
        "load_1m": round(os.getloadavg()[0], 2),  # other work on the machine meanwhile
    }


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so
    a child of the (large) builder process would report the builder's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_measure(url: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", url], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def table_rows(path: Path) -> dict:
    conn = sqlite3.connect(path)
    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("members", "memberships", "events", "groups", "content_items")}
    window = conn.execute(
        "SELECT count(*) FROM events WHERE occurred_at >= ?",
        ((AS_OF - timedelta(days=90)).strftime("%Y-%m-%d %H:%M:%S"),),
    ).fetchone()[0]
    conn.close()
    counts["events in 90-day window"] = window
    return counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=30_000_000)
    ap.add_argument("--measure", metavar="URL")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return

    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"gates-{args.members}-{args.events}.db"
    t0 = time.perf_counter()
    fresh = not path.exists()
    print(f"building {path.name} ..." if fresh else f"reusing {path.name}", flush=True)
    build(path, args.members, args.events)
    build_s = time.perf_counter() - t0
    rows = table_rows(path)
    url = f"sqlite:///{path}"
    runs = [("clean, first run", run_measure(url)), ("clean, repeated", run_measure(url))]
    planted, old = plant_bad_rows(path)
    try:
        runs.append((f"with bad rows ({planted})", run_measure(url)))
    finally:
        undo_bad_rows(path, old)

    for label, r in runs:
        print(label, json.dumps(r, ensure_ascii=False))
    if not args.no_record:
        record(args, rows, runs, build_s if fresh else None, path.stat().st_size)


def record(args, rows, runs, build_s, size) -> None:
    import great_expectations
    import sqlalchemy

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    cpu = platform.processor() or platform.machine()
    lines = [
        f"\n## {datetime.now():%Y-%m-%d %H:%M} — {args.members:,} members, "
        f"{args.events:,} events (SQLite)\n",
        f"Machine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, GX {great_expectations.__version__}, "
        f"SQLAlchemy {sqlalchemy.__version__}. as_of = {AS_OF:%Y-%m-%d %H:%M}. "
        + f"Database file {size / 2**30:.1f} GiB. "
        + (f"Build (executemany + indexes): {build_s:.0f} s." if build_s else "") + "\n",
        "Rows: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()) + "\n",
        "| run | " + " | ".join(SUITES)
        + " | total (s) | peak RSS (MB) | load avg (1 min) | target ≤ 20 s |",
        "|---|" + "---:|" * len(SUITES) + "---:|---:|---:|---|",
    ]
    for label, r in runs:
        s = r["seconds"]
        lines.append(
            f"| {label} | " + " | ".join(f"{s.get(n, 0):.2f}" for n in SUITES)
            + f" | {r['wall_s']:.2f} | {r['peak_rss_mb']:.0f} | {r['load_1m']:.1f} | "
            + ("met" if r["wall_s"] <= TARGET_S else f"missed by {r['wall_s'] - TARGET_S:.1f} s")
            + " |"
        )
    fails = runs[-1][1]["failed"]
    lines.append(f"\nFailure run flagged: {', '.join(fails) or 'nothing'}.\n")
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
