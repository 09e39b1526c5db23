"""What a service's workload must carry in the cluster, from the platform file: its
autoscaler's bounds and target (``autoscaling``) and the environment variables its containers
must have (``env``, names only: values live in Secrets and ConfigMaps, never here)."""

from __future__ import annotations

import re
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from backends.config.values import LocatedError, quote

_MODEL = ConfigDict(extra="forbid", frozen=True, strict=True)

# A C identifier: what shells, Spring's relaxed binding and kubectl's conventions agree on.
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AutoscalingConfig(BaseModel):
    """``[services.autoscaling]``: a HorizontalPodAutoscaler's minReplicas, maxReplicas and
    CPU target utilization (percent of the pods' CPU request)."""

    model_config = _MODEL

    min: int = Field(ge=1)
    max: int = Field(ge=1)
    cpu: int = Field(ge=1, le=100)

    @model_validator(mode="after")
    def _max_at_least_min(self) -> Self:
        if self.max < self.min:
            raise LocatedError([(("max",), f"must be >= min ({self.min})")])
        return self


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(
            f"bad environment variable name {quote(value)} (letters, digits and _, "
            "not starting with a digit)"
        )
    return value


def check_env_names(names: list[str]) -> list[str]:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise LocatedError([((i,), f"duplicate environment variable {quote(name)}")])
        seen.add(name)
    return names


EnvName = Annotated[str, AfterValidator(_check_env_name)]
EnvNames = Annotated[list[EnvName], AfterValidator(check_env_names)]
