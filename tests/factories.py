"""Small, explicit communities for tests whose counts must be known in advance."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Engine, insert, select

from qunyun.models import Group, Member, Membership, MemberTag, Staff, Tag
from qunyun.secrets import add_workspace_secrets


def add_staff(engine: Engine, userid: str = "staff-001", name: str = "小林") -> None:
    with engine.begin() as conn:
        conn.execute(insert(Staff).values(userid=userid, name=name, role="service"))


def add_groups(engine: Engine, kinds: dict[str, int], secrets_path=None) -> list[str]:
    """`kinds` like {"interest": 3, "vip": 1}; returns the groups' external ids."""
    ids = []
    with engine.begin() as conn:
        for kind, n in kinds.items():
            for i in range(n):
                ext = f"wr-{kind}-{i:03d}"
                conn.execute(insert(Group).values(
                    external_id=ext, name=f"测试{kind}群{i + 1}", kind=kind,
                    channel="wecom_robot", robot_secret=f"wecom-robot-{ext}",
                    owner_userid="staff-001", created_at=datetime(2026, 1, 1), active=True))
                ids.append(ext)
    if secrets_path is not None:
        add_workspace_secrets(secrets_path, {f"wecom-robot-{e}": f"key-{e}-0000" for e in ids})
    return ids


def add_members(engine: Engine, n: int, *, tags=("新客",), prefix: str = "wm", **fields) -> list[str]:
    """n customers owned by staff-001, active and new, with the given tags and fields."""
    base = dict(nickname="客户", owner_userid="staff-001", stage="prospect",
                activity_state="new", fan_level="passerby", joined_at=datetime(2026, 11, 1),
                last_active_at=datetime(2026, 11, 20), total_spend=0.0)
    base.update(fields)
    ids = [f"{prefix}{i:05d}" for i in range(n)]
    with engine.begin() as conn:
        conn.execute(insert(Member), [{**base, "external_id": e, "nickname": f"{base['nickname']}{i}"}
                                      for i, e in enumerate(ids)])
        tag_ids = []
        for name in tags:
            found = conn.execute(select(Tag.id).where(Tag.name == name)).scalar()
            if found is None:
                found = conn.execute(insert(Tag).values(name=name).returning(Tag.id)).scalar_one()
            tag_ids.append(found)
        member_ids = conn.execute(select(Member.id).where(Member.external_id.in_(ids))).scalars().all()
        if tag_ids:
            conn.execute(insert(MemberTag), [{"member_id": m, "tag_id": t}
                                             for m in member_ids for t in tag_ids])
    return ids


def join_group(engine: Engine, member_ids: list[str], group_id: str) -> None:
    with engine.begin() as conn:
        gid = conn.execute(select(Group.id).where(Group.external_id == group_id)).scalar_one()
        mids = conn.execute(select(Member.id).where(Member.external_id.in_(member_ids))).scalars()
        conn.execute(insert(Membership), [{"member_id": m, "group_id": gid, "role": "member",
                                           "joined_at": datetime(2026, 11, 1)} for m in mids])


def add_corp_secret(secrets_path) -> None:
    add_workspace_secrets(secrets_path, {"wecom-corp-secret": "corp-secret-for-tests"})


def read_json(path) -> dict:
    return json.loads(open(path, encoding="utf-8").read())
