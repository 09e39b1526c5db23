"""The checklist's rules without a cluster: the platform file's items (the seed's eighteen,
overridden, removed, added), maintenance windows, and the verdict (a failed check, a stale
one, a missing sign-off each make No-Go; unknown and warnings are listed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from backends.checklist.models import ChecklistReport, ItemResult, ItemState, SignOff
from backends.checklist.runner import release_gate, signoff_result, verdict
from backends.checklist.window import inside, next_opening, window_finding
from backends.config.checklist import ChecklistConfig, ChecklistItem
from backends.config.loader import builtin_platform_path, load_platform
from backends.config.values import ConfigError

NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC, a Friday


def test_the_default_is_the_seeds_checklist_in_its_words() -> None:
    items = load_platform(builtin_platform_path()).checklist.resolved()
    seed = [i for i in items if i.section != "Release"]
    assert len(seed) == 18
    assert [i.section for i in seed[:6]] == ["Code Quality"] * 6
    assert seed[0].title == "All tests passing (unit, integration, e2e)"
    assert seed[8].title == "SSL certificates valid" and seed[8].check == "tls"
    assert seed[13].title == "Load balancers configured" and seed[13].signoff == ["anyone"]
    assert [i.id for i in items[-2:]] == ["images", "window"]


def test_overrides_keep_their_place_removals_go_and_additions_join_their_section() -> None:
    cfg = ChecklistConfig(
        items=[
            ChecklistItem(id="cdn", section="Infrastructure", title="CDN purged", check="dns"),
            ChecklistItem(
                id="pentest", section="Code Quality", title="Pen test", signoff=["security"]
            ),
        ],
        remove=["no-debug"],
    )
    ids = [i.id for i in cfg.resolved()]
    assert "no-debug" not in ids
    assert ids.index("pentest") == ids.index("documentation") + 1
    cdn = next(i for i in cfg.resolved() if i.id == "cdn")
    assert cdn.title == "CDN purged" and cdn.check == "dns"
    assert ids[ids.index("cdn") - 1] == "database-replicas"  # the seed's place


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('remove = ["nope"]', 'no checklist item "nope"'),
        (
            '[[checklist.items]]\nid = "x"\nsection = "S"\ntitle = "T"\ncheck = "dns"\n'
            'signoff = ["anyone"]',
            "either a check or a signoff",
        ),
        ('[[checklist.items]]\nid = "x"\nsection = "S"\ntitle = "T"\ncheck = "magic"', "magic"),
        ('stale_after = "-5m"', "stale_after"),
    ],
)
def test_bad_checklist_config_is_one_line(tmp_path: Path, toml: str, needle: str) -> None:
    base = builtin_platform_path().read_text()
    text = (
        base + "\n[checklist]\n" + toml + "\n"
        if not toml.startswith("[[")
        else base + "\n" + toml + "\n"
    )
    path = tmp_path / "bva.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_platform(path)
    message = str(err.value)
    assert needle in message and "\n" not in message.strip(), message


def test_bad_window_is_refused(tmp_path: Path) -> None:
    base = builtin_platform_path().read_text()
    path = tmp_path / "bva.toml"
    path.write_text(
        base.replace(
            "[environments.production]",
            '[environments.production.checklist]\nwindows = ["Funday 25:00-26:00"]\n\n'
            "[environments.production]",
        )
    )
    with pytest.raises(ConfigError, match="not a maintenance window"):
        load_platform(path)


def _at(day: int, hh: int, mm: int = 0) -> datetime:
    # 2027-01-11 is a Monday.
    return datetime(2027, 1, 11 + day, hh, mm, tzinfo=UTC)


def test_windows_by_day_and_hour_and_past_midnight() -> None:
    assert inside("Mon-Fri 09:00-17:00", _at(0, 9))
    assert not inside("Mon-Fri 09:00-17:00", _at(0, 17))
    assert not inside("Mon-Fri 09:00-17:00", _at(5, 10))  # Saturday
    assert inside("Fri-Mon 22:00-02:00", _at(0, 1))  # Monday 01:00, opened Sunday night
    assert inside("daily 22:00-02:00", _at(3, 23))
    assert not inside("Sat 02:00-04:00", _at(4, 3))
    assert next_opening(["Sat 02:00-04:00"], _at(4, 3)) == _at(5, 2)
    outside = window_finding(["Tue 02:00-04:00"], _at(2, 12))
    assert outside.state is ItemState.FAIL and "next opens Tue 02:00 UTC" in outside.evidence
    assert window_finding([], _at(2, 12)).state is ItemState.PASS


def _check(state: ItemState, ran_at: float | None = NOW - 10) -> ItemResult:
    return ItemResult("x", "S", "A check", True, state, "why", 0.1, ran_at)


def test_the_verdict() -> None:
    item = ChecklistItem(id="tests", section="S", title="Tests pass", signoff=["anyone"])
    unsigned = signoff_result(item, [], required=True)
    signed = signoff_result(item, [SignOff("tests", "asha", NOW - 5, "CI #881 green")], True)
    assert signed.state is ItemState.SIGNED and "asha: CI #881 green" in signed.evidence
    go = verdict([_check(ItemState.PASS), signed], now=NOW, stale_after_s=900)
    assert go.go and go.word == "GO" and not go.reasons
    assert not verdict([_check(ItemState.FAIL), signed], now=NOW, stale_after_s=900).go
    stale = verdict([_check(ItemState.PASS, NOW - 901), signed], now=NOW, stale_after_s=900)
    assert not stale.go and "not checked in the last 15 min" in stale.reasons[0]
    assert not verdict([_check(ItemState.NOT_RUN, None), signed], now=NOW, stale_after_s=900).go
    no_sign = verdict([_check(ItemState.PASS), unsigned], now=NOW, stale_after_s=900)
    assert not no_sign.go and no_sign.reasons == ("Tests pass: not signed off",)
    optional = signoff_result(item, [], required=False)
    assert verdict([_check(ItemState.PASS), optional], now=NOW, stale_after_s=900).go
    shaky = verdict([_check(ItemState.UNKNOWN), signed], now=NOW, stale_after_s=900)
    assert shaky.go and shaky.warnings == ("A check: unknown: why",)


def test_a_go_gone_stale_since_the_run_no_longer_starts_a_release() -> None:
    passed = _check(ItemState.PASS, NOW - 60)
    v = verdict([passed], now=NOW, stale_after_s=900)
    report = ChecklistReport("production", "1.2.0", (passed,), v, NOW - 60, True, 900.0)
    fresh = release_gate(report, "1.2.0", required=True, now=NOW, hint="h")
    assert fresh.go and fresh.words == "GO, checked 1 min ago"
    # Fourteen minutes later the check is older than 15 min: the same report is a No-Go.
    later = release_gate(report, "1.2.0", required=True, now=NOW + 841, hint="h")
    assert not later.go and later.words == "NO-GO: A check: not checked in the last 15 min"
    other = release_gate(report, "1.3.0", required=False, now=NOW, hint="bva check runs it")
    assert not other.go and other.words == "not run for 1.3.0 (bva check runs it)"
    assert release_gate(None, "1.2.0", required=True, now=NOW, hint="h").go is False
