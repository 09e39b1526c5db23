"""Release policy in the platform file: alert thresholds and the phased rollout.

Defaults are the seed guide's numbers, so a platform file may leave these sections out.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from backends.config.values import Duration, LocatedError, PositiveDuration

_MODEL = ConfigDict(extra="forbid", frozen=True, strict=True)

Percent = Annotated[float, Field(ge=0, le=100)]
NonNegative = Annotated[float, Field(ge=0)]
Phase = Annotated[int, Field(ge=1, le=100)]


def _check_phases(phases: list[int]) -> list[int]:
    problems: list[tuple[tuple[str | int, ...], str]] = [
        ((i,), f"phases must increase strictly: {phases[i]} comes after {phases[i - 1]}")
        for i in range(1, len(phases))
        if phases[i] <= phases[i - 1]
    ]
    if problems:
        raise LocatedError(problems)
    if phases[-1] != 100:
        raise ValueError(f"last phase must be 100 (full rollout), got {phases[-1]}")
    return phases


Phases = Annotated[list[Phase], Field(min_length=1), AfterValidator(_check_phases)]


def holds_problem(phases: list[int], holds: list[float]) -> str | None:
    if len(holds) == len(phases) - 1:
        return None
    want = len(phases) - 1
    return (
        f"expected {want} hold{'' if want == 1 else 's'} (one after each phase but the last, "
        f"for {len(phases)} phases), got {len(holds)}"
    )


class Thresholds(BaseModel):
    """Alert thresholds; defaults are the seed guide's "Alerts" list."""

    model_config = _MODEL

    error_rate_pct: Percent = 1.0
    p95_ms: NonNegative = 500
    db_connections_pct: Percent = 80
    replication_lag_s: Duration = 1.0
    failed_logins_per_min: NonNegative = 100
    service_down_s: Duration = 60


class RolloutConfig(BaseModel):
    """How a release proceeds; defaults are the seed guide's phased rollout (5/25/50/100 %)."""

    model_config = _MODEL

    strategy: Literal["canary", "rolling"] = "canary"
    phases: Phases = Field(default_factory=lambda: [5, 25, 50, 100])
    holds: list[Duration] = Field(default_factory=lambda: [3600.0, 7200.0, 14400.0])
    gate_interval: PositiveDuration = 60
    failure_limit: int = Field(default=3, ge=1)
    manual_approval: bool = False
    progress_deadline: PositiveDuration = 600
    # A gate's verdict needs this many requests in its window: at 1 % one error in a sample
    # of twenty is 5 %. Fewer is Inconclusive; the window grows until there are enough.
    min_requests: int = Field(default=50, ge=0)

    @model_validator(mode="after")
    def _holds_match_phases(self) -> Self:
        problem = holds_problem(self.phases, self.holds)
        if problem:
            raise LocatedError([(("holds",), problem)])
        return self


class RolloutOverride(BaseModel):
    """An environment's changes to the platform rollout; unset keys keep the platform value."""

    model_config = _MODEL

    strategy: Literal["canary", "rolling"] | None = None
    phases: Phases | None = None
    holds: list[Duration] | None = None
    gate_interval: PositiveDuration | None = None
    failure_limit: int | None = Field(default=None, ge=1)
    manual_approval: bool | None = None
    progress_deadline: PositiveDuration | None = None
    min_requests: int | None = Field(default=None, ge=0)
