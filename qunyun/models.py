"""The app database: members, groups, behaviour, content and the delivery ledger.

Typed ORM declarations for the schema; bulk paths (planning, imports, metrics) use the same
tables through SQLAlchemy Core, never by loading ORM objects one member at a time.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Vocabulary stored as short English codes; operators see the Chinese labels (qunyun.vocab).
GROUP_KINDS = ("interest", "seeding", "superfan", "vip")
ROLES = ("owner", "admin", "atmosphere", "koc", "expert", "service", "member")
EVENT_KINDS = (
    "join", "leave", "message", "checkin", "like", "comment", "share", "click", "purchase",
    "referral",
)
STAGES = ("prospect", "customer", "member", "koc")
ACTIVITY_STATES = ("new", "active", "silent", "at_risk", "churned")
FAN_LEVELS = ("passerby", "friendly", "devoted", "advocate")
LEDGER_STATUSES = ("planned", "sending", "sent", "failed", "unknown", "suppressed")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Staff(Base):
    """An employee account (企业成员) that owns groups and sends customer mass messages."""

    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    userid: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32), default="service")


class Member(Base):
    """A customer (客户/成员) reached through the brand's WeCom accounts."""

    __tablename__ = "members"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    nickname: Mapped[str] = mapped_column(String(128), default="")
    # Normalised to 11 digits; masked (138****8000) wherever it is shown.
    phone: Mapped[str | None] = mapped_column(String(20))
    gender: Mapped[str | None] = mapped_column(String(8))
    source_channel: Mapped[str | None] = mapped_column(String(64))
    owner_userid: Mapped[str | None] = mapped_column(String(64), index=True)
    joined_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_active_at: Mapped[datetime | None] = mapped_column(DateTime)
    total_spend: Mapped[float] = mapped_column(Float, default=0.0)
    note: Mapped[str | None] = mapped_column(Text)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    blacklisted: Mapped[bool] = mapped_column(Boolean, default=False)
    whitelisted: Mapped[bool] = mapped_column(Boolean, default=False)
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    stage: Mapped[str] = mapped_column(String(16), default="prospect")
    activity_state: Mapped[str] = mapped_column(String(16), default="new")
    fan_level: Mapped[str] = mapped_column(String(16), default="passerby")
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class MemberTag(Base):
    __tablename__ = "member_tags"
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id"), primary_key=True, index=True)


class Group(Base):
    """A community group (社群) and the channel that posts into it."""

    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), index=True)
    channel: Mapped[str] = mapped_column(String(32), default="wecom_robot")
    # The *name* of the secret that holds the robot's webhook key, never the key itself.
    robot_secret: Mapped[str | None] = mapped_column(String(128))
    owner_userid: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime | None] = mapped_column(DateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("member_id", "group_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="member")
    joined_at: Mapped[datetime | None] = mapped_column(DateTime)
    left_at: Mapped[datetime | None] = mapped_column(DateTime)


class Event(Base):
    """One behaviour event (行为事件)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_member_occurred", "member_id", "occurred_at"),
        Index("ix_events_kind_occurred", "kind", "occurred_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"))
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    campaign: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[float | None] = mapped_column(Float)
    props: Mapped[dict | None] = mapped_column(JSON)


class ContentItem(Base):
    """A content item (素材) as last synced from config/content_calendar.yaml."""

    __tablename__ = "content_items"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    column_name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(256), default="")
    template: Mapped[str] = mapped_column(String(256))
    msgtype: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(8))
    targeting: Mapped[dict] = mapped_column(JSON, default=dict)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)


class Delivery(Base):
    """The delivery ledger (发送记录): one row per job × logical date × step × recipient."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_run", "job", "logical_date", "status"),
        Index("ix_deliveries_recipient_day", "recipient_kind", "recipient_id", "logical_date"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(40), unique=True)
    job: Mapped[str] = mapped_column(String(32))
    logical_date: Mapped[date] = mapped_column(Date)
    step: Mapped[str] = mapped_column(String(64))
    recipient_kind: Mapped[str] = mapped_column(String(8))  # group | member
    recipient_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    # Robot secret name (group posts) or staff userid (customer mass messages).
    sender: Mapped[str | None] = mapped_column(String(128))
    content_item: Mapped[str | None] = mapped_column(String(64))
    msgtype: Mapped[str] = mapped_column(String(16))
    payload: Mapped[str] = mapped_column(Text)
    payload_hash: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_code: Mapped[int | None] = mapped_column(Integer)
    provider_msgid: Mapped[str | None] = mapped_column(String(128))
    planned_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)


class Suppression(Base):
    """An explicit do-not-contact entry (e.g. a complaint), optionally until a date."""

    __tablename__ = "suppressions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    reason: Mapped[str] = mapped_column(String(64))
    until: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class StageHistory(Base):
    """Recorded lifecycle transitions; stages are appended, never overwritten."""

    __tablename__ = "stage_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    dimension: Mapped[str] = mapped_column(String(16))  # stage | activity | fan_level
    from_value: Mapped[str | None] = mapped_column(String(16))
    to_value: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(DateTime)


class ImportRun(Base):
    """One `qunyun import` of a file, with its counts."""

    __tablename__ = "import_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    file_name: Mapped[str] = mapped_column(String(512))
    file_sha256: Mapped[str] = mapped_column(String(64))
    accepted: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
