"""A release plan and gate tallies read back from a canary's marks: anyone with access to the
cluster may have written them, so what does not read is refused or left out, never shown raw."""

from __future__ import annotations

import json

import pytest

from backends.config.loader import builtin_platform_path, load_platform
from backends.release.models import GateReading, GateResult, GateTally
from backends.release.plan import (
    A_GATES,
    ReleasePlan,
    make_plan,
    tallies_from_marks,
    tallies_json,
)

CFG = load_platform(builtin_platform_path())


def plan_json(**change: object) -> str:
    data = json.loads(make_plan(CFG, "sandbox", ["auth-service"], "1.2.0").to_json())
    # A fixed id: each xdist worker collects this list and must see the same test ids.
    data["release_id"] = "r-20261206-000000-abcd"
    data.update(change)
    return json.dumps(data)


def test_a_plan_reads_back_as_written() -> None:
    plan = make_plan(CFG, "sandbox", ["auth-service", "user-service"], "1.2.0")
    assert ReleasePlan.from_json(plan.to_json()) == plan


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"release_id": "r"}), "unexpected or missing fields"),
        (plan_json(extra=1), "unexpected or missing fields"),
        (plan_json(version=7), "version"),
        (plan_json(release_id="r\x1b[31m"), "release_id"),
        (plan_json(failure_limit=True), "failure_limit"),
        (plan_json(gate_interval=float("nan")), "gate_interval"),
        (plan_json(phases=[50, 25, 100]), "phases"),
        (plan_json(phases=[5, 25]), "phases"),
        (plan_json(phases=[]), "phases"),
        (plan_json(holds=[1, 2, 3, 4, 5]), "holds"),
        (plan_json(services=[]), "services"),
        (plan_json(services=["auth\nservice"]), "services"),
        (plan_json(strategy="blue-green"), "strategy"),
    ],
    ids=lambda v: v if len(v) < 40 else None,
)
def test_a_bad_plan_is_refused_saying_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        ReleasePlan.from_json(text)


def test_tallies_round_trip_through_the_marks() -> None:
    reading = GateReading("error rate", GateResult.PASSED, 0.4, 1.0, "%")
    tallies = (GateTally("error rate", 3, 1, 0, reading, (0.2, 0.4)),)
    assert tallies_from_marks({A_GATES: tallies_json(tallies)}) == tallies


def test_tallies_that_do_not_read_are_left_out_and_names_are_sanitised() -> None:
    rows = [
        ["error\x1b[2Jrate", ["passed", 0.4, 1.0, "%"], 2, 0, 0, [0.1, "x", None]],
        ["short", ["passed"]],
        "nonsense",
        ["p95", ["bogus", 1, 1, "ms"], -3, 1.5, 0, []],
    ]
    got = tallies_from_marks({A_GATES: json.dumps(rows)})
    assert [g.gate for g in got] == ["error\\x1b[2Jrate", "p95"]  # shown escaped
    assert got[0].history == (0.1,)
    assert got[1].last is None and got[1].passed == 0 and got[1].failed == 0
    assert tallies_from_marks({A_GATES: "{"}) == ()
    assert tallies_from_marks({}) == ()
