"""A synthetic private-domain community (私域社群) for `qunyun demo`, the tests and the benchmarks.

`build_community` fills an EMPTY app database with staff (企业成员), members (客户) with tags,
groups (社群) of the four kinds, memberships and, optionally, behaviour events over a window of
days. Everything is drawn from a latent model with numpy (`seed` → the same data), generated
in chunks of members and written with plain DB-API executemany, one transaction per chunk.

The latent model, per customer:
  * joined_at: more joins early in the window (a launch wave), evening-heavy time of day;
  * an activity rate (events/day) from a lognormal: a few very active members, many quiet;
  * a honeymoon boost in the first days (催熟期), for some a slow fade, for some a churn date
    after which they stop (and often leave their groups);
  * a weekday rhythm by the kind of their first group, an evening peak (20–22h) and a lunch
    bump, and a weekly 会员日 (MEMBER_DAY_WEEKDAY) with more clicks and purchases;
  * a purchase rate (lognormal, correlated with activity) and a referral rate for the keen;
  * one 7-day check-in challenge (打卡挑战) ending a week before the window ends.

Lifecycle columns (last_active_at, total_spend, stage, activity_state, fan_level) are computed
from the generated events; with `with_events=False` they are drawn from the same latent model
(the count, spend and last-activity distributions match, there are just no event rows).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, text

from qunyun.models import EVENT_KINDS, GROUP_KINDS
from qunyun.secrets import add_workspace_secrets

CHUNK = 50_000
BRAND = "小满"
MEMBER_DAY_WEEKDAY = 2  # 周三会员日 (Monday = 0)
CHALLENGE_DAYS = 7
DAY = 86_400

# Fan-level thresholds on the engagement score (weights in SCORE_WEIGHTS), whole window.
SCORE_WEIGHTS = {
    "message": 1.0, "checkin": 2.0, "like": 0.5, "comment": 2.0, "share": 4.0, "click": 0.5,
    "purchase": 6.0, "referral": 10.0,
}
FAN_THRESHOLDS = (15.0, 60.0, 200.0)  # friendly, devoted, advocate

SOURCE_CHANNELS = ("公众号", "视频号", "门店扫码", "老带新", "小红书", "抖音", "线下活动")
SOURCE_WEIGHTS = (0.22, 0.16, 0.18, 0.12, 0.14, 0.12, 0.06)

# name, base weight; behaviour-linked tags get multipliers in _tag_weights.
TAGS = (
    ("新客", 1.0), ("复购", 1.0), ("高客单", 1.0), ("宝妈", 1.2), ("学生党", 1.0),
    ("敏感肌", 1.4), ("会员", 1.0), ("价格敏感", 1.1), ("活动达人", 1.0), ("沉默用户", 1.0),
    ("干皮", 1.0), ("油皮", 1.0), ("职场白领", 1.0), ("成分党", 0.8), ("送礼需求", 0.5),
    ("直播间用户", 0.7), ("门店老客", 0.7), ("男士护肤", 0.4),
)

GROUP_TOPICS = {
    "interest": ("护肤交流群", "敏感肌互助群", "成分党研究所", "宝妈护肤群", "学生党省钱群"),
    "seeding": ("好物种草群", "新品体验群", "福利种草群"),
    "superfan": ("铁粉俱乐部", "老粉福利群"),
    "vip": ("VIP尊享群", "黑卡会员群"),
}
GROUP_SHARES = (0.4, 0.3, 0.2, 0.1)

# Per group kind: (message, like, comment, checkin, click, share) shares of everyday events.
_MIX_KINDS = ("message", "like", "comment", "checkin", "click", "share")
_MIX = np.array([
    [0.62, 0.14, 0.10, 0.06, 0.05, 0.03],  # interest
    [0.45, 0.15, 0.10, 0.02, 0.22, 0.06],  # seeding
    [0.55, 0.14, 0.12, 0.08, 0.06, 0.05],  # superfan
    [0.50, 0.12, 0.10, 0.03, 0.18, 0.07],  # vip
])
# Weekday factor (Mon..Sun) by a member's first group kind: seeding/VIP quieter at weekends.
_WEEKDAY = np.array([
    [1.00, 1.00, 1.00, 1.00, 1.05, 1.15, 1.10],
    [1.00, 1.00, 1.00, 1.00, 1.00, 0.80, 0.75],
    [1.00, 1.00, 1.00, 1.00, 1.10, 1.10, 1.00],
    [1.05, 1.05, 1.05, 1.05, 1.00, 0.70, 0.65],
])
_HOURS = np.array([
    0.30, 0.15, 0.08, 0.05, 0.05, 0.10, 0.40, 1.00, 1.60, 1.80, 1.90, 2.20,
    3.00, 2.60, 1.80, 1.70, 1.80, 2.00, 2.40, 3.20, 4.50, 4.80, 3.80, 1.80,
])
_HOURS_P = _HOURS / _HOURS.sum()
_SALE_HOURS = _HOURS.copy()
_SALE_HOURS[20:22] *= 4.0  # 会员日 evening flash sale
_SALE_HOURS_P = _SALE_HOURS / _SALE_HOURS.sum()

SKUS = (
    ("氨基酸洁面乳", 69), ("玻尿酸保湿水", 129), ("修护精华液", 299), ("清透防晒乳", 119),
    ("补水面膜10片", 79), ("紧致眼霜", 239), ("焕颜护肤礼盒", 599), ("香氛身体乳", 89),
    ("温和卸妆油", 109), ("润唇膏", 39), ("修护面霜", 259), ("精华小样套装", 49),
)
_SKU_P = np.array([0.14, 0.12, 0.08, 0.12, 0.14, 0.05, 0.02, 0.08, 0.08, 0.08, 0.05, 0.04])
_SKU_PRICE = np.array([p for _, p in SKUS], dtype=float)
_SKU_PROPS = [json.dumps({"sku": s}, ensure_ascii=False) for s, _ in SKUS]
TOPICS = ("敏感肌", "防晒", "补水", "成分", "新品", "价格", "物流", "抗老", "祛痘", "会员日")
_TOPIC_PROPS = [json.dumps({"topic": t}, ensure_ascii=False) for t in TOPICS]

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐"
    "许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程"
)
_GIVEN = "婷晓静雯欣悦怡佳琳雪丽敏倩颖洁慧娜蕾嘉梦瑶萱涵彤莉芳燕伟磊杰浩宇晨阳子文"
_NICK_WORDS = (
    "晴天", "小鹿", "安安", "木木", "糖糖", "橙子", "七七", "小雨", "阿紫", "豆豆", "一一",
    "果果", "暖阳", "清风", "月亮", "小熊", "芒果", "奶茶", "西瓜", "栗子", "桃子", "可乐",
    "星星", "云朵", "柠檬", "小鱼", "麦兜", "团子", "饭饭", "甜甜", "米粒", "阿狸", "布丁",
    "小满", "初夏", "南风", "知秋", "半夏", "青柠", "山茶", "鹿鸣", "十一", "朵朵", "悠悠",
)
_NICK_SUFFIX = ("妈妈", "酱", "呀", "吖", "同学", "姐", "宝宝", "～", "的小窝", "不加糖", "本人")
_NICK_EN = (
    "Amy", "Lily", "Coco", "Momo", "Vivian", "Grace", "Cindy", "Echo", "Luna", "Yuki",
    "Jenny", "Kiki", "Anna", "Sunny", "Zoe", "Mia", "Ivy", "Nina",
)
_NICK_PHRASE = (
    "努力变美的{w}", "早睡早起的{w}", "不吃香菜", "快乐小狗", "一只{w}", "{w}今天也要开心",
    "爱护肤的{w}", "{w}在减肥", "熬夜冠军", "佛系少女", "干饭人", "{w}和猫",
)
_EMOJI = ("🌸", "🌙", "🍑", "✨", "🐱", "🌷", "☀️", "🍓", "💕", "🍀", "🐰", "🌈")


@dataclass
class CommunityStats:
    members: int
    staff: int
    groups: int
    memberships: int
    events: int
    tags: int
    seconds: float


# --------------------------------------------------------------------------- helpers


class _Writer:
    """executemany over the raw DB-API cursor, with the dialect's placeholder and value types."""

    def __init__(self, engine: Engine, start: datetime):
        self.sqlite = engine.dialect.name == "sqlite"
        self.ph = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self.base = np.datetime64(start.replace(microsecond=0), "s")

    def insert(self, conn, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) "
               f"VALUES ({', '.join([self.ph] * len(columns))})")
        conn.exec_driver_sql(sql, rows)

    def times(self, secs: np.ndarray) -> list:
        """Seconds from the window start → the values a DateTime column takes (None for -1)."""
        secs = np.asarray(secs, dtype=np.int64)
        missing = secs < -10**12
        stamps = self.base + secs.astype("timedelta64[s]")
        if self.sqlite:  # SQLAlchemy's SQLite DateTime storage format
            out = [f"{s[:10]} {s[11:]}.000000" for s in np.datetime_as_string(stamps).tolist()]
        else:
            out = stamps.astype("datetime64[us]").tolist()
        if missing.any():
            for i in np.flatnonzero(missing).tolist():
                out[i] = None
        return out


