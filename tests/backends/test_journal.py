"""The hash-chained journal: what it writes, what it refuses, and every tampering it detects."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from backends.errors import ReadOnlyError, RolloutRefused
from backends.journal.records import GENESIS_HASH, JournalError, record_hash
from backends.journal.scrub import scrub_text
from backends.journal.store import Journal, journal_path

ROOT = Path(__file__).resolve().parents[2]


def make_journal(tmp_path: Path, n: int = 6) -> Journal:
    journal = Journal(tmp_path / "journal" / "production.jsonl", "production", actor="alice@box")
    for i in range(n):
        stage = "before" if i % 2 == 0 else "after"
        journal.append(
            "release.phase",
            f"auth-service@production#{i}",
            stage=stage,
            result="" if stage == "before" else "ok",
            details={"weight": 5 * (i + 1)},
        )
    return journal


def lines(journal: Journal) -> list[str]:
    return journal.path.read_text().splitlines(keepends=True)


def write_lines(journal: Journal, content: list[str]) -> None:
    journal.path.write_text("".join(content))


def rehash(line: str, **changes: Any) -> str:
    data = json.loads(line)
    data.update(changes)
    body = {k: v for k, v in data.items() if k != "hash"}
    data["hash"] = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    return json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"


# --- writing -------------------------------------------------------------------------------


def test_append_builds_a_chain_with_the_documented_hash(tmp_path: Path) -> None:
    journal = make_journal(tmp_path, 4)
    records = journal.records()
    assert [r.seq for r in records] == [1, 2, 3, 4]
    assert records[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(records):
        assert after.prev_hash == before.hash
    for record, line in zip(records, lines(journal), strict=True):
        data = json.loads(line)
        body = {k: v for k, v in data.items() if k != "hash"}
        expected = hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        assert data["hash"] == expected == record.hash == record_hash(data)
        assert set(data) == {
            "seq", "ts", "actor", "environment", "action", "stage",
            "target", "result", "details", "prev_hash", "hash",
        }  # fmt: skip
    assert records[1].stage == "after" and records[1].result == "ok"
    assert records[0].actor == "alice@box" and records[0].environment == "production"
    assert journal.verify().ok and journal.verify().count == 4


def test_file_and_directories_are_private(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "a" / "b" / "staging.jsonl", "staging")
    old = os.umask(0o022)
    try:
        journal.append("release.start", "x", stage="before")
    finally:
        os.umask(old)
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700


def test_default_actor_is_user_at_host(tmp_path: Path) -> None:
    import getpass
    import socket

    record = Journal(tmp_path / "j.jsonl", "sandbox").append("release.start", "t", stage="before")
    assert record.actor == f"{getpass.getuser()}@{socket.gethostname()}"


def test_append_rejects_bad_arguments(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", "sandbox")
    with pytest.raises(JournalError, match="stage"):
        journal.append("release.start", "t", stage="during")
    with pytest.raises(JournalError, match="no result"):
        journal.append("release.start", "t", stage="before", result="ok")
    with pytest.raises(JournalError, match="needs a result"):
        journal.append("release.start", "t", stage="after")
    with pytest.raises(JournalError, match="empty"):
        journal.append(" ", "t", stage="before")
    assert not journal.path.exists() or journal.records() == []


def test_record_context_manager_ok_failed_refused(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", "production", actor="bob@h")
    with journal.record("release.promote", "auth-service@production", {"to": "1.2"}) as entry:
        assert entry.before.stage == "before"
        entry.details["revision"] = 7
    assert entry.after is not None and entry.after.result == "ok"
    assert entry.after.details == {"to": "1.2", "revision": 7}

    with pytest.raises(RuntimeError, match="boom"), journal.record("rollback.execute", "u-s"):
        raise RuntimeError("boom\n  on two lines")
    with pytest.raises(ReadOnlyError), journal.record("release.abort", "x"):
        raise ReadOnlyError("environment is read-only")
    with pytest.raises(RolloutRefused), journal.record("rollback.execute", "y"):
        raise RolloutRefused("deployment is paused")
    with journal.record("release.pause", "z") as entry:
        entry.result = "refused: nothing to pause"

    results = [(r.action, r.stage, r.result) for r in journal.records()]
    assert results == [
        ("release.promote", "before", ""),
        ("release.promote", "after", "ok"),
        ("rollback.execute", "before", ""),
        ("rollback.execute", "after", "failed: boom on two lines"),
        ("release.abort", "before", ""),
        ("release.abort", "after", "refused: environment is read-only"),
        ("rollback.execute", "before", ""),
        ("rollback.execute", "after", "refused: deployment is paused"),
        ("release.pause", "before", ""),
        ("release.pause", "after", "refused: nothing to pause"),
    ]
    assert journal.verify().ok


async def test_async_record_context_manager(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", "sandbox")
    async with journal.arecord("release.finish", "rel-1") as entry:
        entry.details["phases"] = 4
    with pytest.raises(ValueError):
        async with journal.arecord("release.abort", "rel-1"):
            raise ValueError("gone")
    records = journal.records()
    assert [r.result for r in records] == ["", "ok", "", "failed: gone"]
    assert records[1].details == {"phases": 4}


def test_body_does_not_run_when_before_cannot_be_written(tmp_path: Path) -> None:
    journal = make_journal(tmp_path, 3)
    content = journal.path.read_bytes()
    journal.path.write_bytes(content[:-20])  # last line cut mid-JSON
    ran = []
    with (
        pytest.raises(JournalError, match="refusing to append"),
        journal.record("rollback.execute", "auth-service"),
    ):
        ran.append(True)
    assert ran == []
    assert journal.path.read_bytes() == content[:-20]  # nothing appended after the damage


def test_append_refuses_after_a_malformed_last_record(tmp_path: Path) -> None:
    journal = make_journal(tmp_path, 2)
    with journal.path.open("a") as fh:
        fh.write('{"seq": 3}\n')
    with pytest.raises(JournalError, match="last record is broken"):
        journal.append("release.start", "t", stage="before")


def test_long_last_record_is_read_across_chunks(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", "sandbox")
    journal.append("release.start", "t", stage="before", details={"notes": ["x" * 900] * 40})
    journal.append("release.start", "t", stage="after", result="ok")
    assert journal.verify().ok and journal.verify().count == 2


# --- secrets -------------------------------------------------------------------------------


def test_secrets_are_dropped_and_masked(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", "production")
    details = {
        "password": "hunter2-pw",
        "db_password": "hunter2-db",
        "api_token": "tok-123456",
        "client_secret": "sec-abcdef",
        "DSN": "postgresql://app:dsnpass@db:5432/app",
        "nested": {"Authorization": "Bearer abcdefghijklmnop", "replica_dsn": "x", "keep": 1},
        "list": [{"token": "tok-in-list"}, "postgresql://u:listpass@h/db"],
        "url": "https://deploy:urlpass@registry.example/v2?access_token=qtok123&x=1",
        "clone": "https://ghp_lonetoken@github.com/org/repo.git",
        "conn": "host=db user=app password=kvpass dbname=app",
        "header": "Authorization: Bearer sk-live-abcdefghijkl",
        "image": "auth-service:1.2.3",
        "weight": 25,
    }
    record = journal.append(
        "release.start", "postgresql://a:targetpass@db/app", stage="before", details=details
    )
    raw = journal.path.read_text()
    for secret in (
        "hunter2", "tok-123456", "sec-abcdef", "dsnpass", "abcdefghijklmnop", "tok-in-list",
        "listpass", "urlpass", "qtok123", "ghp_lonetoken", "kvpass", "sk-live", "targetpass",
    ):  # fmt: skip
        assert secret not in raw, secret
    assert set(record.details) == {"nested", "list", "url", "clone", "conn", "header", "image",
                                   "weight"}  # fmt: skip
    assert record.details["nested"] == {"keep": 1}
    assert record.details["list"] == [{}, "postgresql://u:***@h/db"]
    assert record.details["url"] == "https://deploy:***@registry.example/v2?access_token=***&x=1"
    assert record.details["clone"] == "https://***@github.com/org/repo.git"
    assert record.details["image"] == "auth-service:1.2.3" and record.details["weight"] == 25
    assert record.target == "postgresql://a:***@db/app"
    assert journal.verify().ok


def test_failure_message_is_masked(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", "production")
    with pytest.raises(ConnectionError), journal.record("rollback.execute", "db"):
        raise ConnectionError("cannot reach postgresql://app:s3cr3t@db:5432/app")
    assert "s3cr3t" not in journal.path.read_text()
    assert journal.records()[-1].result == "failed: cannot reach postgresql://app:***@db:5432/app"


def test_details_are_made_json_safe(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", "sandbox")
    record = journal.append(
        "release.start",
        "t",
        stage="before",
        details={"nan": float("nan"), "path": Path("/x"), 3: "int key", "t": (1, 2)},
    )
    assert record.details == {"nan": "nan", "path": "/x", "3": "int key", "t": [1, 2]}
    assert journal.verify().ok


def test_scrub_text_keeps_plain_text() -> None:
    assert scrub_text("auth-service,user-service@sandbox") == "auth-service,user-service@sandbox"
    assert scrub_text("ssh://git@host/repo") == "ssh://git@host/repo"


# --- tampering -----------------------------------------------------------------------------


def test_edited_field_is_a_hash_mismatch(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    content = lines(journal)
    content[2] = content[2].replace('"result":""', '"result":"ok"')
    write_lines(journal, content)
    assert (journal.verify().ok, journal.verify().first_bad) == (False, 3)
    assert journal.verify().reason == "hash mismatch"
    assert journal.verify().count == 2


def test_edited_and_rehashed_record_breaks_the_next_link(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    content = lines(journal)
    content[2] = rehash(content[2], target="something-else")
    write_lines(journal, content)
    result = journal.verify()
    assert (result.first_bad, result.reason) == (4, "previous hash does not match line 3")


def test_deleted_record_is_a_sequence_gap(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    content = lines(journal)
    del content[2]
    write_lines(journal, content)
    result = journal.verify()
    assert (result.ok, result.first_bad, result.reason) == (
        False,
        3,
        "sequence gap: expected 3, got 4",
    )


def test_deleted_first_record(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    write_lines(journal, lines(journal)[1:])
    assert (journal.verify().first_bad, journal.verify().reason) == (
        1,
        "sequence gap: expected 1, got 2",
    )


def test_deleted_and_renumbered_record_breaks_prev_hash(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    content = lines(journal)
    del content[2]
    content[2:] = [rehash(line, seq=i) for i, line in enumerate(content[2:], start=3)]
    write_lines(journal, content)
    assert (journal.verify().first_bad, journal.verify().reason) == (
        3,
        "previous hash does not match line 2",
    )


def test_swapped_records(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    content = lines(journal)
    content[2], content[3] = content[3], content[2]
    write_lines(journal, content)
    assert (journal.verify().first_bad, journal.verify().reason) == (
        3,
        "sequence gap: expected 3, got 4",
    )


def test_truncated_last_line_is_malformed(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    raw = journal.path.read_bytes()
    journal.path.write_bytes(raw[: len(raw) - 30])
    result = journal.verify()
    assert (result.ok, result.first_bad, result.count) == (False, 6, 5)
    assert result.reason == "not valid JSON (file cut short)"
    with pytest.raises(JournalError, match=r"line 6: not valid JSON \(file cut short\)"):
        journal.records()


def test_missing_final_newline_is_reported(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    raw = journal.path.read_bytes()
    journal.path.write_bytes(raw[:-1])
    result = journal.verify()
    assert (result.first_bad, result.reason) == (
        6,
        "no newline after the last record (file cut short)",
    )


def test_forged_record_with_wrong_prev_hash(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    content = lines(journal)
    forged = rehash(content[-1], seq=7, prev_hash="f" * 64, action="release.finish")
    write_lines(journal, [*content, forged])
    result = journal.verify()
    assert (result.first_bad, result.reason) == (7, "previous hash does not match line 6")
    assert result.count == 6


def test_forged_first_record(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    content = lines(journal)
    content[0] = rehash(content[0], prev_hash="a" * 64)
    write_lines(journal, content)
    result = journal.verify()
    assert result.first_bad == 1 and "genesis" in result.reason


def test_inserted_copy_of_a_record(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    content = lines(journal)
    content.insert(3, content[1])
    write_lines(journal, content)
    assert (journal.verify().first_bad, journal.verify().reason) == (
        4,
        "sequence out of order: expected 4, got 2",
    )


def test_inserted_well_forged_record_breaks_at_the_next_line(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    content = lines(journal)
    prev = json.loads(content[2])["hash"]
    inserted = rehash(content[2], seq=4, prev_hash=prev, target="forged")
    content.insert(3, inserted)
    write_lines(journal, content)
    # the inserted line itself is a perfect link; the original line 4 no longer is
    assert (journal.verify().first_bad, journal.verify().reason) == (
        5,
        "sequence out of order: expected 5, got 4",
    )


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ("\n", "blank line"),
        ("[1, 2]\n", "not a JSON object"),
        ('{"seq": 3}\n', "missing field 'ts'"),
        ("\udcff\n", "not valid UTF-8"),
    ],
)
def test_garbage_lines(tmp_path: Path, bad_line: str, reason: str) -> None:
    journal = make_journal(tmp_path)
    content = lines(journal)
    content.insert(2, bad_line)
    journal.path.write_bytes("".join(content).encode("utf-8", "surrogateescape"))
    result = journal.verify()
    assert (result.first_bad, result.reason) == (3, reason)


def test_wrong_types_and_extra_fields(tmp_path: Path) -> None:
    journal = make_journal(tmp_path, 2)
    content = lines(journal)
    for changes, reason in [
        ({"seq": "2"}, "field 'seq' has the wrong type"),
        ({"seq": True}, "field 'seq' has the wrong type"),
        ({"stage": "during"}, "field 'stage' is not 'before' or 'after'"),
        ({"hash_extra": 1}, "unexpected field 'hash_extra'"),
    ]:
        write_lines(journal, [content[0], rehash(content[1], **changes)])
        assert (journal.verify().first_bad, journal.verify().reason) == (2, reason)
    bad_hash = json.loads(content[1]) | {"hash": "XYZ"}
    write_lines(journal, [content[0], json.dumps(bad_hash) + "\n"])
    assert journal.verify().reason == "field 'hash' is not a sha256 hex digest"


def test_missing_and_empty_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "none.jsonl", "x")
    assert journal.records() == []
    result = journal.verify()
    assert (result.ok, result.count, result.first_bad, result.reason) == (True, 0, None, "")
    journal.path.write_text("")
    assert journal.verify().ok and journal.records() == []


# --- concurrency ---------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from backends.journal.store import Journal
    path, who, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.005)
    journal = Journal(path, "production", actor=who)
    for i in range(50):
        journal.append("release.phase", f"{who}-{i}", stage="before", details={"i": i})
    """
)


