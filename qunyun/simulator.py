"""The WeCom-compatible simulator: a TEST DOUBLE of the WeCom (企业微信) provider.

It is a real HTTP/1.1 server on loopback that implements the WeCom endpoints Qunyun delivers to,
with the documented payload limits, rate limits and error codes, so the demo and the tests go
over real HTTP exactly as production would. It is not WeCom and never talks to WeCom.

Endpoints
- ``POST /cgi-bin/webhook/send?key=KEY``: group robot (群机器人); text (≤ 2048 bytes UTF-8),
  markdown (≤ 4096 bytes), news (1..8 articles). 20 accepted messages per key per sliding 60 s.
- ``GET  /cgi-bin/gettoken?corpid=&corpsecret=``: access_token with ``expires_in``.
- ``POST /cgi-bin/externalcontact/add_msg_template?access_token=``: customer mass message
  (客户群发); each customer (or customer group) receives at most one per simulated day
  (Asia/Shanghai); the others come back in ``fail_list``.
- ``GET /_simulator/health``, ``GET|POST /_simulator/faults``, ``POST /_simulator/reset``.

Every ACCEPTED message is appended to a JSON-lines inbox, one flushed line per message, under
a lock. Webhook keys never reach the inbox: only ``key_fingerprint(key)`` does.

Errors follow WeCom: HTTP 200 with ``{"errcode": ..., "errmsg": ...}``.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import secrets
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

__all__ = [
    "ERR",
    "Faults",
    "WeComSimulator",
    "key_fingerprint",
    "read_inbox",
    "serve_forever",
]

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

# Documented limits.
TEXT_MAX_BYTES = 2048
MARKDOWN_MAX_BYTES = 4096
NEWS_MAX_ARTICLES = 8
NEWS_TITLE_MAX_BYTES = 128
NEWS_DESCRIPTION_MAX_BYTES = 512
WEBHOOK_PER_MINUTE = 20
WEBHOOK_WINDOW_SECONDS = 60.0
MASS_TEXT_MAX_BYTES = 4000
MASS_MAX_RECIPIENTS = 10000
MASS_MAX_ATTACHMENTS = 9
MAX_BODY_BYTES = 4 * 1024 * 1024

# WeCom global error codes used here (errcode -> errmsg).
ERR: dict[int, str] = {
    0: "ok",
    -1: "system busy",
    40001: "invalid secret",
    40008: "invalid message type",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40058: "invalid Request Parameter",
    41001: "access_token missing",
    41002: "corpid missing",
    41004: "corpsecret missing",
    42001: "access_token expired",
    44004: "empty content",
    45009: "api freq out of limit",
    93000: "invalid webhook url",
}

_KEY_RE = re.compile(r"^[A-Za-z0-9-]{8,64}$")


def key_fingerprint(key: str) -> str:
    """A stable, non-reversible name for a webhook key: sha256(key) hex, first 12 chars."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def read_inbox(path: str | Path) -> list[dict[str, Any]]:
    """Every record in the inbox file, oldest first; [] when there is none yet.

    Safe to call while the simulator writes: a trailing partial line is skipped.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        return []
    records: list[dict[str, Any]] = []
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line being written right now, or cut by a kill
    return records


@dataclass
class Faults:
    """Injected failures for tests. Rates are fractions in [0, 1].

    busy_rate / rate_limit_rate: answer -1 / 45009 WITHOUT recording the message.
    slow_rate + slow_seconds: record the message, then sleep before answering.
    drop_rate: record the message, then close the connection without answering.
    invalid_keys: webhook keys answered 93000.
    """

    busy_rate: float = 0.0
    rate_limit_rate: float = 0.0
    slow_seconds: float = 0.0
    slow_rate: float = 0.0
    drop_rate: float = 0.0
    invalid_keys: set[str] = field(default_factory=set)
    seed: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Faults | None = None) -> Faults:
        """A Faults from a (partial) dict; fields absent keep their value from `base`."""
        if not isinstance(data, dict):
            raise ValueError("faults must be a JSON object")
        cur = base or cls()
        known = {"busy_rate", "rate_limit_rate", "slow_seconds", "slow_rate", "drop_rate",
                 "invalid_keys", "seed"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {sorted(unknown)}")
        out = cls(
            busy_rate=cur.busy_rate,
            rate_limit_rate=cur.rate_limit_rate,
            slow_seconds=cur.slow_seconds,
            slow_rate=cur.slow_rate,
            drop_rate=cur.drop_rate,
            invalid_keys=set(cur.invalid_keys),
            seed=cur.seed,
        )
        for name in ("busy_rate", "rate_limit_rate", "slow_rate", "drop_rate"):
            if name in data:
                v = float(data[name])
                if not 0.0 <= v <= 1.0:
                    raise ValueError(f"{name} must be within [0, 1]")
                setattr(out, name, v)
        if "slow_seconds" in data:
            v = float(data["slow_seconds"])
            if v < 0:
                raise ValueError("slow_seconds must be >= 0")
            out.slow_seconds = v
        if "invalid_keys" in data:
            keys = data["invalid_keys"] or []
            if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
                raise ValueError("invalid_keys must be a list of strings")
            out.invalid_keys = set(keys)
        if "seed" in data:
            out.seed = None if data["seed"] is None else int(data["seed"])
        return out

    def public(self) -> dict[str, Any]:
        """JSON view; keys are shown by fingerprint only."""
        return {
            "busy_rate": self.busy_rate,
            "rate_limit_rate": self.rate_limit_rate,
            "slow_seconds": self.slow_seconds,
            "slow_rate": self.slow_rate,
            "drop_rate": self.drop_rate,
            "invalid_key_fingerprints": sorted(key_fingerprint(k) for k in self.invalid_keys),
            "seed": self.seed,
        }


def _err_body(code: int, detail: str | None = None) -> bytes:
    msg = ERR.get(code, "error")
    if detail:
        msg = f"{msg}: {detail}"
    return json.dumps({"errcode": code, "errmsg": msg}, ensure_ascii=False).encode("utf-8")


# Constant answers, encoded once.
_OK = _err_body(0)
_PRE = {code: _err_body(code) for code in ERR}
_HEALTH = b'{"ok":true}'


class _Reject(Exception):
    def __init__(self, code: int, detail: str | None = None):
        super().__init__(code, detail)
        self.body = _PRE[code] if detail is None and code in _PRE else _err_body(code, detail)


def _nbytes(s: str) -> int:
    return len(s.encode("utf-8"))


def _str_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise _Reject(40058, f"{name} must be a list of strings")
    return value


class _State:
    """Everything the handlers share; one lock for counters, one for the inbox file."""

    def __init__(self, inbox_path: Path, valid_keys: Iterable[str] | None, faults: Faults,
                 token_ttl: float, clock: Callable[[], float],
                 corpid: str | None, corpsecret: str | None):
        self.inbox_path = inbox_path
        self.valid_keys = None if valid_keys is None else frozenset(valid_keys)
        self.token_ttl = float(token_ttl)
        self.clock = clock
        self.corpid = corpid
        self.corpsecret = corpsecret
        self.lock = threading.Lock()
        self.inbox_lock = threading.Lock()
        self.windows: dict[str, deque[float]] = {}
        self.tokens: dict[str, float] = {}
        self.daily: dict[str, set[str]] = {}  # "YYYY-MM-DD" -> {"single:<id>", "group:<id>"}
        self.set_faults(faults)
        inbox_path.parent.mkdir(parents=True, exist_ok=True)
        self._load_daily_from_inbox()
        self.inbox = open(inbox_path, "ab", buffering=0)  # noqa: SIM115 - lives with the server

    # -- faults ---------------------------------------------------------------------------
    def set_faults(self, faults: Faults) -> None:
        with self.lock:
            self.faults = faults
            self.rng = random.Random(faults.seed)

    def roll(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        with self.lock:
            return self.rng.random() < rate

    # -- time -----------------------------------------------------------------------------
    def now(self) -> float:
        return float(self.clock())

    @staticmethod
    def day_of(ts: float) -> str:
        return datetime.fromtimestamp(ts, SHANGHAI).date().isoformat()

    # -- inbox ----------------------------------------------------------------------------
    def _load_daily_from_inbox(self) -> None:
        """Rebuild the once-per-day mass-message quota from the inbox, so a restart keeps it."""
        for rec in read_inbox(self.inbox_path):
            if rec.get("endpoint") != "add_msg_template":
                continue
            try:
                day = datetime.fromisoformat(rec["received_at"]).astimezone(SHANGHAI)
            except (KeyError, TypeError, ValueError):
                continue
            kind = rec.get("chat_type", "single")
            ids = rec.get("external_userid") if kind == "single" else rec.get("chat_id_list")
            bucket = self.daily.setdefault(day.date().isoformat(), set())
            bucket.update(f"{kind}:{i}" for i in ids or [])

    def record(self, rec: dict[str, Any]) -> None:
        line = json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
        with self.inbox_lock:
            # Unbuffered file: one write() per record, in the OS as soon as it returns, so the
            # line survives this process being killed.
            self.inbox.write(line)

    def close(self) -> None:
        with self.inbox_lock:
            self.inbox.close()


def _new_msgid() -> str:
    return "msg" + secrets.token_hex(12)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "QunyunWeComSimulator/1"
    sys_version = ""
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024  # headers + body leave in one send; flushed by handle_one_request
    state: _State  # set on the per-server subclass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    # -- plumbing -------------------------------------------------------------------------
    def _send(self, body: bytes, status: int = 200, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if extra:
            for k, v in extra.items():
                self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                self.close_connection = True
                raise _Reject(40058, "chunked bodies are not supported; send Content-Length")
            return b""
        try:
            n = int(length)
        except ValueError:
            self.close_connection = True
            raise _Reject(40058, "bad Content-Length") from None
        if n < 0 or n > MAX_BODY_BYTES:
            self.close_connection = True
            raise _Reject(40058, "request body too large")
        return self.rfile.read(n) if n else b""

    def _json_body(self) -> dict[str, Any]:
        raw = self._read_body()
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _Reject(40058, "request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise _Reject(40058, "request body must be a JSON object")
        return data

    def _drop(self) -> None:
        """Close the connection without any answer (the message was already recorded)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- routing --------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path, _, query = self.path.partition("?")
        try:
            if path == "/cgi-bin/gettoken":
                self._send(self._gettoken(parse_qs(query)))
            elif path == "/_simulator/health":
                self._send(_HEALTH)
            elif path == "/_simulator/faults":
                self._send(json.dumps(self.state.faults.public()).encode())
            else:
                self._send(_err_body(404, f"no such endpoint {path}"), status=404)
        except _Reject as rej:
            self._send(rej.body)

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        path, _, query = self.path.partition("?")
        try:
            if path == "/cgi-bin/webhook/send":
                self._webhook(parse_qs(query))
            elif path == "/cgi-bin/externalcontact/add_msg_template":
                self._add_msg_template(parse_qs(query))
            elif path == "/_simulator/faults":
                data = self._json_body()
                try:
                    faults = Faults.from_dict(data, self.state.faults)
                except (ValueError, TypeError) as exc:
                    raise _Reject(40058, str(exc)) from None
                self.state.set_faults(faults)
                self._send(json.dumps(faults.public()).encode())
            elif path == "/_simulator/reset":
                self._read_body()
                self.server.simulator.reset()  # type: ignore[attr-defined]
                self._send(_OK)
            else:
                self._read_body()
                self._send(_err_body(404, f"no such endpoint {path}"), status=404)
        except _Reject as rej:
            self._send(rej.body)

    # -- shared fault / delivery steps ----------------------------------------------------
    def _pre_faults(self) -> None:
        st = self.state
        f = st.faults
        if st.roll(f.busy_rate):
            raise _Reject(-1)
        if st.roll(f.rate_limit_rate):
            raise _Reject(45009)

    def _deliver(self, rec: dict[str, Any], body: bytes, msgid: str) -> None:
        st = self.state
        st.record(rec)
        f = st.faults
        if st.roll(f.drop_rate):
            self._drop()
            return
        if f.slow_seconds > 0 and st.roll(f.slow_rate):
            time.sleep(f.slow_seconds)
        self._send(body, extra={"X-Simulator-Msgid": msgid})

    # -- endpoints ------------------------------------------------------------------------
    def _gettoken(self, q: dict[str, list[str]]) -> bytes:
        st = self.state
        corpid = (q.get("corpid") or [""])[0]
        secret = (q.get("corpsecret") or [""])[0]
        if not corpid:
            raise _Reject(41002)
        if st.corpid is not None and corpid != st.corpid:
            raise _Reject(40013)
        if not secret:
            raise _Reject(41004)
        if st.corpsecret is not None and secret != st.corpsecret:
            raise _Reject(40001)
        token = secrets.token_urlsafe(32)
        now = st.now()
        ttl = st.token_ttl
        with st.lock:
            # forget expired tokens so the table stays small
            if len(st.tokens) > 1000:
                st.tokens = {t: e for t, e in st.tokens.items() if e > now}
            st.tokens[token] = now + ttl
        return json.dumps({"errcode": 0, "errmsg": "ok", "access_token": token,
                           "expires_in": int(ttl)}).encode()

    def _webhook(self, q: dict[str, list[str]]) -> None:
        st = self.state
        data = self._json_body()  # always consume the body: keep-alive stays in sync
        key = (q.get("key") or [""])[0]
        if not key or key in st.faults.invalid_keys:
            raise _Reject(93000)
        if st.valid_keys is not None:
            if key not in st.valid_keys:
                raise _Reject(93000)
        elif not _KEY_RE.match(key):
            raise _Reject(93000)
        self._pre_faults()

        msgtype = data.get("msgtype")
        rec: dict[str, Any] = {"msgtype": msgtype}
        if msgtype in ("text", "markdown"):
            part = data.get(msgtype)
            if not isinstance(part, dict):
                raise _Reject(40058, f"missing {msgtype} object")
            content = part.get("content")
            if content is None or content == "":
                raise _Reject(44004)
            if not isinstance(content, str):
                raise _Reject(40058, "content must be a string")
            limit = TEXT_MAX_BYTES if msgtype == "text" else MARKDOWN_MAX_BYTES
            size = _nbytes(content)
            if size > limit:
                raise _Reject(40058, f"content exceed max length {limit} bytes (got {size})")
            rec["content"] = content
            if msgtype == "text":
                rec["mentioned_list"] = _str_list(part.get("mentioned_list"), "mentioned_list")
                rec["mentioned_mobile_list"] = _str_list(
                    part.get("mentioned_mobile_list"), "mentioned_mobile_list")
        elif msgtype == "news":
            part = data.get("news")
            articles = part.get("articles") if isinstance(part, dict) else None
            if not isinstance(articles, list):
                raise _Reject(40058, "news.articles must be a list")
            if not articles:
                raise _Reject(44004, "news.articles is empty")
            if len(articles) > NEWS_MAX_ARTICLES:
                raise _Reject(40058, f"at most {NEWS_MAX_ARTICLES} articles")
            clean = []
            for i, a in enumerate(articles):
                if not isinstance(a, dict):
                    raise _Reject(40058, f"articles[{i}] must be an object")
                title, url = a.get("title"), a.get("url")
                desc, pic = a.get("description", ""), a.get("picurl", "")
                if not isinstance(title, str) or not title:
                    raise _Reject(44004, f"articles[{i}].title is empty")
                if not isinstance(url, str) or not url:
                    raise _Reject(40058, f"articles[{i}].url is required")
                if not isinstance(desc, str) or not isinstance(pic, str):
                    raise _Reject(40058, f"articles[{i}] description/picurl must be strings")
                if _nbytes(title) > NEWS_TITLE_MAX_BYTES:
                    raise _Reject(40058, f"articles[{i}].title over {NEWS_TITLE_MAX_BYTES} bytes")
                if _nbytes(desc) > NEWS_DESCRIPTION_MAX_BYTES:
                    raise _Reject(40058, f"articles[{i}].description over "
                                         f"{NEWS_DESCRIPTION_MAX_BYTES} bytes")
                clean.append({"title": title, "description": desc, "url": url, "picurl": pic})
            rec["content"] = clean
        elif msgtype is None:
            raise _Reject(40058, "msgtype is required")
        else:
            raise _Reject(40008, f"msgtype {msgtype!r} is not simulated")

        # Sliding 60 s window of ACCEPTED messages per key; a refused one uses no slot.
        now = st.now()
        with st.lock:
            win = st.windows.get(key)
            if win is None:
                win = st.windows[key] = deque()
            cutoff = now - WEBHOOK_WINDOW_SECONDS
            while win and win[0] <= cutoff:
                win.popleft()
            if len(win) >= WEBHOOK_PER_MINUTE:
                raise _Reject(45009)
            win.append(now)

        msgid = _new_msgid()
        full = {
            "received_at": datetime.fromtimestamp(now, SHANGHAI).isoformat(timespec="milliseconds"),
            "endpoint": "webhook",
            "key_fingerprint": key_fingerprint(key),
            **rec,
            "msgid": msgid,
        }
        self._deliver(full, _OK, msgid)

    def _add_msg_template(self, q: dict[str, list[str]]) -> None:
        st = self.state
        data = self._json_body()
        token = (q.get("access_token") or [""])[0]
        if not token:
            raise _Reject(41001)
        now = st.now()
        with st.lock:
            expires = st.tokens.get(token)
        if expires is None:
            raise _Reject(40014)
        if now >= expires:
            raise _Reject(42001)
        self._pre_faults()

        chat_type = data.get("chat_type", "single")
        if chat_type not in ("single", "group"):
            raise _Reject(40058, "chat_type must be 'single' or 'group'")
        external = _str_list(data.get("external_userid"), "external_userid")
        chats = _str_list(data.get("chat_id_list"), "chat_id_list")
        if len(external) > MASS_MAX_RECIPIENTS:
            raise _Reject(40058, f"at most {MASS_MAX_RECIPIENTS} external_userid")
        sender = data.get("sender")
        if sender is not None and not isinstance(sender, str):
            raise _Reject(40058, "sender must be a string")
        if not sender and (external or chat_type == "group"):
            raise _Reject(40058, "sender is required")
        text = data.get("text")
        content = ""
        if text is not None:
            if not isinstance(text, dict) or not isinstance(text.get("content", ""), str):
                raise _Reject(40058, "text.content must be a string")
            content = text.get("content", "")
        if _nbytes(content) > MASS_TEXT_MAX_BYTES:
            raise _Reject(40058, f"text.content exceeds {MASS_TEXT_MAX_BYTES} bytes")
        attachments = data.get("attachments") or []
        if not isinstance(attachments, list):
            raise _Reject(40058, "attachments must be a list")
        if len(attachments) > MASS_MAX_ATTACHMENTS:
            raise _Reject(40058, f"at most {MASS_MAX_ATTACHMENTS} attachments")
        if not content and not attachments:
            raise _Reject(44004)

        targets = external if chat_type == "single" else chats
        day = st.day_of(now)
        accepted: list[str] = []
        fail_list: list[str] = []
        with st.lock:
            seen = st.daily.setdefault(day, set())
            for rid in dict.fromkeys(targets):  # de-duplicate, keep order
                tag = f"{chat_type}:{rid}"
                if tag in seen:
                    fail_list.append(rid)
                else:
                    seen.add(tag)
                    accepted.append(rid)

        msgid = _new_msgid()
        body = json.dumps({"errcode": 0, "errmsg": "ok", "fail_list": fail_list,
                           "msgid": msgid}, ensure_ascii=False).encode("utf-8")
        if targets and not accepted:
            # Everyone already got one today: nothing is delivered, nothing recorded.
            self._send(body)
            return
        rec = {
            "received_at": datetime.fromtimestamp(now, SHANGHAI).isoformat(timespec="milliseconds"),
            "endpoint": "add_msg_template",
            "key_fingerprint": None,
            "msgtype": "text" if content else "attachments",
            "content": content,
            "chat_type": chat_type,
            "sender": sender,
            "external_userid": accepted if chat_type == "single" else [],
            "chat_id_list": accepted if chat_type == "group" else [],
            "fail_list": fail_list,
            "attachments": len(attachments),
            "msgid": msgid,
        }
        self._deliver(rec, body, msgid)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128


