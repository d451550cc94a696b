"""`qunyun import members|events`: nasty export files, each with counts stated in advance.

Fixture files are written by the tests themselves (tmp_path), so every byte is visible here.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from qunyun import db
from qunyun.errors import BadInput
from qunyun.importing import group_external_id, import_events, import_members
from qunyun.importing.parsing import CellError, parse_amount, parse_datetime, split_list
from qunyun.models import Group, Member

NOW = datetime(2026, 6, 15, 12, 0)
HEADER = "客户ID,昵称,手机号,性别,来源渠道,标签,所在群,入群时间,最近互动时间,累计消费(元),备注"
FULL_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
PHONES = ["13800138000", "13900139000", "15000150000", "18612345678", "17700001111"]


@pytest.fixture
def engine(tmp_path):
    return db.migrate(f"sqlite:///{tmp_path / 'app.db'}")


@pytest.fixture
def imports_dir(tmp_path):
    return tmp_path / "ws" / "imports"


def write(path: Path, lines: list[str] | str, encoding: str = "utf-8") -> Path:
    body = lines if isinstance(lines, str) else "\n".join(lines) + "\n"
    path.write_bytes(body.encode(encoding))
    return path


def rejects_of(result) -> list[dict]:
    if not result.rejects_file:
        return []
    with open(result.rejects_file, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def dump(engine) -> dict:
    tables = ("members", "tags", "member_tags", "groups", "memberships", "events")
    with engine.connect() as conn:
        return {
            t: sorted(map(tuple, conn.execute(text(f"SELECT * FROM {t}")).all()), key=repr)
            for t in tables
        }


def members_by_ext(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(Member.__table__)).mappings().all()
    return {r["external_id"]: dict(r) for r in rows}


def tags_of(engine, ext: str) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text(
            "SELECT t.name FROM tags t JOIN member_tags mt ON mt.tag_id = t.id "
            "JOIN members m ON m.id = mt.member_id WHERE m.external_id = :e"
        ), {"e": ext}).scalars())


# -- parsers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2026-01-05", datetime(2026, 1, 5)),
        ("2026/1/5", datetime(2026, 1, 5)),
        ("2026.01.05", datetime(2026, 1, 5)),
        ("20260105", datetime(2026, 1, 5)),
        ("2026-01-05 08:30", datetime(2026, 1, 5, 8, 30)),
        ("2026-01-05 08:30:15", datetime(2026, 1, 5, 8, 30, 15)),
        ("2026/1/5 8:30", datetime(2026, 1, 5, 8, 30)),
        ("2026年1月5日", datetime(2026, 1, 5)),
        ("2026年1月5日 8:30", datetime(2026, 1, 5, 8, 30)),
        ("2026年1月5日8时30分", datetime(2026, 1, 5, 8, 30)),
        ("２０２６年１月５日", datetime(2026, 1, 5)),
        ("2026-01-05T00:30:00Z", datetime(2026, 1, 5, 8, 30)),  # UTC → Asia/Shanghai
        ("46027", datetime(2026, 1, 5)),  # Excel serial as text
        (46027.5, datetime(2026, 1, 5, 12, 0)),  # Excel serial cell
        (datetime(2026, 1, 5, 8, 30), datetime(2026, 1, 5, 8, 30)),
        (date(2026, 1, 5), datetime(2026, 1, 5)),
        ("", None),
        (None, None),
    ],
)
def test_parse_datetime_formats(raw, expected):
    assert parse_datetime(raw, NOW) == expected


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("2026-02-30", "impossible"),
        ("2026年2月30日", "impossible"),
        ("2026-13-01", "impossible"),
        ("1999-12-31", "before 2000"),
        ("2026-06-17", "future"),
        ("2099-01-01 00:00", "future"),
        ("next tuesday", "unrecognised"),
        ("05/01/2026", "unrecognised"),
    ],
)
def test_parse_datetime_rejects(raw, reason):
    with pytest.raises(CellError, match=reason):
        parse_datetime(raw, NOW)


def test_parse_datetime_allows_one_day_ahead():
    assert parse_datetime("2026-06-16 11:00", NOW) == datetime(2026, 6, 16, 11)


@pytest.mark.parametrize(
    "raw, expected",
    [("12.5", 12.5), ("1,234.50", 1234.5), ("¥99", 99.0), ("99元", 99.0), ("０", 0.0),
     (15, 15.0), ("", None), (None, None)],
)
def test_parse_amount(raw, expected):
    assert parse_amount(raw) == expected


@pytest.mark.parametrize("raw", ["abc", "-5", "nan", "inf", "12..5"])
def test_parse_amount_rejects(raw):
    with pytest.raises(CellError):
        parse_amount(raw)


def test_split_list_on_every_separator():
    assert split_list("宝妈; 育儿；美妆,护肤、宝妈，健身|母婴") == [
        "宝妈", "育儿", "美妆", "护肤", "健身", "母婴"
    ]
    assert split_list("  ") == []


# -- members: encodings, headers, shapes -------------------------------------------------------


def test_gbk_with_title_row_blank_lines_quoted_commas(engine, imports_dir, tmp_path):
    f = write(tmp_path / "客户导出.csv", [
        "客户列表,导出时间 2026-06-01",  # a title line above the header
        HEADER,
        "wm001,小红,+86 138-0013-8000,女,朋友圈,宝妈；育儿、美妆,宝妈交流1群,2025/11/1,"
        "2026-06-01 08:30,\"1,234.50\",\"老客户, 爱分享\"",
        "",
        "wm002,小明,139 0013 9000,男,直播,\"健身,跑步\",宝妈交流1群;铁粉群,2025年11月1日,"
        "2026-05-01,0,\"两行\n备注\"",
        ",,,,,,,,,,",
        "wm003,王五,0086-150-0015-0000,未知,门店,,,2025-11-01 08:30:00,,12,",
    ], encoding="gbk")
    r = import_members(engine, f, imports_dir=imports_dir, now=NOW)
    assert (r.encoding, r.rows, r.accepted, r.rejected, r.duplicates) == ("gb18030", 3, 3, 0, 0)
    m = members_by_ext(engine)
    assert m["wm001"]["phone"] == "13800138000"
    assert m["wm001"]["gender"] == "female"
    assert m["wm001"]["total_spend"] == 1234.5
    assert m["wm001"]["note"] == "老客户, 爱分享"
    assert m["wm001"]["joined_at"] == datetime(2025, 11, 1)
    assert m["wm001"]["last_active_at"] == datetime(2026, 6, 1, 8, 30)
    assert m["wm002"]["phone"] == "13900139000"
    assert m["wm002"]["note"] == "两行\n备注"
    assert m["wm003"]["phone"] == "15000150000"
    assert m["wm003"]["gender"] is None
    assert tags_of(engine, "wm001") == {"宝妈", "育儿", "美妆"}
    assert tags_of(engine, "wm002") == {"健身", "跑步"}
    with engine.connect() as conn:
        groups = dict(conn.execute(select(Group.name, Group.external_id)).all())
        n_memberships = conn.execute(text("SELECT count(*) FROM memberships")).scalar_one()
    assert groups == {
        "宝妈交流1群": group_external_id("宝妈交流1群"),
        "铁粉群": group_external_id("铁粉群"),
    }
    assert group_external_id("铁粉群").startswith("name:") and len(group_external_id("x")) == 21
    assert n_memberships == 3
    assert r.rejects_file is None


def test_utf8_bom_and_header_variants(engine, imports_dir, tmp_path):
    f = write(tmp_path / "scrm.csv", [
        "\ufeffexternal_userid,微信昵称,手机号码,性别,添加渠道,客户标签,群聊名称,添加时间,"
        "最后互动时间,累计消费金额,客户备注,跟进人,无关列",
        "wmA,阿花,13800138000,女,海报,新客,A群,2026-01-02,2026-06-01,5,备注,zhangsan,x",
        "wmB,阿草,,男,海报,,,,,,,lisi,y",
    ], encoding="utf-8")
    r = import_members(engine, f, imports_dir=imports_dir, now=NOW)
    assert (r.encoding, r.accepted, r.rejected) == ("utf-8-sig", 2, 0)
    assert r.unmapped_columns == ["无关列"]
    m = members_by_ext(engine)
    assert m["wmA"]["nickname"] == "阿花" and m["wmA"]["owner_userid"] == "zhangsan"
    assert m["wmA"]["source_channel"] == "海报" and m["wmA"]["total_spend"] == 5.0
    assert m["wmB"]["phone"] is None and m["wmB"]["total_spend"] == 0.0


def test_every_rejection_reason_and_good_neighbours_kept(engine, imports_dir, tmp_path):
    rows = [
        HEADER,
        "ok1,好,13800138000,女,,,,2026-01-01,,10,",                 # 2 accepted
        ",无ID,13900139000,男,,,,,,,",                             # 3 missing id
        "ok2,好,,,,,,2026-02-30,,,",                              # 4 impossible date
        "ok3,好,,,,,,2099-01-01,,,",                              # 5 far future
        "ok4,好,,,,,,1999-12-31,,,",                              # 6 before 2000
        "ok5,好,12345678901,,,,,,,,",                             # 7 invalid phone
        "ok6,好,,,,,,,,abc,",                                     # 8 non-numeric amount
        "ok7,好,,,,,,,,-3,",                                      # 9 negative amount
        "ok1,好,13800138000,女,,,,2026-01-01,,10,",                # 10 exact duplicate of 2
        "ok1,改,13800138000,女,,,,2026-01-01,,99,",                # 11 conflicting duplicate
        "ok8,好,+86 138 0013 8000x,,,,,2026-02-30,,-1,",           # 12 three bad cells
        "ok9,好,15000150000,,,,,2026-06-16 09:00,,,",             # 13 accepted (< 1 day ahead)
    ]
    r = import_members(engine, write(tmp_path / "bad.csv", rows), imports_dir=imports_dir,
                       now=NOW)
    assert (r.rows, r.accepted, r.rejected, r.duplicates) == (12, 2, 9, 1)
    assert set(members_by_ext(engine)) == {"ok1", "ok9"}
    assert members_by_ext(engine)["ok1"]["total_spend"] == 10.0  # first occurrence kept
    rej = rejects_of(r)
    assert list(rej[0]) == ["文件", "行号", "字段", "原因", "值"]
    by_row = {}
    for line in rej:
        assert line["文件"] == "bad.csv"
        by_row.setdefault(int(line["行号"]), []).append((line["字段"], line["原因"]))
    expect = {
        3: ("客户ID", "missing customer id"),
        4: ("入群时间", "impossible date"),
        5: ("入群时间", "future"),
        6: ("入群时间", "before 2000"),
        7: ("手机号", "invalid mobile"),
        8: ("累计消费(元)", "not a number"),
        9: ("累计消费(元)", "negative"),
        11: ("客户ID", "conflicting duplicate of row 2"),
    }
    for row, (field, reason) in expect.items():
        assert len(by_row[row]) == 1 and by_row[row][0][0] == field
        assert reason in by_row[row][0][1]
    assert sorted(f for f, _ in by_row[12]) == ["入群时间", "手机号", "累计消费(元)"]
    text_out = Path(r.rejects_file).read_text(encoding="utf-8-sig")
    assert not FULL_PHONE.search(text_out)
    assert "****8000" in text_out  # the bad phone of row 12, masked
    assert Path(r.rejects_file).parent == imports_dir
    assert Path(r.rejects_file).read_bytes().startswith(b"\xef\xbb\xbf")
    assert re.fullmatch(r"\d{8}-\d{6}-members-rejects(-\d+)?\.csv", Path(r.rejects_file).name)
    log = (imports_dir / "import.log").read_text(encoding="utf-8")
    assert "accepted=2" in log and "rejected=9" in log


def test_reimport_changes_nothing(engine, imports_dir, tmp_path):
    f = write(tmp_path / "m.csv", [
        HEADER,
        "wm1,甲,13800138000,女,朋友圈,a;b,G1,2026-01-01,2026-06-01,1,",
        "wm2,乙,13900139000,男,直播,c,G1、G2,2026-01-02,,2,n",
        "wm3,丙,,,,,,,,,",
    ])
    first = import_members(engine, f, imports_dir=imports_dir, now=NOW)
    before = dump(engine)
    again = import_members(engine, f, imports_dir=imports_dir, now=datetime(2026, 6, 15, 13))
    assert (first.accepted, first.created) == (3, 3)
    assert (again.accepted, again.rejected, again.created) == (3, 0, 0)
    assert dump(engine) == before  # not even updated_at moved
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM import_runs")).scalar_one() == 2


def test_reimport_with_changes_updates_and_replaces_tags(engine, imports_dir, tmp_path):
    write(tmp_path / "v1.csv", [HEADER, "wm1,甲,13800138000,女,朋友圈,a;b,G1,,,1,"])
    write(tmp_path / "v2.csv", ["客户ID,昵称,标签", "wm1,甲2,b;c"])
    import_members(engine, tmp_path / "v1.csv", imports_dir=imports_dir, now=NOW)
    r = import_members(engine, tmp_path / "v2.csv", imports_dir=imports_dir, now=NOW)
    assert (r.accepted, r.created) == (1, 0)
    m = members_by_ext(engine)["wm1"]
    assert m["nickname"] == "甲2"
    assert m["phone"] == "13800138000"  # the second file had no phone column: untouched
    assert tags_of(engine, "wm1") == {"b", "c"}


def test_mapping_file(engine, imports_dir, tmp_path):
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "columns:\n  会员号: external_id\n  称呼: nickname\n  电话1: phone\n  内部字段: ignore\n",
        encoding="utf-8",
    )
    f = write(tmp_path / "odd.csv", ["会员号,称呼,电话1,内部字段", "V1,老王,18612345678,zzz"])
    r = import_members(engine, f, imports_dir=imports_dir, mapping=mapping, now=NOW)
    assert (r.accepted, r.rejected, r.unmapped_columns) == (1, 0, [])
    assert members_by_ext(engine)["V1"]["phone"] == "18612345678"
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns:\n  会员号: wechat\n", encoding="utf-8")
    with pytest.raises(BadInput, match="wechat"):
        import_members(engine, f, imports_dir=imports_dir, mapping=bad, now=NOW)


def test_xlsx_with_date_cells_and_numeric_phones(engine, imports_dir, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["客户ID", "昵称", "手机号", "入群时间", "最近互动时间", "累计消费(元)", "标签"])
    ws.append([10001, "甲", 13800138000, datetime(2026, 1, 5, 8, 30), date(2026, 6, 1), 12.5,
               "a；b"])
    ws.append(["wm2", "乙", 13900139000.0, 46027, None, 0, None])  # serial number cell
    ws.append([None, None, None, None, None, None, None])  # an empty row in the middle
    ws.append(["wm3", "丙", 1380013800, datetime(2026, 2, 1), None, -1, None])  # 2 bad cells
    ws.append(["wm4", "丁", None, datetime(1998, 1, 1), None, None, None])  # before 2000
    path = tmp_path / "export.xlsx"
    wb.save(path)
    r = import_members(engine, path, imports_dir=imports_dir, now=NOW)
    assert (r.encoding, r.rows, r.accepted, r.rejected) == (None, 4, 2, 2)
    m = members_by_ext(engine)
    assert m["10001"]["phone"] == "13800138000"
    assert m["10001"]["joined_at"] == datetime(2026, 1, 5, 8, 30)
    assert m["10001"]["last_active_at"] == datetime(2026, 6, 1)
    assert m["wm2"]["phone"] == "13900139000"
    assert m["wm2"]["joined_at"] == datetime(2026, 1, 5)
    rows = {int(x["行号"]) for x in rejects_of(r)}
    assert rows == {5, 6}  # spreadsheet row numbers, the empty row 4 included in numbering


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.csv", b"", "empty"),
        ("binary.csv", bytes(range(256)) * 8, "not a text file"),
        ("nohead.csv", "昵称,手机号\n甲,13800138000\n".encode(), "no customer id column"),
        ("fake.xlsx", b"PK\x03\x04this is not a zip", "not a valid .xlsx"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, ".xls"),
    ],
)
def test_unusable_files_are_one_clear_error(engine, imports_dir, tmp_path, name, content,
                                            message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadInput, match=re.escape(message)) as err:
        import_members(engine, path, imports_dir=imports_dir, now=NOW)
    assert name in str(err.value)
    assert "\n" not in str(err.value)
    assert members_by_ext(engine) == {}


def test_header_only_file_is_zero_zero(engine, imports_dir, tmp_path):
    r = import_members(engine, write(tmp_path / "h.csv", [HEADER]), imports_dir=imports_dir,
                       now=NOW)
    assert (r.rows, r.accepted, r.rejected, r.rejects_file) == (0, 0, 0, None)


def test_unknown_and_wrong_encodings(engine, imports_dir, tmp_path):
    f = write(tmp_path / "gbk.csv", [HEADER, "wm1,小红,,,,,,,,,"], encoding="gbk")
    with pytest.raises(BadInput, match="unknown encoding"):
        import_members(engine, f, imports_dir=imports_dir, encoding="klingon-8", now=NOW)
    with pytest.raises(BadInput, match=r"gbk\.csv.*row 1 as utf-8"):
        import_members(engine, f, imports_dir=imports_dir, encoding="utf-8", now=NOW)
    r = import_members(engine, f, imports_dir=imports_dir, encoding="gbk", now=NOW)
    assert (r.accepted, members_by_ext(engine)["wm1"]["nickname"]) == (1, "小红")


def test_decode_error_late_in_file_rolls_back(engine, imports_dir, tmp_path):
    good = (HEADER + "\n" + "".join(f"wm{i},n{i},,,,,,,,,\n" for i in range(5))).encode()
    path = tmp_path / "late.csv"
    path.write_bytes(good + b"wm9,\xff\xfe\xfd,,,,,,,,,\n")
    with pytest.raises(BadInput, match="row 7"):
        import_members(engine, path, imports_dir=imports_dir, encoding="utf-8", now=NOW,
                       batch_size=2)
    assert members_by_ext(engine) == {}  # one transaction: nothing half-imported


def test_utf16_excel_unicode_text(engine, imports_dir, tmp_path):
    path = tmp_path / "unicode.txt"
    path.write_bytes("客户ID\t昵称\nwm1\t甲\n".encode("utf-16"))
    r = import_members(engine, path, imports_dir=imports_dir, now=NOW)
    assert (r.accepted, members_by_ext(engine)["wm1"]["nickname"]) == (1, "甲")


def test_small_batches_give_same_result(engine, imports_dir, tmp_path):
    lines = [HEADER] + [
        f"wm{i},n{i},{PHONES[i % 5]},,,t{i % 3};t{i % 4},G{i % 2},2026-01-0{1 + i % 9},,{i},"
        for i in range(25)
    ]
    r = import_members(engine, write(tmp_path / "b.csv", lines), imports_dir=imports_dir,
                       now=NOW, batch_size=4)
    assert (r.accepted, r.created) == (25, 25)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM memberships")).scalar_one() == 25
        assert conn.execute(text("SELECT count(*) FROM groups")).scalar_one() == 2


# -- events ------------------------------------------------------------------------------------


@pytest.fixture
def community(engine, imports_dir, tmp_path):
    write(tmp_path / "members.csv", [
        HEADER,
        "wm1,甲,13800138000,,,,宝妈1群,2026-01-01,,,",
        "wm2,乙,13900139000,,,,宝妈1群;铁粉群,2026-01-01,,,",
    ])
    import_members(engine, tmp_path / "members.csv", imports_dir=imports_dir, now=NOW)
    return engine


def test_events_import_and_reimport(community, imports_dir, tmp_path):
    f = write(tmp_path / "events.csv", [
        "客户ID,行为类型,发生时间,群,活动,金额",
        "wm1,进群,2026-01-01 09:00,宝妈1群,,",              # 2 ok
        "wm1,发言,2026-01-02 10:00:00,宝妈1群,,",            # 3 ok
        "wm1,打卡,2026/1/3 8:00,宝妈1群,7日打卡,",            # 4 ok
        "wm2,下单,2026年1月4日 20:00,,会员日,99.9",           # 5 ok
        "wm2,purchase,2026-01-05,,会员日,\"1,299\"",         # 6 ok
        "wm2,邀请,2026-01-06,铁粉群,裂变,",                   # 7 ok
        "wm2,邀请,2026-01-06,铁粉群,裂变,",                   # 8 exact duplicate
        "wm2,邀请,2026-01-06,铁粉群,别的活动,",                # 9 conflicting duplicate
        "wm404,点赞,2026-01-06,,,",                          # 10 unknown member
        "wm1,跳舞,2026-01-06,,,",                            # 11 unknown kind
        "wm1,点赞,2026-01-06,不存在的群,,",                    # 12 unknown group
        "wm1,点赞,2099-01-06,,,",                            # 13 future
        "wm2,购买,2026-01-07,,,-10",                         # 14 negative amount
        "wm1,分享,,宝妈1群,,",                               # 15 missing time
    ])
    r = import_events(community, f, imports_dir=imports_dir, now=NOW)
    assert (r.rows, r.accepted, r.rejected, r.duplicates, r.created) == (14, 6, 7, 1, 6)
    reasons = {int(x["行号"]): x["原因"] for x in rejects_of(r)}
    assert "conflicting duplicate" in reasons[9]
    assert "unknown member" in reasons[10]
    assert "unknown event type" in reasons[11]
    assert "unknown group" in reasons[12]
    assert "future" in reasons[13]
    assert "negative" in reasons[14]
    assert "missing time" in reasons[15]
    with community.connect() as conn:
        kinds = sorted(conn.execute(text("SELECT kind FROM events")).scalars())
        amounts = sorted(a for a in conn.execute(text("SELECT amount FROM events")).scalars() if a)
    assert kinds == ["checkin", "join", "message", "purchase", "purchase", "referral"]
    assert amounts == [99.9, 1299.0]
    before = dump(community)
    again = import_events(community, f, imports_dir=imports_dir, now=NOW)
    assert (again.accepted, again.rejected, again.created) == (6, 7, 0)
    assert dump(community) == before


def test_events_need_their_columns(community, imports_dir, tmp_path):
    f = write(tmp_path / "e.csv", ["客户ID,发生时间", "wm1,2026-01-01"])
    with pytest.raises(BadInput, match="kind"):
        import_events(community, f, imports_dir=imports_dir, now=NOW)


# -- CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("QUNYUN_HOME", str(tmp_path / "ws"))
    monkeypatch.delenv("QUNYUN_DATABASE_URL", raising=False)
    from qunyun.cli import main

    runner = CliRunner()

    def run(*args):
        """`qunyun ARGS` in process, through main() and its error handling."""
        monkeypatch.setattr(sys, "argv", ["qunyun", *args])
        with runner.isolation() as (stdout, stderr, _):
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code or 0
            res = SimpleNamespace(exit_code=code, stdout=stdout.getvalue().decode(),
                                  stderr=stderr.getvalue().decode())
        out = res.stdout + res.stderr
        assert not FULL_PHONE.search(out), out
        return res

    return run


def test_cli_json_counts_and_no_phone_anywhere(cli, tmp_path):
    f = write(tmp_path / "m.csv", [
        HEADER,
        *(f"wm{i},n{i},{PHONES[i]},女,,,,2026-01-01,,1," for i in range(5)),
        "wm9,坏,+86 1380013800,,,,,,,,",
        "wm10,坏,,,,,,,,-1,电话 13800138000",
    ], encoding="gbk")
    res = cli("import", "members", str(f), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (out["accepted"], out["rejected"], out["ok"]) == (5, 2, True)
    rejects = Path(out["rejects_file"])
    assert rejects.exists() and rejects.parent == tmp_path / "ws" / "imports"
    for p in (rejects, tmp_path / "ws" / "imports" / "import.log"):
        assert not FULL_PHONE.search(p.read_text(encoding="utf-8-sig"))
    res = cli("import", "members", str(f))
    assert res.exit_code == 0
    assert "接受 accepted 5" in res.stdout and "拒绝 rejected 2" in res.stdout


def test_cli_exit_2_on_bad_file(cli, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    res = cli("import", "members", str(empty))
    assert res.exit_code == 2
    assert "empty.csv" in res.stderr and "错误" in res.stderr
    res = cli("import", "events", str(empty), "--json")
    assert res.exit_code == 2
    assert json.loads(res.stdout)["ok"] is False
    res = cli("import", "members", str(tmp_path / "missing.csv"))
    assert res.exit_code == 2


def test_cli_events(cli, tmp_path):
    write(tmp_path / "m.csv", [HEADER, "wm1,甲,,,,,,,,,"])
    write(tmp_path / "e.csv", ["客户ID,事件类型,发生时间", "wm1,点赞,2026-01-01", "wmX,点赞,2026-01-01"])
    assert cli("import", "members", str(tmp_path / "m.csv")).exit_code == 0
    res = cli("import", "events", str(tmp_path / "e.csv"), "--json")
    assert res.exit_code == 0
    assert (json.loads(res.stdout)["accepted"], json.loads(res.stdout)["rejected"]) == (1, 1)


# -- PostgreSQL --------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(not os.environ.get("QUNYUN_TEST_PG_URL"), reason="QUNYUN_TEST_PG_URL unset")
def test_postgres_members_and_events(imports_dir, tmp_path):
    url = os.environ["QUNYUN_TEST_PG_URL"]
    engine = db.migrate(url)
    tag = f"pg{os.getpid()}_{datetime.now():%H%M%S%f}"
    f = write(tmp_path / "m.csv", [
        HEADER,
        f"{tag}_1,甲,13800138000,女,朋友圈,a;b,{tag}群,2026-01-01 08:00,2026-06-01,1.5,",
        f"{tag}_2,乙,,男,,c,{tag}群;{tag}二群,2026-01-02,,2,",
        f"{tag}_3,丙,123,,,,,,,,",
    ])
    r = import_members(engine, f, imports_dir=imports_dir, now=NOW)
    assert (r.accepted, r.rejected, r.created) == (2, 1, 2)
    e = write(tmp_path / "e.csv", [
        "客户ID,事件类型,发生时间,群,金额",
        f"{tag}_1,进群,2026-01-01 08:00,{tag}群,",
        f"{tag}_2,购买,2026-01-03,,9.9",
    ])
    assert import_events(engine, e, imports_dir=imports_dir, now=NOW).created == 2
    assert import_events(engine, e, imports_dir=imports_dir, now=NOW).created == 0
    again = import_members(engine, f, imports_dir=imports_dir, now=NOW)
    assert (again.accepted, again.created) == (2, 0)
    assert tags_of(engine, f"{tag}_1") == {"a", "b"}


def test_a_time_of_day_cell_is_not_a_date():
    from datetime import time as clock

    with pytest.raises(CellError, match="unrecognised date"):
        parse_datetime(clock(8, 30), NOW)
