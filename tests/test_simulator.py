"""The WeCom-compatible simulator (a test double), exercised over real HTTP with `requests`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import requests

from qunyun.simulator import WeComSimulator, key_fingerprint, read_inbox

KEY = "robot-key-aaaa-0001"
OTHER_KEY = "robot-key-bbbb-0002"
T0 = 1_780_000_000.0  # a fixed instant; the fake clock starts here


class FakeClock:
    def __init__(self, t: float = T0):
        self.t = t
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    return tmp_path / "simulator" / "inbox.jsonl"


@pytest.fixture
def sim(inbox: Path, clock: FakeClock):
    with WeComSimulator(inbox, clock=clock, token_ttl=7200) as s:
        yield s


@pytest.fixture
def http():
    with requests.Session() as s:
        yield s


def send(http, sim, payload, key=KEY, **kw):
    r = http.post(f"{sim.url}/cgi-bin/webhook/send", params={"key": key}, json=payload,
                  timeout=kw.pop("timeout", 5), **kw)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(len(r.content))
    return r.json()


def text(content, **extra):
    return {"msgtype": "text", "text": {"content": content, **extra}}


def test_text_markdown_news_accepted_and_recorded(sim, http, inbox):
    assert send(http, sim, text("早安 ☀️", mentioned_list=["zhangsan"],
                                mentioned_mobile_list=["13800138000"]))["errcode"] == 0
    assert send(http, sim, {"msgtype": "markdown",
                            "markdown": {"content": "**会员日** 今晚 8 点"}})["errcode"] == 0
    articles = [{"title": f"种草 {i}", "description": "好物", "url": f"https://e.x/{i}",
                 "picurl": "https://e.x/p.png"} for i in range(8)]
    assert send(http, sim, {"msgtype": "news", "news": {"articles": articles}})["errcode"] == 0

    recs = read_inbox(inbox)
    assert [r["msgtype"] for r in recs] == ["text", "markdown", "news"]
    assert all(r["endpoint"] == "webhook" for r in recs)
    assert all(r["key_fingerprint"] == key_fingerprint(KEY) for r in recs)
    assert all(r["msgid"].startswith("msg") for r in recs)
    assert recs[0]["content"] == "早安 ☀️"
    assert recs[0]["mentioned_list"] == ["zhangsan"]
    assert recs[0]["mentioned_mobile_list"] == ["13800138000"]
    assert recs[1]["content"] == "**会员日** 今晚 8 点"
    assert recs[2]["content"] == articles
    assert recs[0]["received_at"].startswith("2026-05-29T")  # the fake clock, Asia/Shanghai


def test_oversize_empty_and_malformed_rejected_not_recorded(sim, http, inbox):
    exactly = "中" * 682 + "ab"  # 2048 bytes
    assert len(exactly.encode()) == 2048
    assert send(http, sim, text(exactly))["errcode"] == 0
    over = "中" * 682 + "abc"  # 2049 bytes of UTF-8
    assert len(over.encode()) == 2049
    assert send(http, sim, text(over))["errcode"] == 40058
    md_over = "中" * 1366  # 4098 bytes
    assert send(http, sim, {"msgtype": "markdown", "markdown": {"content": md_over}})[
        "errcode"] == 40058
    assert send(http, sim, text(""))["errcode"] == 44004
    nine = [{"title": "t", "url": "https://e.x"}] * 9
    assert send(http, sim, {"msgtype": "news", "news": {"articles": nine}})["errcode"] == 40058
    r = http.post(f"{sim.url}/cgi-bin/webhook/send?key={KEY}", data=b"{not json", timeout=5)
    assert r.json()["errcode"] == 40058
    assert send(http, sim, {"msgtype": "voice", "voice": {}})["errcode"] == 40008
    assert [r["content"] for r in read_inbox(inbox)] == [exactly]


def test_21st_message_in_a_minute_is_rate_limited_per_key(sim, http, inbox, clock):
    for i in range(20):
        assert send(http, sim, text(f"第{i}条"))["errcode"] == 0
        clock.advance(1)  # 20 messages over 20 s
    r21 = send(http, sim, text("第21条"))
    assert r21["errcode"] == 45009
    assert send(http, sim, text("另一个机器人"), key=OTHER_KEY)["errcode"] == 0
    contents = [r["content"] for r in read_inbox(inbox)]
    assert "第21条" not in contents and len(contents) == 21

    clock.advance(60 - 20 + 0.001)  # the first message leaves the sliding window
    assert send(http, sim, text("窗口滑过后"))["errcode"] == 0
    assert send(http, sim, text("又满了"))["errcode"] == 45009


def test_invalid_keys_get_93000(inbox, clock, http):
    with WeComSimulator(inbox, clock=clock, valid_keys={KEY}) as s:
        assert send(http, s, text("hi"), key=OTHER_KEY)["errcode"] == 93000
        assert send(http, s, text("hi"), key=KEY)["errcode"] == 0
    with WeComSimulator(inbox, clock=clock) as s:  # no explicit set: shape decides
        assert send(http, s, text("hi"), key="short")["errcode"] == 93000
        assert send(http, s, text("hi"), key="bad key!!")["errcode"] == 93000
        assert send(http, s, text("hi"), key="x" * 65)["errcode"] == 93000
        r = http.post(f"{s.url}/cgi-bin/webhook/send", json=text("hi"), timeout=5)
        assert r.json()["errcode"] == 93000
    assert len(read_inbox(inbox)) == 1


def token(http, sim, corpid="ww-corp", secret="s3cret"):
    r = http.get(f"{sim.url}/cgi-bin/gettoken",
                 params={"corpid": corpid, "corpsecret": secret}, timeout=5).json()
    return r


def mass(http, sim, tok, payload):
    return http.post(f"{sim.url}/cgi-bin/externalcontact/add_msg_template",
                     params={"access_token": tok}, json=payload, timeout=5).json()


def test_gettoken_and_mass_message_once_per_customer_per_day(sim, http, inbox, clock):
    t = token(http, sim)
    assert t["errcode"] == 0 and t["expires_in"] == 7200 and t["access_token"]
    tok = t["access_token"]
    first = mass(http, sim, tok, {"chat_type": "single", "external_userid": ["wmA", "wmB"],
                                  "sender": "kefu01", "text": {"content": "会员日福利"}})
    assert first["errcode"] == 0 and first["fail_list"] == [] and first["msgid"].startswith("msg")
    second = mass(http, sim, tok, {"chat_type": "single", "external_userid": ["wmB", "wmC"],
                                   "sender": "kefu02", "text": {"content": "第二条"}})
    assert second["errcode"] == 0 and second["fail_list"] == ["wmB"]
    recs = [r for r in read_inbox(inbox) if r["endpoint"] == "add_msg_template"]
    assert [r["external_userid"] for r in recs] == [["wmA", "wmB"], ["wmC"]]
    assert [r["sender"] for r in recs] == ["kefu01", "kefu02"]
    assert [r["msgid"] for r in recs] == [first["msgid"], second["msgid"]]

    clock.advance(86400)  # the next simulated day: wmB may receive again
    tok = token(http, sim)["access_token"]  # yesterday's token has expired
    again = mass(http, sim, tok,
                 {"external_userid": ["wmB"], "sender": "kefu01", "text": {"content": "次日"}})
    assert again["errcode"] == 0 and again["fail_list"] == []

    missing_sender = mass(http, sim, tok, {"external_userid": ["wmZ"], "text": {"content": "x"}})
    assert missing_sender["errcode"] == 40058
    assert mass(http, sim, tok, {"external_userid": ["wmZ"], "sender": "k"})["errcode"] == 44004
    assert mass(http, sim, tok, {"external_userid": ["wmZ"], "sender": "k",
                                 "text": {"content": "x" * 4001}})["errcode"] == 40058
    assert mass(http, sim, tok, {"external_userid": ["wmZ"], "sender": "k",
                                 "text": {"content": "x"},
                                 "attachments": [{}] * 10})["errcode"] == 40058


def test_token_errors(inbox, clock, http):
    with WeComSimulator(inbox, clock=clock, token_ttl=60, corpid="ww-corp",
                        corpsecret="s3cret") as s:
        assert token(http, s, corpid="other")["errcode"] == 40013
        assert token(http, s, secret="wrong")["errcode"] == 40001
        tok = token(http, s)["access_token"]
        body = {"external_userid": ["wmA"], "sender": "k", "text": {"content": "hi"}}
        assert mass(http, s, "not-a-token", body)["errcode"] == 40014
        r = http.post(f"{s.url}/cgi-bin/externalcontact/add_msg_template", json=body, timeout=5)
        assert r.json()["errcode"] == 41001
        clock.advance(61)
        assert mass(http, s, tok, body)["errcode"] == 42001
        assert mass(http, s, token(http, s)["access_token"], body)["errcode"] == 0
    assert len(read_inbox(inbox)) == 1


def test_fault_busy_and_rate_limit_are_not_recorded(sim, http, inbox):
    r = http.post(f"{sim.url}/_simulator/faults", json={"busy_rate": 1.0, "seed": 7}, timeout=5)
    assert r.json()["busy_rate"] == 1.0
    assert http.get(f"{sim.url}/_simulator/faults", timeout=5).json()["seed"] == 7
    assert send(http, sim, text("busy"))["errcode"] == -1
    http.post(f"{sim.url}/_simulator/faults", json={"busy_rate": 0, "rate_limit_rate": 1},
              timeout=5)
    assert send(http, sim, text("limited"))["errcode"] == 45009
    assert read_inbox(inbox) == []
    assert http.post(f"{sim.url}/_simulator/reset", timeout=5).json()["errcode"] == 0
    assert http.get(f"{sim.url}/_simulator/faults", timeout=5).json()["rate_limit_rate"] == 0
    assert send(http, sim, text("ok"))["errcode"] == 0
    assert [r["content"] for r in read_inbox(inbox)] == ["ok"]


def test_fault_invalid_keys_and_partial_rates_are_reproducible(inbox, clock, http):
    with WeComSimulator(inbox, clock=clock, faults={"invalid_keys": [OTHER_KEY]}) as s:
        assert send(http, s, text("x"), key=OTHER_KEY)["errcode"] == 93000
        faults = http.get(f"{s.url}/_simulator/faults", timeout=5).json()
        assert OTHER_KEY not in str(faults)
        assert faults["invalid_key_fingerprints"] == [key_fingerprint(OTHER_KEY)]

        def run():
            http.post(f"{s.url}/_simulator/reset", timeout=5)
            http.post(f"{s.url}/_simulator/faults", json={"busy_rate": 0.5, "seed": 42},
                      timeout=5)
            return [send(http, s, text(str(i)), key=f"key-{i:04d}-zz")["errcode"]
                    for i in range(20)]

        a, b = run(), run()
        assert a == b and set(a) == {0, -1}


def test_fault_slow_records_then_client_times_out(sim, http, inbox):
    sim.set_faults({"slow_rate": 1.0, "slow_seconds": 1.5})
    with pytest.raises(requests.exceptions.ReadTimeout):
        send(http, sim, text("慢"), timeout=0.3)
    # The outcome is unknowable to the client, but the provider did deliver it.
    assert [r["content"] for r in read_inbox(inbox)] == ["慢"]


def test_fault_drop_records_then_connection_error(sim, http, inbox):
    http.post(f"{sim.url}/_simulator/faults", json={"drop_rate": 1.0}, timeout=5)
    with pytest.raises(requests.exceptions.ConnectionError):
        send(http, sim, text("掉线"))
    assert [r["content"] for r in read_inbox(inbox)] == ["掉线"]
    http.post(f"{sim.url}/_simulator/faults", json={"drop_rate": 0}, timeout=5)
    assert send(http, sim, text("恢复"))["errcode"] == 0  # the pool recovers


def test_inbox_survives_kill_and_never_holds_keys(tmp_path, http):
    inbox = tmp_path / "inbox.jsonl"
    code = textwrap.dedent(f"""
        import sys
        from qunyun.simulator import WeComSimulator
        s = WeComSimulator({str(inbox)!r}).start()
        print(s.url, flush=True)
        import time
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        for i in range(5):
            r = http.post(f"{url}/cgi-bin/webhook/send", params={"key": KEY},
                          json=text(f"消息{i}"), timeout=5)
            assert r.json()["errcode"] == 0
        assert len(read_inbox(inbox)) == 5  # readable while the server runs
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    recs = read_inbox(inbox)
    assert [r["content"] for r in recs] == [f"消息{i}" for i in range(5)]
    raw = inbox.read_text(encoding="utf-8")
    assert KEY not in raw and key_fingerprint(KEY) in raw


