"""A release plan and gate tallies read back from a canary's marks: anyone with access to the
cluster may have written them, so what does not read is refused or left out, never shown raw."""

from __future__ import annotations

import dataclasses
import json

import pytest

from backends.config.loader import builtin_platform_path, load_platform
from backends.db.models import ServerState
from backends.release.models import GateReading, GateResult, GateTally
from backends.release.plan import (
    A_GATES,
    ReleasePlan,
    database_gates,
    make_plan,
    tallies_from_marks,
    tallies_json,
)
from tests.support.fake_database import database_picture

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


def test_a_plan_written_before_the_database_gates_reads_with_their_defaults() -> None:
    data = json.loads(plan_json())
    del data["max_replication_lag_s"], data["max_db_connections_pct"]
    plan = ReleasePlan.from_json(json.dumps(data))
    assert (plan.max_replication_lag_s, plan.max_db_connections_pct) == (1.0, 80.0)
    with pytest.raises(ValueError, match="max_replication_lag_s"):
        ReleasePlan.from_json(plan_json(max_replication_lag_s="soon"))


# --- the database gates ---------------------------------------------------------------------


def _gates(degraded: bool, **swap: object) -> dict[str, GateReading]:
    picture = database_picture(1_800_000_000.0, degraded=degraded)
    if swap:
        picture = dataclasses.replace(picture, **swap)
    plan = make_plan(CFG, "sandbox", ["auth-service"], "1.2.0")
    return {g.gate: g for g in database_gates(plan, picture)}


def test_database_gates_pass_on_a_healthy_database() -> None:
    gates = _gates(False)
    lag, conns = gates["db replication lag"], gates["db connections"]
    assert lag.result is GateResult.PASSED and lag.value == pytest.approx(0.02)
    assert (lag.threshold, lag.unit) == (1.0, "s")
    assert conns.result is GateResult.PASSED and conns.value == pytest.approx(45.0)
    assert conns.detail == "9/20 of the pool"


def test_an_unreadable_replica_makes_the_lag_gate_inconclusive() -> None:
    gates = _gates(True)  # replica-2 is DOWN, replica-1 lags 4.6 s
    assert gates["db replication lag"].result is GateResult.INCONCLUSIVE
    assert gates["db replication lag"].detail == "lag unknown on replica-2"
    assert gates["db connections"].result is GateResult.FAILED
    assert gates["db connections"].value == pytest.approx(95.0)


def test_lag_over_the_threshold_fails_and_a_down_primary_is_inconclusive() -> None:
    degraded = database_picture(1_800_000_000.0, degraded=True)
    healthy = database_picture(1_800_000_000.0)
    lagging = (healthy.servers[0], degraded.servers[1], healthy.servers[2])
    gates = _gates(False, servers=lagging)
    assert gates["db replication lag"].result is GateResult.FAILED
    assert gates["db replication lag"].value == pytest.approx(4.6)
    down = dataclasses.replace(healthy.servers[0], state=ServerState.DOWN)
    gates = _gates(False, servers=(down, *healthy.servers[1:]))
    assert gates["db connections"].result is GateResult.INCONCLUSIVE


def test_a_replica_whose_wal_receiver_stopped_has_no_lag_not_zero() -> None:
    """Cut off from the primary, a replica has replayed all it received: 0 s behind by its own
    numbers while the primary moves on. The gate must not pass on that."""
    healthy = database_picture(1_800_000_000.0)
    r1 = healthy.servers[1]
    assert r1.replica is not None
    cut = dataclasses.replace(r1, replica=dataclasses.replace(r1.replica, receiver="", lag_s=0.0))
    assert cut.lag_s is None
    gates = _gates(False, servers=(healthy.servers[0], cut, healthy.servers[2]))
    assert gates["db replication lag"].result is GateResult.INCONCLUSIVE
    assert gates["db replication lag"].detail == f"lag unknown on {r1.name}"


def test_too_few_requests_is_inconclusive_not_a_verdict() -> None:
    from backends.metrics.source import MetricSample
    from backends.release.plan import evaluate_gates

    plan = dataclasses.replace(
        make_plan(CFG, "sandbox", ["auth-service"], "1.2.0"), min_requests=50
    )

    def gates(requests: float, errors: float) -> dict[str, GateReading]:
        rate = 100.0 * errors / requests
        sample = MetricSample("auth-service", "canary", requests, errors, rate, 80.0, 2.0, 0.0,
                              "scrape")  # fmt: skip
        readings = evaluate_gates(plan, sample, canary_ready=1, canary_desired=1, new_restarts=0)
        return {r.gate: r for r in readings}

    # One error in twenty is 5 %: above 1 %, but no verdict on so few.
    thin = gates(20, 1)
    assert thin["error rate"].result is GateResult.INCONCLUSIVE
    assert thin["error rate"].detail == "1 of 20 requests failed (a verdict needs 50)"
    assert thin["p95 latency"].result is GateResult.INCONCLUSIVE
    assert gates(200, 10)["error rate"].result is GateResult.FAILED
    assert gates(200, 0)["error rate"].result is GateResult.PASSED
    assert gates(200, 0)["p95 latency"].result is GateResult.PASSED
    # An older plan, with no minimum, judges what it has.
    old = dataclasses.replace(plan, min_requests=0)
    sample = MetricSample("auth-service", "canary", 20, 1, 5.0, 80.0, 2.0, 0.0, "scrape")
    readings = evaluate_gates(old, sample, canary_ready=1, canary_desired=1, new_restarts=0)
    assert readings[0].result is GateResult.FAILED


def test_the_minimum_comes_from_the_platform_file_and_the_environment() -> None:
    assert make_plan(CFG, "production", ["auth-service"], "1.2.0").min_requests == 50
    assert make_plan(CFG, "sandbox", ["auth-service"], "1.2.0").min_requests == 10
