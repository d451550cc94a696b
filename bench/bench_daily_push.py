"""Benchmark: the daily push at 10k, 100k and 1M members (groups = members / 10).

For each size, in fresh processes so peak RSS belongs to the step measured:
  build   a synthetic community (no events) into a fresh SQLite database;
  groups  the daily-push flow, for real, for the slot that posts to every group through the
          simulator (a separate process), timing each task run from the Prefect API;
  members the flow for the slot with one personalised message per member: sent for real up to
          --send-members-max, planned with --dry-run beyond (a million personalised mass
          messages would be a million provider requests);
  floor   the raw floor of the member plan: plain sqlite3 select, plain Jinja2 render, plain
          sqlite3 executemany insert of the same rows (SQLite runs only).
Figures go to bench/results/daily_push.md (and .jsonl). Usage:
  python bench/bench_daily_push.py [--sizes 10000,100000,1000000] [--send-members-max 100000]
                                   [--database-url postgresql+psycopg://…  (emptied first!)]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DAY = date(2026, 11, 25)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


DATABASE_URL: str | None = None  # --database-url; default a SQLite file in the work folder


def child(step: str, workdir: Path, *args: str) -> dict:
    env = dict(os.environ, QUNYUN_HOME=str(workdir), QUNYUN_CONFIG_DIR=str(workdir / "config"),
               QUNYUN_TEMPLATES_DIR=str(BENCH / "templates"),
               QUNYUN_DATABASE_URL=DATABASE_URL or f"sqlite:///{workdir / 'app.db'}",
               PREFECT_HOME=str(workdir / "prefect"), GX_ANALYTICS_ENABLED="False",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING")
    done = subprocess.run([sys.executable, __file__, "_" + step, str(workdir), *args], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{step} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- steps, each run in its own process --------------------------------------------------------

def step_build(workdir: Path, members: str) -> dict:
    from qunyun import db, workspace
    from qunyun.secrets import add_workspace_secrets
    from qunyun.synth import build_community, write_robot_secrets

    ws = workspace.current()
    if not ws.database_url.startswith("sqlite"):
        from sqlalchemy import text

        from qunyun.models import Base

        with db.engine_for(ws.database_url).begin() as conn:  # a fresh schema for each size
            Base.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine = db.migrate(ws.database_url)
    n = int(members)
    stats = build_community(engine, members=n, groups=max(4, n // 10), days=30,
                            end_date=DAY - timedelta(days=1),
                            with_events=False)
    write_robot_secrets(engine, ws.secrets_path)
    add_workspace_secrets(ws.secrets_path, {"wecom-corp-secret": "bench-corp-secret"})
    return {"seconds": round(stats.seconds, 1), "members": stats.members, "groups": stats.groups,
            "staff": stats.staff, "peak_rss_mb": round(peak_rss_mb())}


def step_flow(workdir: Path, slot: str, dry_run: str) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.daily_push import daily_push

    started = time.perf_counter()
    state = daily_push(logical_date=DAY, slot=slot, dry_run=dry_run == "1", return_state=True)
    wall = time.perf_counter() - started
    result = state.result()
    runs = []
    this_run = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
    with get_client(sync_client=True) as client:
        while page := client.read_task_runs(flow_run_filter=this_run, limit=200,
                                            offset=len(runs)):
            runs += page
    seconds: dict[str, float] = {}
    for run in runs:
        kind = run.name.rsplit("-", 1)[0].split(" ")[-1]
        seconds[kind] = seconds.get(kind, 0.0) + run.total_run_time.total_seconds()
    return {"wall_seconds": round(wall, 2), "task_runs": len(runs),
            "task_seconds": {k: round(v, 2) for k, v in sorted(seconds.items())},
            "new_rows": result["plan"]["new_rows"], "delivery": result.get("delivery"),
            "peak_rss_mb": round(peak_rss_mb())}


def step_floor(workdir: Path) -> dict:
    """The least any member plan can cost here: select, render, insert, nothing else."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(BENCH / "templates/messages")))
    template = env.get_template("bench/member.text.j2")
    conn = sqlite3.connect(workdir / "app.db")
    conn.execute("DROP TABLE IF EXISTS floor_rows")
    conn.execute("CREATE TABLE floor_rows (id INTEGER PRIMARY KEY, key TEXT UNIQUE, "
                 "recipient TEXT, sender TEXT, payload TEXT, planned_at TEXT)")
    started = time.perf_counter()
    rows = conn.execute("SELECT m.external_id, m.nickname, m.stage, m.fan_level, m.owner_userid, "
                        "s.name FROM members m LEFT JOIN staff s ON s.userid = m.owner_userid")
    item = {"coupon": "满 199 减 30 券"}
    batch, total = [], 0
    now = datetime.now().isoformat(" ")
    for ext, nickname, stage, fan, owner, staff in rows:
        text = template.render(member={"nickname": nickname, "stage": stage, "fan_level": fan},
                               staff={"name": staff}, item=item, date="2026-11-25",
                               weekday="周三")
        batch.append((hashlib.sha256(ext.encode()).hexdigest()[:32], ext, owner, text, now))
        if len(batch) == 10_000:
            conn.executemany("INSERT INTO floor_rows (key, recipient, sender, payload, planned_at)"
                             " VALUES (?, ?, ?, ?, ?)", batch)
            total += len(batch)
            batch = []
    conn.executemany("INSERT INTO floor_rows (key, recipient, sender, payload, planned_at) "
                     "VALUES (?, ?, ?, ?, ?)", batch)
    total += len(batch)
    conn.commit()
    seconds = time.perf_counter() - started
    conn.execute("DROP TABLE floor_rows")
    conn.commit()
    return {"seconds": round(seconds, 2), "rows": total, "peak_rss_mb": round(peak_rss_mb())}