def test_health_keepalive_and_content_length(sim):
    with requests.Session() as s:
        for _ in range(3):
            r = s.get(f"{sim.url}/_simulator/health", timeout=5)
            assert r.json() == {"ok": True}
            assert r.headers["Content-Length"] == str(len(r.content))
            assert r.raw.version == 11
        assert len(s.adapters["http://"].poolmanager.pools) == 1


def test_read_inbox_tolerates_partial_line_and_missing_file(tmp_path):
    p = tmp_path / "inbox.jsonl"
    assert read_inbox(p) == []
    p.write_bytes(b'{"content":"a"}\n{"content":"b')
    assert read_inbox(p) == [{"content": "a"}]


# Run the `simulator` command registered on the real `qunyun` app, as a subcommand of the group
# and with QunyunError mapped to its exit code like `qunyun` does. Only this command module is
# imported, so the subprocess starts in well under a second (the full CLI pulls in Prefect).
CLI = """
import sys, typer
from qunyun.cli import app
import qunyun.cli.simulator  # registers `simulator` on app
from qunyun.errors import QunyunError
try:
    typer.main.get_group(app)(["simulator", *sys.argv[1:]], prog_name="qunyun")
except QunyunError as exc:
    print(exc, file=sys.stderr)
    sys.exit(exc.exit_code)
"""

def test_cli_runs_on_loopback_and_writes_the_workspace_inbox(tmp_path, http):
    env = {**os.environ, "QUNYUN_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", CLI, "--port", "0", "--valid-key", KEY],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("企业微信模拟器 (WeCom-compatible simulator, a test double) 已启动")
        url = line.split("已启动: ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        inbox = tmp_path / "home" / "simulator" / "inbox.jsonl"
        assert str(inbox) in line
        assert send(http, type("S", (), {"url": url}), text("命令行"))["errcode"] == 0
        assert send(http, type("S", (), {"url": url}), text("x"), key=OTHER_KEY)[
            "errcode"] == 93000
        assert [r["content"] for r in read_inbox(inbox)] == ["命令行"]
    finally:
        proc.send_signal(signal.SIGTERM)  # stops as cleanly as Ctrl+C
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_cli_refuses_non_loopback_host():
    proc = subprocess.run([sys.executable, "-c", CLI, "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "loopback" in proc.stderr