class WeComSimulator:
    """The WeCom-compatible simulator (a test double). Use as a context manager or start/stop.

    clock: a callable returning epoch seconds (default time.time); inject one in tests to move
    time forward (rate windows, token expiry and the simulated day all follow it).
    corpid / corpsecret: when given, gettoken accepts only these; default any non-empty.
    """

    def __init__(self, inbox_path: str | Path, host: str = "127.0.0.1", port: int = 0,
                 valid_keys: Iterable[str] | None = None,
                 faults: Faults | dict[str, Any] | None = None, token_ttl: float = 7200,
                 clock: Callable[[], float] | None = None,
                 corpid: str | None = None, corpsecret: str | None = None):
        if isinstance(faults, dict):
            faults = Faults.from_dict(faults)
        self._initial_faults = faults or Faults()
        self.inbox_path = Path(inbox_path)
        self._state = _State(self.inbox_path, valid_keys, self._initial_faults, token_ttl,
                             clock or time.time, corpid, corpsecret)
        handler = type("WeComSimulatorHandler", (_Handler,), {"state": self._state})
        self._httpd = _Server((host, port), handler)
        self._httpd.simulator = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- addresses --------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    # -- control ----------------------------------------------------------------------------
    @property
    def faults(self) -> Faults:
        return self._state.faults

    def set_faults(self, faults: Faults | dict[str, Any]) -> None:
        if isinstance(faults, dict):
            faults = Faults.from_dict(faults, self._state.faults)
        self._state.set_faults(faults)

    def reset(self) -> None:
        """Clear rate windows, the per-day mass-message quota and faults (not the inbox)."""
        st = self._state
        with st.lock:
            st.windows.clear()
            st.daily.clear()
        st.set_faults(Faults())

    def inbox(self) -> list[dict[str, Any]]:
        return read_inbox(self.inbox_path)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> WeComSimulator:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                name=f"wecom-simulator:{self.port}", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until KeyboardInterrupt or stop()."""
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._close()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._httpd.server_close()
            self._state.close()

    def __enter__(self) -> WeComSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(inbox_path: str | Path, host: str = "127.0.0.1", port: int = 18650,
                  valid_keys: Iterable[str] | None = None,
                  faults: Faults | dict[str, Any] | None = None, token_ttl: float = 7200,
                  on_ready: Callable[[WeComSimulator], None] | None = None) -> None:
    """Run a simulator in the foreground (the CLI); `on_ready` is called once it listens."""
    sim = WeComSimulator(inbox_path, host=host, port=port, valid_keys=valid_keys,
                         faults=faults, token_ttl=token_ttl)
    if threading.current_thread() is threading.main_thread():
        # `kill` (SIGTERM) stops it as cleanly as Ctrl+C does.
        def _term(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _term)
    if on_ready is not None:
        on_ready(sim)
    try:
        sim.serve_forever()
    except KeyboardInterrupt:
        pass

