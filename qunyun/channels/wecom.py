"""WeCom (企业微信): the group robot webhook and the customer mass-message API.

Payloads are exactly as the provider documents them. Errors arrive as HTTP 200 with an
errcode; the classification below decides retry versus final versus unknown.
"""

from __future__ import annotations

import json
import threading
import time

import requests
from requests.adapters import HTTPAdapter

from qunyun.channels.base import Outcome, SendResult
from qunyun.pii import mask_text

RATE_LIMITED = 45009
BUSY = -1
TOKEN_INVALID = 40014
TOKEN_EXPIRED = 42001
RETRYABLE = {RATE_LIMITED, BUSY}


def make_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["Content-Type"] = "application/json; charset=utf-8"
    return session


def _post(session: requests.Session, url: str, params: dict, body: bytes,
          timeout: float) -> tuple[SendResult | None, dict | None]:
    """POST once; a transport problem becomes RETRY (never sent) or UNKNOWN (maybe sent)."""
    try:
        resp = session.post(url, params=params, data=body, timeout=(min(timeout, 5.0), timeout))
    except requests.exceptions.ConnectTimeout:
        return SendResult(Outcome.RETRY, detail="connect_timeout"), None
    except requests.exceptions.ConnectionError as exc:
        # Refused or unreachable before the request went out is safe to retry; a connection
        # that broke after the request was written may have delivered it.
        text = str(exc)
        if "NewConnectionError" in text or "Connection refused" in text:
            return SendResult(Outcome.RETRY, detail="connect_error"), None
        return SendResult(Outcome.UNKNOWN, detail="connection_lost"), None
    except requests.exceptions.Timeout:
        return SendResult(Outcome.UNKNOWN, detail="timeout"), None
    except requests.exceptions.RequestException as exc:
        return SendResult(Outcome.UNKNOWN, detail=type(exc).__name__), None
    if resp.status_code >= 500:
        return SendResult(Outcome.UNKNOWN, detail=f"http_{resp.status_code}"), None
    try:
        data = resp.json()
    except ValueError:
        return SendResult(Outcome.UNKNOWN, detail="bad_response"), None
    return None, data


def _classify(data: dict) -> SendResult:
    code = int(data.get("errcode", -99))
    if code == 0:
        return SendResult(Outcome.SENT, code=0, msgid=data.get("msgid"),
                          fail_list=list(data.get("fail_list") or []))
    detail = mask_text(str(data.get("errmsg", "")))[:200]
    if code in RETRYABLE:
        return SendResult(Outcome.RETRY, code=code, detail=detail)
    return SendResult(Outcome.FAILED, code=code, detail=detail)


class WeComRobot:
    """Posts to group robots: POST {base}/cgi-bin/webhook/send?key=KEY."""

    def __init__(self, base_url: str, timeout: float = 10.0, pool_size: int = 16):
        self.url = base_url.rstrip("/") + "/cgi-bin/webhook/send"
        self.timeout = timeout
        self.session = make_session(pool_size)

    def send(self, key: str, payload: str) -> SendResult:
        """`payload` is the stored JSON body ({"msgtype": ..., ...})."""
        failed, data = _post(self.session, self.url, {"key": key}, payload.encode("utf-8"),
                             self.timeout)
        return failed or _classify(data)

    def close(self) -> None:
        self.session.close()


class WeComCustomer:
    """Customer mass messages (客户群发) through add_msg_template, with a cached access token."""

    def __init__(self, base_url: str, corp_id: str, corp_secret: str, timeout: float = 10.0,
                 pool_size: int = 4):
        self.base = base_url.rstrip("/")
        self.corp_id = corp_id
        self._corp_secret = corp_secret
        self.timeout = timeout
        self.session = make_session(pool_size)
        self._token: str | None = None
        self._token_expires = 0.0
        self._lock = threading.Lock()

    def _access_token(self, refresh: bool = False) -> str | SendResult:
        with self._lock:
            if not refresh and self._token and time.monotonic() < self._token_expires:
                return self._token
            try:
                resp = self.session.get(
                    self.base + "/cgi-bin/gettoken",
                    params={"corpid": self.corp_id, "corpsecret": self._corp_secret},
                    timeout=self.timeout,
                )
                data = resp.json()
            except (requests.exceptions.RequestException, ValueError) as exc:
                return SendResult(Outcome.RETRY, detail=f"gettoken: {type(exc).__name__}")
            if data.get("errcode", 0) != 0:
                result = _classify(data)
                result.detail = f"gettoken: {result.detail}"
                return result
            self._token = data["access_token"]
            # Refresh a little early so a token never expires mid-batch.
            self._token_expires = time.monotonic() + int(data.get("expires_in", 7200)) - 300
            return self._token

    def send(self, sender: str, external_userids: list[str], content: str) -> SendResult:
        body = json.dumps(
            {"chat_type": "single", "external_userid": external_userids, "sender": sender,
             "text": {"content": content}},
            ensure_ascii=False,
        ).encode("utf-8")
        for refresh in (False, True):
            token = self._access_token(refresh=refresh)
            if isinstance(token, SendResult):
                return token
            failed, data = _post(self.session, self.base + "/cgi-bin/externalcontact/add_msg_template",
                                 {"access_token": token}, body, self.timeout)
            if failed:
                return failed
            if data.get("errcode") in (TOKEN_INVALID, TOKEN_EXPIRED) and not refresh:
                continue
            return _classify(data)
        return _classify(data)

    def close(self) -> None:
        self.session.close()