class _Session:
    """One connection for the whole build, a transaction per chunk; a bigger SQLite page cache
    while loading (index inserts on a million rows thrash the default 2 MB), restored after."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"

    def __enter__(self) -> _Session:
        self.conn = self.engine.connect()
        if self.sqlite:
            self.conn.exec_driver_sql("PRAGMA cache_size=-131072")
            self.conn.commit()
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.sqlite:
                self.conn.rollback()
                self.conn.exec_driver_sql("PRAGMA cache_size=-2000")
                self.conn.commit()
        finally:
            self.conn.close()

    def begin(self):
        return _Tx(self.conn)


class _Tx:
    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        self.tx = self.conn.begin()
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.tx.commit()
        else:
            self.tx.rollback()


NONE_T = -(2**62)  # "no timestamp" in the int64 second arrays


def _ids(rng: np.random.Generator, n: int, prefix: bytes, alphabet: bytes, width: int) -> list:
    alpha = np.frombuffer(alphabet, dtype=np.uint8)
    buf = np.empty((n, len(prefix) + width), dtype=np.uint8)
    buf[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    buf[:, len(prefix):] = alpha[rng.integers(0, len(alpha), (n, width))]
    return buf.view(f"S{buf.shape[1]}").ravel().astype(f"U{buf.shape[1]}").tolist()


_ALNUM = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_LOWER_ALNUM = b"0123456789abcdefghijklmnopqrstuvwxyz"


def _hour_secs(rng: np.random.Generator, n: int, p: np.ndarray = _HOURS_P) -> np.ndarray:
    return rng.choice(24, size=n, p=p) * 3600 + rng.integers(0, 3600, n)


def _nickname_pool(rnd: random.Random, size: int) -> list[str]:
    pool = []
    for _ in range(size):
        w = rnd.choice(_NICK_WORDS)
        r = rnd.random()
        if r < 0.30:
            nick = w + (rnd.choice(_NICK_SUFFIX) if rnd.random() < 0.5 else "")
        elif r < 0.45:
            nick = rnd.choice(_NICK_EN) + (
                "_" + rnd.choice(_SURNAMES) if rnd.random() < 0.4 else "")
        elif r < 0.58:
            nick = rnd.choice(_SURNAMES) + rnd.choice(("姐", "女士", "先生", "小姐姐", "老师"))
        elif r < 0.75:
            nick = rnd.choice(_NICK_PHRASE).format(w=w)
        elif r < 0.88:
            nick = rnd.choice(_SURNAMES) + "".join(rnd.choices(_GIVEN, k=rnd.choice((1, 2))))
        else:
            nick = w + w[-1] if rnd.random() < 0.5 else "小" + w[-1]
        if rnd.random() < 0.14:
            e = rnd.choice(_EMOJI)
            nick = e + nick if rnd.random() < 0.3 else nick + e
        pool.append(nick)
    return pool


def _split(total: int, shares) -> list[int]:
    """Largest-remainder split of `total`, at least one each when total allows."""
    raw = [total * s for s in shares]
    out = [int(x) for x in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - out[i], reverse=True):
        if sum(out) >= total:
            break
        out[i] += 1
    if total >= len(shares):
        for i in range(len(out)):
            if out[i] == 0:
                j = max(range(len(out)), key=lambda j: out[j])
                out[j] -= 1
                out[i] += 1
    return out


def _chunks(n: int, size: int = CHUNK):
    for lo in range(0, n, size):
        yield lo, min(n, lo + size)


# --------------------------------------------------------------------------- build


def build_community(
    engine: Engine,
    *,
    members: int = 2000,
    groups: int = 20,
    days: int = 60,
    end_date: date,
    seed: int = 7,
    with_events: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> CommunityStats:
    """Fill an empty database with a synthetic community; see the module docstring.

    Progress phases: "staff", "tags", "groups", "members" (customers with their tags,
    memberships and events, chunk by chunk), "staff_members".
    """
    if members < 1 or groups < 1 or days < 1:
        raise ValueError("members, groups and days must be positive")
    t0 = time.perf_counter()
    report = progress or (lambda _phase, _done, _total: None)
    with engine.connect() as conn:
        for table in ("staff", "members", "groups", "tags", "events"):
            if conn.execute(text(f"SELECT 1 FROM {table} LIMIT 1")).first() is not None:
                raise ValueError(f"build_community needs an empty database; {table} has rows")

    with _Session(engine) as db:
        stats = _build(db, engine, members, groups, days, end_date, seed, with_events, report)
    stats.seconds = time.perf_counter() - t0
    return stats


def _build(db: _Session, engine: Engine, members: int, groups: int, days: int, end_date: date,
           seed: int, with_events: bool, report) -> CommunityStats:
    start = datetime.combine(end_date - timedelta(days=days - 1), datetime.min.time())
    end_s = days * DAY  # window is [0, end_s) seconds from start
    w = _Writer(engine, start)
    rnd = random.Random(seed)
    stats = CommunityStats(0, 0, 0, 0, 0, 0, 0.0)

    # ---- staff (企业成员)
    n_staff = max(3, round(members / 150))
    width = max(3, len(str(n_staff)))
    roles = ["owner", "service", "atmosphere"] + rnd.choices(
        ["owner", "service", "atmosphere"], weights=[0.4, 0.4, 0.2], k=n_staff - 3)
    staff_userids = [f"staff-{i:0{width}d}" for i in range(1, n_staff + 1)]
    staff_names = [rnd.choice(_SURNAMES) + "".join(rnd.choices(_GIVEN, k=rnd.choice((1, 2))))
                   for _ in range(n_staff)]
    with db.begin() as conn:
        w.insert(conn, "staff", ("id", "userid", "name", "role"),
                 [(i + 1, staff_userids[i], staff_names[i], roles[i]) for i in range(n_staff)])
    stats.staff = n_staff
    report("staff", n_staff, n_staff)
    owner_staff = np.array([i for i, r in enumerate(roles) if r == "owner"])
    follow_staff = np.array([i for i, r in enumerate(roles) if r != "atmosphere"])
    staff_arr = np.array(staff_userids, dtype=object)

    # ---- tags
    with db.begin() as conn:
        w.insert(conn, "tags", ("id", "name"), [(i + 1, t) for i, (t, _) in enumerate(TAGS)])
    stats.tags = len(TAGS)
    report("tags", len(TAGS), len(TAGS))

    # ---- groups (社群)
    rng = np.random.default_rng([seed, 1])
    kind_counts = _split(groups, GROUP_SHARES)
    g_kind = np.repeat(np.arange(4), kind_counts)
    rng.shuffle(g_kind)
    g_owner = owner_staff[rng.integers(0, len(owner_staff), groups)]
    g_created = (-rng.integers(1, 120, groups) * DAY
                 + rng.integers(9 * 3600, 19 * 3600, groups))
    g_pop = rng.lognormal(0.0, 0.5, groups)  # some groups draw more members than others
    kind_gids: list[np.ndarray] = []
    kind_cum: list[np.ndarray] = []
    for k in range(4):
        gids = np.flatnonzero(g_kind == k)
        if len(gids) == 0:
            gids = np.arange(groups)
        kind_gids.append(gids + 1)
        c = np.cumsum(g_pop[gids])
        kind_cum.append(c / c[-1])
    topic_counter: dict[str, int] = {}
    names = []
    topic_pick = rng.integers(0, 1 << 30, groups).tolist()
    g_kind_list = g_kind.tolist()
    for i in range(groups):
        kind = GROUP_KINDS[g_kind_list[i]]
        topics = GROUP_TOPICS[kind]
        topic = topics[0] if topic_pick[i] % 2 == 0 else topics[topic_pick[i] % len(topics)]
        topic_counter[topic] = topic_counter.get(topic, 0) + 1
        names.append(f"{BRAND}{topic} {topic_counter[topic]}群")
    for lo, hi in _chunks(groups):
        n = hi - lo
        ext = _ids(rng, n, b"wr", _LOWER_ALNUM, 22)
        created = w.times(g_created[lo:hi])
        kinds = [GROUP_KINDS[k] for k in g_kind_list[lo:hi]]
        owners = staff_arr[g_owner[lo:hi]].tolist()
        rows = [(lo + j + 1, ext[j], names[lo + j], kinds[j], "wecom_robot",
                 f"wecom-robot-{ext[j]}", owners[j], created[j], True) for j in range(n)]
        with db.begin() as conn:
            w.insert(conn, "groups", ("id", "external_id", "name", "kind", "channel",
                                      "robot_secret", "owner_userid", "created_at", "active"),
                     rows)
        report("groups", hi, groups)
    stats.groups = groups

    # ---- customers, chunk by chunk
    n_staff_members = min(n_staff, members // 50)
    n_cust = members - n_staff_members
    nick_pool = _nickname_pool(rnd, 20_000)
    phone_a = rnd.randrange(1, 10**7) * 10 + rnd.choice((1, 3, 7, 9))  # coprime to 2e8
    phone_b = rnd.randrange(0, 2 * 10**8)
    counters = {"membership": 0, "event": 0}
    challenge_start = max(0, days - 7 - CHALLENGE_DAYS)
    day_dow = np.array([(start + timedelta(days=d)).weekday() for d in range(days)])
    member_day = day_dow == MEMBER_DAY_WEEKDAY
    ctx = dict(start=start, days=days, end_s=end_s, w=w, kind_gids=kind_gids,
               kind_cum=kind_cum, g_kind=g_kind, nick_pool=nick_pool, phone=(phone_a, phone_b),
               follow=staff_arr[follow_staff], day_dow=day_dow, member_day=member_day,
               challenge=(challenge_start, min(days, challenge_start + CHALLENGE_DAYS)),
               with_events=with_events, counters=counters)
    # the (members × days) intensity grids bound the working set: ~1.5M cells per chunk
    rows_per_chunk = max(1000, min(CHUNK, 1_500_000 // days))
    for ci, (lo, hi) in enumerate(_chunks(n_cust, rows_per_chunk)):
        _customer_chunk(db, np.random.default_rng([seed, 2, ci]), lo, hi, ctx)
        report("members", hi, n_cust)

    # ---- staff present as members (群主/客服/气氛组 in their groups)
    if n_staff_members:
        _staff_members(db, np.random.default_rng([seed, 3]), n_cust, n_staff_members,
                       staff_userids, staff_names, roles, g_owner, g_created, ctx)
        report("staff_members", n_staff_members, n_staff_members)

    if engine.dialect.name == "postgresql":
        with db.begin() as conn:
            for table in ("staff", "tags", "groups", "members", "memberships", "events"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)")

    stats.members = members
    stats.memberships = counters["membership"]
    stats.events = counters["event"]
    return stats


def _tag_weights(n, recent, act_pct, buy_rate, churner):
    base = np.array([b for _, b in TAGS])
    wts = np.tile(base, (n, 1))
    names = [t for t, _ in TAGS]
    bp = np.argsort(np.argsort(buy_rate)) / max(1, n - 1)
    wts[:, names.index("新客")] *= np.where(recent, 6.0, 0.3)
    wts[:, names.index("复购")] *= 0.1 + 3.0 * bp**2
    wts[:, names.index("高客单")] *= 0.1 + 2.5 * bp**3
    wts[:, names.index("会员")] *= 0.2 + 2.0 * bp
    wts[:, names.index("活动达人")] *= 0.1 + 3.0 * act_pct**2
    wts[:, names.index("沉默用户")] *= np.where(churner, 2.5, 0.2) * (1.2 - act_pct)
    wts[:, names.index("价格敏感")] *= 1.5 - bp
    return wts


def _customer_chunk(db: _Session, rng: np.random.Generator, lo: int, hi: int, ctx) -> None:
    n = hi - lo
    days, end_s, w = ctx["days"], ctx["end_s"], ctx["w"]
    ids = np.arange(lo + 1, hi + 1)

    # latent model
    join_day = np.minimum((rng.beta(0.8, 1.7, n) * days).astype(np.int64), days - 1)
    join = join_day * DAY + _hour_secs(rng, n)
    rate = rng.lognormal(-1.1, 1.6, n)  # everyday events per active day
    act_pct = np.argsort(np.argsort(rate)) / max(1, n - 1)
    churner = rng.random(n) < 0.25
    churn = np.where(churner, join + (1.0 + rng.exponential(18.0, n)) * DAY, np.inf)
    fader = ~churner & (rng.random(n) < 0.35)
    tau = np.where(fader, rng.uniform(4.0, 25.0, n), np.inf)
    buy_rate = 0.010 * rng.lognormal(0.0, 1.1, n) * (0.6 + 0.4 * np.log1p(rate)) / 0.8
    ref_rate = np.where(act_pct > 0.6, 0.004 * rate * (act_pct - 0.6) / 0.4, 0.0)

    # memberships: slot 0 an entry group (兴趣/种草), slots 1–2 by engagement
    k0 = (rng.random(n) < 0.45).astype(np.int64)  # 0 interest, 1 seeding
    has1 = rng.random(n) < 0.30 + 0.35 * act_pct
    p_super = 0.2 + 0.5 * act_pct
    k1 = np.where(rng.random(n) < p_super, 2, rng.integers(0, 2, n))
    k1 = np.where((buy_rate > 0.03) & (rng.random(n) < 0.5), 3, k1)
    has2 = rng.random(n) < 0.05 + 0.30 * act_pct**3
    k2 = np.where(buy_rate > 0.02, 3, 2)
    kinds = np.stack([k0, k1, k2], axis=1)
    present = np.stack([np.ones(n, bool), has1, has2], axis=1)
    u = rng.random((n, 3))
    grp = np.zeros((n, 3), dtype=np.int64)
    for k in range(4):
        sel = kinds == k
        if sel.any():
            pos = np.searchsorted(ctx["kind_cum"][k], u[sel])
            grp[sel] = ctx["kind_gids"][k][np.minimum(pos, len(ctx["kind_gids"][k]) - 1)]
    present[:, 1] &= grp[:, 1] != grp[:, 0]
    present[:, 2] &= (grp[:, 2] != grp[:, 0]) & (grp[:, 2] != grp[:, 1])
    gjoin = np.empty((n, 3), dtype=np.int64)
    gjoin[:, 0] = join + rng.integers(0, 1200, n)
    gjoin[:, 1:] = join[:, None] + (rng.exponential(12.0, (n, 2)) * DAY).astype(np.int64)
    present &= gjoin < end_s - 3600
    gjoin[:, 0] = np.minimum(gjoin[:, 0], end_s - 1)
    present[:, 0] = True
    # leaving: most churners leave after their churn date; a few others leave one group
    leave = np.full((n, 3), np.iinfo(np.int64).max, dtype=np.int64)
    churn_leave = churner[:, None] & (rng.random((n, 3)) < 0.6)
    t_cl = np.where(np.isfinite(churn), churn, 0)[:, None] + rng.exponential(2.0, (n, 3)) * DAY
    t_cl = np.maximum(t_cl, gjoin + 600)
    churn_leave &= t_cl < end_s
    leave = np.where(churn_leave, t_cl.astype(np.int64), leave)
    rand_leave = ~churn_leave & (rng.random((n, 3)) < 0.03)
    t_rl = gjoin + (rng.random((n, 3)) * np.maximum(end_s - gjoin, 1)).astype(np.int64)
    rand_leave &= t_rl > gjoin + 600
    leave = np.where(rand_leave, t_rl, leave)
    leave = np.where(present, leave, np.iinfo(np.int64).max)
    left_all = (leave < np.iinfo(np.int64).max) | ~present
    stop = np.minimum(churn, end_s).astype(np.int64)
    last_leave = np.where(present, leave, 0).max(axis=1)
    stop = np.where(left_all.all(axis=1), np.minimum(stop, last_leave), stop)
    stop = np.maximum(stop, join)

    # roles
    role = np.full((n, 3), "member", dtype=object)
    r = rng.random((n, 3))
    is_koc = (act_pct[:, None] > 0.97) & np.isin(kinds, (0, 2)) & (r < 0.5)
    role[is_koc] = "koc"
    role[(kinds == 0) & (r > 0.997)] = "expert"
    role[(r > 0.9975) & (r <= 0.9985)] = "admin"

    # daily intensity grid
    d = np.arange(days)
    ds = d * DAY
    frac = np.clip((np.minimum(stop[:, None], ds + DAY) - np.maximum(join[:, None], ds)) / DAY,
                   0.0, 1.0)
    age = np.maximum(ds[None, :] + DAY / 2 - join[:, None], 0) / DAY
    shape = (1.0 + 1.2 * np.exp(-age / 4.0)) * np.exp(-age / tau[:, None])
    wk = _WEEKDAY[k0][:, ctx["day_dow"]]
    md = ctx["member_day"]
    f_act = rate[:, None] * frac * shape * wk * np.where(md, 1.5, 1.0)[None, :]
    f_buy = buy_rate[:, None] * frac * np.where(md, 3.5, 1.0)[None, :] * (0.5 + 0.5 * shape)
    f_ref = ref_rate[:, None] * frac * shape
    c0, c1 = ctx["challenge"]
    in_chal = (rng.random(n) < 0.08 + 0.35 * act_pct) & (c1 > c0)
    p_chal = np.zeros((n, days))
    if c1 > c0:
        p_chal[:, c0:c1] = (0.85 - 0.06 * np.arange(c1 - c0))[None, :]
        p_chal *= in_chal[:, None] * (frac > 0.5)

    counts = np.zeros((n, len(EVENT_KINDS)), dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    spend = np.zeros(n)
    kidx = {k: i for i, k in enumerate(EVENT_KINDS)}

    if ctx["with_events"]:
        ev = _events(rng, n, ids, join, stop, f_act, f_buy, f_ref, p_chal, kinds, grp,
                     present, gjoin, leave, ctx)
        e_mi, e_g, e_k, e_t, e_amt, e_camp, e_props = ev
        counts = np.bincount(e_mi * len(EVENT_KINDS) + e_k,
                             minlength=n * len(EVENT_KINDS)).reshape(n, len(EVENT_KINDS))
        eng = (e_k != kidx["join"]) & (e_k != kidx["leave"])
        np.maximum.at(last, e_mi[eng], e_t[eng])
        buy = e_k == kidx["purchase"]
        spend = np.bincount(e_mi[buy], weights=e_amt[buy], minlength=n)
    else:
        # the same processes, summarised: counts per member and the time of the last event
        lam = f_act.sum(axis=1)
        tot = rng.poisson(lam)
        mix = _MIX[k0]
        rem = tot.copy()
        pleft = np.ones(n)
        for j, kname in enumerate(_MIX_KINDS):
            pj = np.clip(mix[:, j] / np.maximum(pleft, 1e-9), 0, 1)
            cj = rng.binomial(rem, pj) if j < len(_MIX_KINDS) - 1 else rem
            counts[:, kidx[kname]] = cj
            rem = rem - cj
            pleft = pleft - mix[:, j]
        counts[:, kidx["checkin"]] += rng.binomial(1, np.clip(p_chal, 0, 1)).sum(axis=1)
        nb = rng.poisson(f_buy.sum(axis=1))
        counts[:, kidx["purchase"]] = nb
        counts[:, kidx["referral"]] = rng.poisson(f_ref.sum(axis=1))
        price = _SKU_PRICE[rng.choice(len(SKUS), size=n, p=_SKU_P)]
        spend = np.round(nb * price * rng.uniform(0.8, 1.2, n), 2)
        total = f_act + f_buy + f_ref
        tail = np.cumsum(total[:, ::-1], axis=1)[:, ::-1]
        e = rng.exponential(1.0, n)
        last_day = (tail >= e[:, None]).sum(axis=1) - 1
        has = last_day >= 0
        lo_t = np.maximum(join, np.maximum(last_day, 0) * DAY)
        hi_t = np.minimum(stop, (np.maximum(last_day, 0) + 1) * DAY)
        lt = lo_t + (rng.random(n) * np.maximum(hi_t - lo_t, 1)).astype(np.int64)
        last = np.where(has, np.minimum(lt, end_s - 1), -1)
        counts[:, kidx["join"]] = present.sum(axis=1)
        counts[:, kidx["leave"]] = (present & (leave < np.iinfo(np.int64).max)).sum(axis=1)
        ev = None

    stage, activity, fan = _lifecycle(counts, last, join, end_s, kidx)

    # attributes
    nick_pool = ctx["nick_pool"]
    nick = [nick_pool[i] for i in rng.integers(0, len(nick_pool), n).tolist()]
    ext = _ids(rng, n, b"wm", _ALNUM, 22)
    pa, pb = ctx["phone"]
    has_phone = rng.random(n) < 0.7
    phone_num = 17_000_000_000 + (ids.astype(np.int64) * pa + pb) % (2 * 10**8)
    phones = [str(p) if h else None for p, h in zip(phone_num.tolist(), has_phone.tolist(),
                                                     strict=True)]
    gender = rng.choice(np.array(["female", "male", None], dtype=object), size=n,
                        p=[0.74, 0.18, 0.08]).tolist()
    src = np.array(SOURCE_CHANNELS, dtype=object)[
        rng.choice(len(SOURCE_CHANNELS), size=n, p=SOURCE_WEIGHTS)].tolist()
    follow = ctx["follow"]
    owner = follow[rng.integers(0, len(follow), n)].tolist()
    flags = rng.random(n)
    opted_out = (rng.random(n) < 0.015).tolist()
    blacklisted = (flags < 0.008).tolist()
    whitelisted = (flags > 0.99).tolist()
    joined_t = w.times(join)
    last_t = w.times(np.where(last >= 0, last, NONE_T))
    updated = w.times(np.full(n, end_s - 1))
    member_rows = list(zip(
        ids.tolist(), ext, nick, phones, gender, src, owner, joined_t, last_t,
        np.round(spend, 2).tolist(), [None] * n, opted_out, blacklisted, whitelisted,
        [False] * n, stage, activity, fan, updated, strict=True))

    # tags: 1–4 per member, Gumbel top-k over behaviour-weighted tag weights
    recent = join > end_s - 14 * DAY
    wts = _tag_weights(n, recent, act_pct, buy_rate, churner)
    scores = np.log(wts) + rng.gumbel(size=wts.shape)
    order = np.argsort(-scores, axis=1)
    k_tags = rng.choice([1, 2, 3, 4], size=n, p=[0.3, 0.35, 0.22, 0.13])
    tag_mask = np.arange(len(TAGS))[None, :] < k_tags[:, None]
    tag_rows = list(zip(np.repeat(ids, k_tags).tolist(), (order[tag_mask] + 1).tolist(),
                        strict=True))

    # membership rows
    mi, slot = np.nonzero(present)
    nm = len(mi)
    c = ctx["counters"]
    m_ids = np.arange(c["membership"] + 1, c["membership"] + nm + 1)
    c["membership"] += nm
    lv = leave[mi, slot]
    ms_rows = list(zip(m_ids.tolist(), ids[mi].tolist(), grp[mi, slot].tolist(),
                       role[mi, slot].tolist(), w.times(gjoin[mi, slot]),
                       w.times(np.where(lv < np.iinfo(np.int64).max, lv, NONE_T)),
                       strict=True))

    with db.begin() as conn:
        w.insert(conn, "members", MEMBER_COLUMNS, member_rows)
        w.insert(conn, "member_tags", ("member_id", "tag_id"), tag_rows)
        w.insert(conn, "memberships", MEMBERSHIP_COLUMNS, ms_rows)
        if ev is not None:
            _write_events(conn, w, ctx, ids[e_mi], e_g, e_k, e_t, e_amt, e_camp, e_props)


MEMBER_COLUMNS = (
    "id", "external_id", "nickname", "phone", "gender", "source_channel", "owner_userid",
    "joined_at", "last_active_at", "total_spend", "note", "opted_out", "blacklisted",
    "whitelisted", "is_staff", "stage", "activity_state", "fan_level", "updated_at",
)
MEMBERSHIP_COLUMNS = ("id", "member_id", "group_id", "role", "joined_at", "left_at")
EVENT_COLUMNS = ("id", "member_id", "group_id", "kind", "occurred_at", "campaign", "amount",
                 "props")


def _write_events(conn, w: _Writer, ctx, member_ids, e_g, e_k, e_t, e_amt, e_camp, e_props):
    order = np.argsort(e_t, kind="stable")
    ne = len(order)
    c = ctx["counters"]
    ev_ids = range(c["event"] + 1, c["event"] + ne + 1)
    c["event"] += ne
    kinds = np.array(EVENT_KINDS, dtype=object)[e_k[order]].tolist()
    groups = [g if g > 0 else None for g in e_g[order].tolist()]
    amounts = [a if a > 0 else None for a in e_amt[order].tolist()]
    rows = list(zip(ev_ids, member_ids[order].tolist(), groups, kinds, w.times(e_t[order]),
                    [e_camp[i] for i in order.tolist()] if e_camp is not None else [None] * ne,
                    amounts, [e_props[i] for i in order.tolist()], strict=True))
    for lo, hi in _chunks(len(rows), 100_000):
        w.insert(conn, "events", EVENT_COLUMNS, rows[lo:hi])


def _lifecycle(counts, last, join, end_s, kidx):
    n = len(last)
    purchases = counts[:, kidx["purchase"]]
    advocates = (counts[:, kidx["referral"]] >= 1) | (counts[:, kidx["share"]] >= 5)
    stage = np.where(purchases >= 2, "member", np.where(purchases == 1, "customer", "prospect"))
    stage = np.where(advocates & (purchases >= 1), "koc", stage).astype(object)
    ref = np.where(last >= 0, last, join)
    idle = (end_s - ref) / DAY
    activity = np.select(
        [(end_s - join) < 7 * DAY, idle <= 7, idle <= 30, idle <= 45],
        ["new", "active", "silent", "at_risk"], "churned").astype(object)
    score = np.zeros(n)
    for k, wgt in SCORE_WEIGHTS.items():
        score += wgt * counts[:, kidx[k]]
    fan = np.select([score >= FAN_THRESHOLDS[2], score >= FAN_THRESHOLDS[1],
                     score >= FAN_THRESHOLDS[0]],
                    ["advocate", "devoted", "friendly"], "passerby").astype(object)
    return stage.tolist(), activity.tolist(), fan.tolist()


def _events(rng, n, ids, join, stop, f_act, f_buy, f_ref, p_chal, kinds, grp, present,
            gjoin, leave, ctx):
    """Draw the event rows of one chunk; returns parallel arrays (member index is local)."""
    days, end_s, start = ctx["days"], ctx["end_s"], ctx["start"]
    md = ctx["member_day"]
    kidx = {k: i for i, k in enumerate(EVENT_KINDS)}
    parts = []

    def place(cells_counts, hours_p):
        """Expand a (n, days) count grid to (member index, time) inside the active span."""
        flat = cells_counts.ravel()
        cell = np.repeat(np.arange(flat.size), flat)
        mi, d = np.divmod(cell, days)
        t = d * DAY + _hour_secs(rng, len(cell), hours_p)
        lo_t = np.maximum(join[mi], d * DAY)
        hi_t = np.minimum(stop[mi], (d + 1) * DAY)
        out = (t < lo_t) | (t >= hi_t)
        span = np.maximum(hi_t - lo_t, 1)
        t = np.where(out, lo_t + (rng.random(len(cell)) * span).astype(np.int64), t)
        return mi, d, np.minimum(t, end_s - 1)

    def pick_group(mi, t, required=True):
        valid = present[mi] & (gjoin[mi] <= t[:, None]) & (t[:, None] < leave[mi])
        choice = np.argmax(rng.random((len(mi), 3)) * valid, axis=1)
        g = grp[mi, choice]
        gk = kinds[mi, choice]
        has = valid.any(axis=1)
        return np.where(has, g, 0), np.where(has, gk, 0), has

    # everyday engagement
    mi, d, t = place(rng.poisson(f_act), _HOURS_P)
    g, gk, has = pick_group(mi, t)
    mi, d, t, g, gk = mi[has], d[has], t[has], g[has], gk[has]
    cum = np.cumsum(_MIX[gk], axis=1)
    j = np.minimum((rng.random(len(mi))[:, None] > cum).sum(axis=1), len(_MIX_KINDS) - 1)
    mix_codes = np.array([kidx[k] for k in _MIX_KINDS])
    k = mix_codes[j]
    parts.append((mi, g, k, t, np.zeros(len(mi)), np.where(md[d] & (k == kidx["click"]), 1, 0)))

    # check-in challenge (打卡挑战)
    chal = rng.random(p_chal.shape) < p_chal
    mi, d, t = place(chal.astype(np.int64), _HOURS_P)
    g, gk, has = pick_group(mi, t)
    parts.append((mi[has], g[has], np.full(has.sum(), kidx["checkin"]), t[has],
                  np.zeros(has.sum()), np.full(has.sum(), 2)))

    # purchases: a third outside any group (mini-program orders)
    mi, d, t = place(rng.poisson(f_buy), _HOURS_P)
    sale = md[d]
    t = np.where(sale, np.minimum(np.maximum(d * DAY + _hour_secs(rng, len(d), _SALE_HOURS_P),
                                             join[mi]), np.maximum(stop[mi] - 1, join[mi])), t)
    g, gk, has = pick_group(mi, t)
    g = np.where(rng.random(len(mi)) < 0.33, 0, g)
    vip = gk == 3
    sku_p = np.where(vip[:, None], _SKU_P * (0.5 + _SKU_PRICE / 200.0), _SKU_P)
    sku_p = sku_p / sku_p.sum(axis=1, keepdims=True)
    sku = (rng.random(len(mi))[:, None] > np.cumsum(sku_p, axis=1)).sum(axis=1)
    sku = np.minimum(sku, len(SKUS) - 1)
    amt = np.where(sale, np.maximum(np.round(_SKU_PRICE[sku] * 0.85), 39.0), _SKU_PRICE[sku])
    parts.append((mi, g, np.full(len(mi), kidx["purchase"]), t, amt,
                  np.where(sale, 1, 0), sku))

    # referrals (裂变)
    mi, d, t = place(rng.poisson(f_ref), _HOURS_P)
    g, gk, has = pick_group(mi, t)
    parts.append((mi, g, np.full(len(mi), kidx["referral"]), t, np.zeros(len(mi)),
                  np.zeros(len(mi), dtype=np.int64)))

    # joins and leaves, exactly the memberships
    mj, sj = np.nonzero(present)
    parts.append((mj, grp[mj, sj], np.full(len(mj), kidx["join"]), gjoin[mj, sj],
                  np.zeros(len(mj)), np.zeros(len(mj), dtype=np.int64)))
    ml, sl = np.nonzero(present & (leave < np.iinfo(np.int64).max))
    parts.append((ml, grp[ml, sl], np.full(len(ml), kidx["leave"]), leave[ml, sl],
                  np.zeros(len(ml)), np.zeros(len(ml), dtype=np.int64)))

    e_mi = np.concatenate([p[0] for p in parts])
    e_g = np.concatenate([p[1] for p in parts])
    e_k = np.concatenate([p[2] for p in parts])
    e_t = np.concatenate([p[3] for p in parts])
    e_amt = np.concatenate([p[4] for p in parts])
    camp_code = np.concatenate([p[5] for p in parts])
    e_day = e_t // DAY
    c0, _ = ctx["challenge"]
    md_names = [f"member_day-{(start + timedelta(days=i)):%Y%m%d}" for i in range(days)]
    chal_name = f"checkin_challenge-{(start + timedelta(days=c0)):%Y%m%d}"
    e_camp = [None if c == 0 else (chal_name if c == 2 else md_names[dd])
              for c, dd in zip(camp_code.tolist(), e_day.tolist(), strict=True)]
    # props: a topic for messages and comments, the SKU for purchases
    n_buy = len(parts[2][0])
    buy_lo = sum(len(p[0]) for p in parts[:2])
    topic = rng.integers(0, len(TOPICS), len(e_mi))
    talk = (e_k == kidx["message"]) | (e_k == kidx["comment"])
    props: list = [None] * len(e_mi)
    for i in np.flatnonzero(talk).tolist():
        props[i] = _TOPIC_PROPS[topic[i]]
    for off, s in enumerate(parts[2][6].tolist()):
        props[buy_lo + off] = _SKU_PROPS[s]
    assert n_buy == len(parts[2][6])
    return e_mi, e_g, e_k, e_t, e_amt, e_camp, props


def _staff_members(db: _Session, rng, n_cust, n_sm, userids, names, roles, g_owner, g_created, ctx):
    """Staff accounts that are also in the groups: owners in their groups, 气氛组/客服 in some."""
    w, end_s, days = ctx["w"], ctx["end_s"], ctx["days"]
    ids = np.arange(n_cust + 1, n_cust + n_sm + 1)
    groups = len(g_owner)
    ext = _ids(rng, n_sm, b"wm", _ALNUM, 22)
    label = {"owner": "群主", "service": "客服", "atmosphere": "小助手"}
    first_join = w.times(np.full(n_sm, int(g_created.min()) if len(g_created) else 0))
    updated = w.times(np.full(n_sm, end_s - 1))
    rows = []
    for j in range(n_sm):
        nick = f"{BRAND}{label[roles[j]]}-{names[j]}"
        rows.append((int(ids[j]), ext[j], nick, None, None, None, userids[j], first_join[j],
                     None, 0.0, "员工账号", False, False, True, True, "prospect", "active",
                     "passerby", updated[j]))
    staff_member_of = {j: int(ids[j]) for j in range(n_sm)}
    # memberships
    m_member, m_group, m_role, m_join = [], [], [], []
    gids = np.arange(1, groups + 1)
    owned = np.array([staff_member_of.get(int(o), 0) for o in g_owner.tolist()])
    sel = owned > 0
    m_member.append(owned[sel])
    m_group.append(gids[sel])
    m_role += ["owner"] * int(sel.sum())
    m_join.append(g_created[sel])
    for role, share in (("atmosphere", 0.25), ("service", 0.2)):
        pool = np.array([staff_member_of[j] for j in range(n_sm) if roles[j] == role])
        if len(pool) == 0:
            continue
        pick = rng.random(groups) < share
        m_member.append(pool[rng.integers(0, len(pool), int(pick.sum()))])
        m_group.append(gids[pick])
        m_role += [role] * int(pick.sum())
        m_join.append(g_created[pick] + rng.integers(60, 3 * DAY, int(pick.sum())))
    mm = np.concatenate(m_member)
    mg = np.concatenate(m_group)
    mj = np.concatenate(m_join)
    c = ctx["counters"]
    mids = np.arange(c["membership"] + 1, c["membership"] + len(mm) + 1)
    c["membership"] += len(mm)
    ms_rows = list(zip(mids.tolist(), mm.tolist(), mg.tolist(), m_role, w.times(mj),
                       [None] * len(mm), strict=True))
    # staff chatter: 气氛组 and group owners post in their groups (excluded from metrics later)
    ev_rows = []
    if ctx["with_events"]:
        inside = mj >= 0  # staff added to a group inside the window: their join events
        for mem, grp_id, tt in zip(mm[inside].tolist(), mg[inside].tolist(),
                                   mj[inside].tolist(), strict=True):
            ev_rows.append((mem, grp_id, tt, None, "join"))
        talk = np.isin(np.array(m_role), ["atmosphere", "owner"])
        tm, tg = mm[talk], mg[talk]
        # a few posts a day per staff account, spread over the groups it is in
        by_staff: dict[int, np.ndarray] = {}
        for s in np.unique(tm).tolist():
            by_staff[s] = tg[tm == s]
        for s, gs in by_staff.items():
            per_day = rng.poisson(3.0, days)
            total = int(per_day.sum())
            d = np.repeat(np.arange(days), per_day)
            t = np.minimum(d * DAY + _hour_secs(rng, total), end_s - 1)
            g = gs[rng.integers(0, len(gs), total)]
            topic = rng.integers(0, len(TOPICS), total)
            for tt, gg, tp in zip(t.tolist(), g.tolist(), topic.tolist(), strict=True):
                ev_rows.append((s, gg, tt, _TOPIC_PROPS[tp], "message"))
    with db.begin() as conn:
        w.insert(conn, "members", MEMBER_COLUMNS, rows)
        for lo, hi in _chunks(len(ms_rows)):
            w.insert(conn, "memberships", MEMBERSHIP_COLUMNS, ms_rows[lo:hi])
        if ev_rows:
            ev_rows.sort(key=lambda r: r[2])
            times = w.times(np.array([r[2] for r in ev_rows]))
            base = c["event"]
            c["event"] += len(ev_rows)
            w.insert(conn, "events", EVENT_COLUMNS, [
                (base + i + 1, r[0], r[1], r[4], times[i], None, None, r[3])
                for i, r in enumerate(ev_rows)])


# --------------------------------------------------------------------------- robot keys


def write_robot_secrets(engine: Engine, secrets_path: Path) -> int:
    """Give every group robot secret name a throwaway webhook key; returns how many were added.

    Existing entries are kept (see qunyun.secrets.add_workspace_secrets).
    """
    with engine.connect() as conn:
        names = conn.execute(text(
            "SELECT DISTINCT robot_secret FROM groups WHERE robot_secret IS NOT NULL"
        )).scalars()
        return add_workspace_secrets(Path(secrets_path), {name: str(uuid.uuid4()) for name in names})
