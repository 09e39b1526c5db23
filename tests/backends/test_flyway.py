"""Flyway's rules as bva applies them: version order, the checksum, and the info states."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from backends.db.flyway import checksum, merge, read_migrations, version_key
from backends.db.models import MigrationState as S


@pytest.mark.parametrize(
    ("a", "b"),
    [("1", "1.0"), ("1.0.0", "1"), ("2_1", "2.1"), ("01", "1")],
)
def test_equal_versions(a: str, b: str) -> None:
    assert version_key(a) == version_key(b)


def test_versions_compare_part_by_part_as_integers() -> None:
    ordered = ["1", "1.1", "1.2", "1.10", "2", "10"]
    assert sorted(reversed(ordered), key=version_key) == ordered


def test_checksum_is_crc32_of_the_lines_without_endings_or_bom() -> None:
    text = "\ufeffCREATE TABLE a (x int);\r\nINSERT INTO a VALUES (1);\n"
    expected = zlib.crc32(b"CREATE TABLE a (x int);INSERT INTO a VALUES (1);")
    signed = expected - (1 << 32) if expected >= 1 << 31 else expected
    assert checksum(text) == signed
    assert checksum(text) == checksum(text.replace("\r\n", "\n").removeprefix("\ufeff"))
    assert -(1 << 31) <= checksum("x" * 1000) < 1 << 31


def _row(
    rank: int, version: str | None, desc: str, *, kind: str = "SQL", ok: bool = True, crc: int = 0
) -> dict[str, object]:
    return {
        "installed_rank": rank,
        "version": version,
        "description": desc,
        "type": kind,
        "script": f"V{version}__{desc}.sql",
        "checksum": crc,
        "installed_on": 1.0e9,
        "execution_time": 5,
        "success": ok,
    }


def test_info_states_from_rows_and_files(tmp_path: Path) -> None:
    for name, body in [
        ("V1__init.sql", "a"),
        ("V2__add_x.sql", "b"),
        ("V2_1__fix_x.sql", "c"),
        ("V3__later.sql", "d"),
        ("R__views.sql", "changed"),
        ("notes.txt", "ignored"),
    ]:
        (tmp_path / name).write_text(body)
    files = read_migrations(tmp_path)
    assert {f.description for f in files} == {"init", "add x", "fix x", "later", "views"}
    rows = [
        _row(1, "0.9", "baseline", kind="BASELINE"),
        _row(2, "1", "init"),
        _row(3, "1.5", "gone file"),  # applied, no file, older than the newest file
        _row(4, "2", "add x"),
        _row(5, "2.1", "fix x", ok=False),
        _row(6, None, "views", crc=checksum("old")),
        _row(7, "9", "from a newer build"),
    ]
    fw = merge(rows, files)
    assert [(m.version, m.state) for m in fw.migrations] == [
        ("0.9", S.BASELINE),
        ("1", S.SUCCESS),
        ("1.5", S.MISSING),
        ("2", S.SUCCESS),
        ("2.1", S.FAILED),
        (None, S.OUTDATED),
        ("9", S.FUTURE),
        ("3", S.IGNORED),  # below 9, the newest applied
    ]
    assert [m.version for m in fw.failed] == ["2.1"]
    assert fw.latest is not None and fw.latest.version == "9"
    assert not fw.pending
    later = merge(rows[:5], files)
    assert [m.version for m in later.pending] == ["3"]


def test_without_files_rows_are_success_or_failed_and_nothing_is_pending() -> None:
    fw = merge([_row(1, "1", "init"), _row(2, "2", "boom", ok=False)], None)
    assert [m.state for m in fw.migrations] == [S.SUCCESS, S.FAILED]
    assert not fw.pending and not fw.files_read


def test_row_text_is_sanitised() -> None:
    fw = merge([_row(1, "1", "evil\x1b[2Jtext")], None)
    assert "\x1b" not in fw.migrations[0].description


def test_validate_names_what_flyway_validate_fails_on(tmp_path: Path) -> None:
    (tmp_path / "V1__init.sql").write_text("CREATE TABLE a (x int);\n")
    (tmp_path / "V2__edited.sql").write_text("CREATE TABLE b (y int); -- edited after it ran\n")
    (tmp_path / "V4__new.sql").write_text("SELECT 1;\n")
    files = read_migrations(tmp_path)
    rows = [
        _row(1, "1", "init", crc=checksum("CREATE TABLE a (x int);\n")),
        _row(2, "2", "edited", crc=checksum("CREATE TABLE b (y int);\n")),
        _row(3, "3", "boom", ok=False),
        _row(4, "9", "newer build"),
    ]
    fw = merge(rows, files)
    assert fw.problems == (
        f"2: checksum mismatch (applied {checksum('CREATE TABLE b (y int);')}, "
        f"file {checksum('CREATE TABLE b (y int); -- edited after it ran')})",
        "3: failed",
        "4: never applied, older than the newest applied version",
    )
    clean = merge(rows[:1], files)
    assert clean.problems == () and [m.version for m in clean.pending] == ["2", "4"]


def test_the_lag_trend_survives_a_zero_threshold_and_a_negative_lag() -> None:
    from widgets.db_table import lag_spark

    assert lag_spark((0.0, 0.0), 5, 0.0) == "▁▁"
    assert lag_spark((-2.0, 0.5), 5, 1.0) == "▁▅"