def test_concurrent_appends_from_four_processes(tmp_path: Path) -> None:
    path = tmp_path / "j" / "production.jsonl"
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), f"writer{n}@host", str(go)], cwd=ROOT
        )
        for n in range(4)
    ]
    go.touch()
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    journal = Journal(path, "production")
    result = journal.verify()
    assert (result.ok, result.count, result.reason) == (True, 200, "")
    records = journal.records()
    assert [r.seq for r in records] == list(range(1, 201))
    for n in range(4):
        mine = [r.details["i"] for r in records if r.actor == f"writer{n}@host"]
        assert mine == list(range(50))


# --- where ---------------------------------------------------------------------------------


def test_journal_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert journal_path("production", str(tmp_path / "x.jsonl")) == tmp_path / "x.jsonl"
    monkeypatch.setenv("BVA_JOURNAL_DIR", str(tmp_path / "jd"))
    assert journal_path("staging") == tmp_path / "jd" / "staging.jsonl"
    monkeypatch.delenv("BVA_JOURNAL_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert journal_path("sandbox") == tmp_path / "data" / "bva" / "journal" / "sandbox.jsonl"
    for bad in ("../etc", "a/b", "", ".hidden", "x" * 80):
        with pytest.raises(JournalError, match="bad environment name"):
            journal_path(bad)