# --- orchestration ---------------------------------------------------------------------------

def prepare(workdir: Path, port: int) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / "config").mkdir(parents=True)
    for name in ("content_calendar.yaml", "caps.yaml"):
        shutil.copy(BENCH / "config" / name, workdir / "config" / name)
    channels = yaml.safe_load((ROOT / "config/channels.yaml").read_text(encoding="utf-8"))
    for channel in channels["channels"].values():
        channel["base_url"] = f"http://127.0.0.1:{port}"
    channels["simulator"] = {"autostart": False, "port": port}
    (workdir / "config/channels.yaml").write_text(yaml.safe_dump(channels, allow_unicode=True),
                                                  encoding="utf-8")


def run_size(members: int, send_members_max: int) -> dict:
    workdir = BENCH / "work" / f"push-{members}"
    port = free_port()
    prepare(workdir, port)
    simulator = subprocess.Popen(
        [sys.executable, "-m", "qunyun", "simulator", "--port", str(port)],
        env=dict(os.environ, QUNYUN_HOME=str(workdir)), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        out = {"members": members, "build": child("build", workdir, str(members))}
        print(f"[{members}] build {out['build']}", flush=True)
        out["groups"] = child("flow", workdir, "groups", "0")
        print(f"[{members}] groups {out['groups']}", flush=True)
        dry = "0" if members <= send_members_max else "1"
        out["members_flow"] = child("flow", workdir, "members", dry)
        print(f"[{members}] members {out['members_flow']}", flush=True)
        if DATABASE_URL is None:
            out["floor"] = child("floor", workdir)
            print(f"[{members}] floor {out['floor']}", flush=True)
    finally:
        simulator.terminate()
        simulator.wait()
    return out


def summarise(r: dict) -> list[str]:
    g, m = r["groups"], r["members_flow"]
    gs, ms = g["task_seconds"], m["task_seconds"]
    posts = g["delivery"]["sent"]
    # The day's delivery counts cover both slots; the members' share is what the second added.
    member_sent = m["delivery"]["sent"] - posts if m["delivery"] else "预演 dry run"
    send_groups = gs.get("send-group-posts", 0.0)
    plan = ms.get("plan-daily-push", 0.0)
    floor = r.get("floor", {}).get("seconds")
    floor_cells = f"{floor:.1f} | {plan / floor:.2f}×" if floor else "— | —"
    return [
        f"| {r['members']:,} | {r['build']['groups']:,} | {ms.get('gate', 0):.1f} | "
        f"{m['new_rows']:,} | {plan:.1f} | {m['new_rows'] / plan if plan else 0:,.0f} | "
        f"{floor_cells} | {m['peak_rss_mb']} | {posts:,} | {send_groups:.1f} | "
        f"{posts / send_groups if send_groups else 0:,.0f} | {member_sent} | "
        f"{ms.get('send-member-messages', 0):.1f} | {g['task_runs']} + {m['task_runs']} |"
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--send-members-max", type=int, default=100_000)
    parser.add_argument("--database-url", help="PostgreSQL URL of an empty database")
    args = parser.parse_args()
    global DATABASE_URL
    DATABASE_URL = args.database_url
    results = [run_size(int(n), args.send_members_max) for n in args.sizes.split(",")]
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    header = [
        "",
        f"## {stamp} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"{'PostgreSQL (same machine)' if DATABASE_URL else 'SQLite'}",
        "",
        "| members | groups | gate s | member msgs planned | plan s | plan rows/s | raw floor s "
        "| plan ÷ floor | plan peak RSS MB | group posts | group send s | posts/s "
        "| member msgs sent | member send s | task runs (groups + members) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    body = [line for r in results for line in summarise(r)]
    with open(BENCH / "results/daily_push.md", "a", encoding="utf-8") as fh:
        fh.write("\n".join(header + body) + "\n")
    with open(BENCH / "results/daily_push.jsonl", "a", encoding="utf-8") as fh:
        for r in results:
            fh.write(json.dumps({"at": stamp, **r}, ensure_ascii=False) + "\n")
    print("\n".join(header + body))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1].startswith("_"):
        sys.path.insert(0, str(ROOT))
        steps = {"_build": step_build, "_flow": step_flow, "_floor": step_floor}
        print(json.dumps(steps[sys.argv[1]](Path(sys.argv[2]), *sys.argv[3:]), default=str))
    else:
        main()
