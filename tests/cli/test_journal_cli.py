"""`bva journal [list|verify]`: the table, JSON lines, verify's verdict and exit codes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backends.journal.store import Journal
from tui.cli_errors import Parser, UsageError
from tui.cli_journal import add_journal_parser, cmd_journal

ROOT = Path(__file__).resolve().parents[2]


def parser() -> argparse.ArgumentParser:
    """The shape tui/cli.py gives it: --config/--env on the top, subcommands under it."""
    top = Parser(prog="bva")
    top.add_argument("--config")
    top.add_argument("--env", default=None)
    top.add_argument("--sandbox", action="store_true")
    sub = top.add_subparsers(dest="command", parser_class=Parser)
    add_journal_parser(sub)
    return top


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    args = parser().parse_args(["journal", *argv])
    code = cmd_journal(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def journal_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "journals"
    monkeypatch.setenv("BVA_JOURNAL_DIR", str(directory))
    monkeypatch.delenv("BVA_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./bva.toml: the built-in platform (default: production)
    return directory


def fill(path: Path, env: str = "production", n: int = 3) -> Journal:
    journal = Journal(path, env, actor="alice@box")
    for i in range(n):
        with journal.record("release.phase", f"auth-service@{env}", {"weight": 5 * (i + 1)}):
            pass
    return journal


def test_list_default_environment(capsys: pytest.CaptureFixture[str], journal_dir: Path) -> None:
    fill(journal_dir / "production.jsonl")
    code, out, err = run(capsys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"journal {journal_dir / 'production.jsonl'}: 6 records"
    header = lines[1].split()
    assert header[:3] == ["SEQ", "TIME", "(UTC)"] and header[-4:] == [
        "ACTION",
        "STAGE",
        "TARGET",
        "RESULT",
    ]
    assert len(lines) == 8
    first = lines[2].split()
    assert first[0] == "1" and first[1].endswith("Z") and "T" in first[1]
    assert first[2:6] == ["alice@box", "release.phase", "before", "auth-service@production"]
    assert lines[3].split()[-1] == "ok"


def test_list_limit_and_env(capsys: pytest.CaptureFixture[str], journal_dir: Path) -> None:
    fill(journal_dir / "staging.jsonl", "staging", n=30)
    code, out, _ = run(capsys, "--env", "staging")
    assert code == 0
    assert "60 records, showing the last 50" in out.splitlines()[0]
    assert len(out.splitlines()) == 52
    code, out, _ = run(capsys, "list", "--env", "staging", "--limit", "2")
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["59", "60"]
    code, out, _ = run(capsys, "--env", "staging", "--limit", "0")
    assert len(out.splitlines()) == 62


def test_top_level_env_flag_is_kept(journal_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(journal_dir / "staging.jsonl", "staging", n=1)
    args = parser().parse_args(["--env", "staging", "journal"])
    assert cmd_journal(args) == 0
    assert "staging.jsonl: 2 records" in capsys.readouterr().out


def test_list_json(capsys: pytest.CaptureFixture[str], journal_dir: Path) -> None:
    journal = fill(journal_dir / "production.jsonl", n=2)
    code, out, _ = run(capsys, "--json", "--limit", "3")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows == [r.to_dict() for r in journal.records()[-3:]]


def test_journal_override(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.jsonl"
    fill(path, "qa", n=1)
    # --journal needs no platform file at all
    args = parser().parse_args(["--config", "/no/such.toml", "journal", "--journal", str(path)])
    assert cmd_journal(args) == 0
    assert f"journal {path}: 2 records" in capsys.readouterr().out


def test_verify_intact_and_broken(capsys: pytest.CaptureFixture[str], journal_dir: Path) -> None:
    path = journal_dir / "production.jsonl"
    fill(path)
    code, out, _ = run(capsys, "verify")
    assert (code, out) == (0, f"journal {path}: 6 records, chain intact\n")

    content = path.read_text().splitlines(keepends=True)
    del content[3]
    path.write_text("".join(content))
    code, out, _ = run(capsys, "verify")
    assert code == 1
    assert out == f"journal {path}: record at line 4 is broken: sequence gap: expected 4, got 5\n"

    code, out, _ = run(capsys, "verify", "--json")
    assert code == 1
    assert json.loads(out) == {
        "path": str(path),
        "exists": True,
        "ok": False,
        "count": 3,
        "first_bad": 4,
        "reason": "sequence gap: expected 4, got 5",
        "last_hash": json.loads(content[2])["hash"],
    }


def test_list_of_a_malformed_journal_is_one_line_exit_1(
    capsys: pytest.CaptureFixture[str], journal_dir: Path
) -> None:
    path = journal_dir / "production.jsonl"
    fill(path)
    path.write_bytes(path.read_bytes()[:-15])
    code, out, err = run(capsys)
    assert (code, out) == (1, "")
    assert err == f"bva: journal {path}: line 6: not valid JSON (file cut short)\n"


def test_missing_journal(capsys: pytest.CaptureFixture[str], journal_dir: Path) -> None:
    path = journal_dir / "production.jsonl"
    assert run(capsys) == (0, f"journal {path}: no journal yet\n", "")
    assert run(capsys, "verify") == (0, f"journal {path}: no journal yet (0 records)\n", "")
    code, out, _ = run(capsys, "verify", "--json")
    assert code == 0 and json.loads(out)["count"] == 0 and json.loads(out)["ok"] is True
    assert run(capsys, "--json") == (0, "", "")


def test_unknown_environment_without_journal_is_usage_error(
    capsys: pytest.CaptureFixture[str], journal_dir: Path
) -> None:
    code, out, err = run(capsys, "--env", "prodution")
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "prodution" in err and "production" in err
    code, _, err = run(capsys, "--env", "../../etc/passwd")
    assert code == 2 and "bad environment name" in err and len(err.splitlines()) == 1


def test_escape_sequences_in_the_journal_are_inert(
    capsys: pytest.CaptureFixture[str], journal_dir: Path
) -> None:
    journal = Journal(journal_dir / "production.jsonl", "production", actor="\x1b]0;pwned\x07@h")
    journal.append("release.start", "\x1b[2J\x1b[31mred\u202e", stage="before")
    journal.append("release.start", "x", stage="after", result="failed: \x9b31m")
    for argv in ((), ("--json",), ("verify",)):
        code, out, _ = run(capsys, *argv)
        assert code == 0
        for bad in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert bad not in out, (argv, out)
    _, out, _ = run(capsys)
    assert "\\x1b[2J" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["journal", "--limit", "x"], "expected a whole number"),
        (["journal", "--limit", "-1"], "expected a whole number"),
        (["journal", "check"], "invalid choice"),
        (["journal", "--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_flags_are_usage_errors(argv: list[str], needle: str) -> None:
    with pytest.raises(UsageError, match=needle) as info:
        parser().parse_args(argv)
    assert "\n" not in str(info.value)


# --- through the real entry point, once tui/cli.py calls cli_journal -----------------------


def bva(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=cwd,
        timeout=60,
    )


def test_subprocess_list_verify_and_tamper(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BVA_CONFIG"}
    env["BVA_JOURNAL_DIR"] = str(tmp_path / "j")
    path = tmp_path / "j" / "production.jsonl"

    out = bva("journal", env=env, cwd=tmp_path)
    assert (out.returncode, out.stdout) == (0, f"journal {path}: no journal yet\n")

    fill(path, n=2)
    out = bva("journal", "verify", env=env, cwd=tmp_path)
    assert (out.returncode, out.stdout) == (0, f"journal {path}: 4 records, chain intact\n")
    out = bva("--env", "production", "journal", "--json", env=env, cwd=tmp_path)
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 4

    content = path.read_text().replace('"weight":10', '"weight":99')
    path.write_text(content)
    out = bva("journal", "verify", env=env, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout == f"journal {path}: record at line 3 is broken: hash mismatch\n"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("journal", "--limit", "many"), "expected a whole number"),
        (("journal", "frobnicate"), "invalid choice"),
        (("journal", "--env", "nope"), "nope"),
        (("--config", "/no/such.toml", "journal"), "/no/such.toml: file not found"),
    ],
)
def test_subprocess_bad_input_is_one_line_exit_2(
    tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BVA_CONFIG"}
    env["BVA_JOURNAL_DIR"] = str(tmp_path / "j")
    out = bva(*args, env=env, cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr
    assert "Traceback" not in out.stderr
