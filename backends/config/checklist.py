"""The platform file's `[checklist]`: the seed's Pre-Deployment Checklist, eighteen items in its
three sections and its words, each either a check bva runs or a sign-off a person gives; plus
bva's own release items (the target images, the maintenance window). A platform adds items,
overrides one by its id, or removes some; an environment says whether a Go is required and
whether sign-offs are.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from backends.config.values import (
    HttpUrl,
    LocatedError,
    PositiveDuration,
    SecretRef,
    check_not_blank,
    quote,
)

_MODEL = ConfigDict(extra="forbid", frozen=True, strict=True)

CheckKind = Literal[
    "services",
    "autoscaling",
    "configuration",
    "tls",
    "dns",
    "monitoring",
    "migrations",
    "replicas",
    "backups",
    "images",
    "window",
]
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# "Mon-Fri 09:00-17:00", "Sat 02:00-04:00", "daily 22:00-02:00" (UTC; may wrap past midnight)
_WINDOW = re.compile(
    r"^(?P<days>daily|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)(?:-(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun))?)"
    r" (?P<start>[0-2][0-9]:[0-5][0-9])-(?P<end>[0-2][0-9]:[0-5][0-9])$"
)


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"not an item id: {quote(value)} (lowercase letters, digits and -)")
    return value


def _check_window(value: str) -> str:
    m = _WINDOW.match(value)
    if m is None or any(int(t[:2]) > 23 for t in (m["start"], m["end"])):
        raise ValueError(
            f'not a maintenance window: {quote(value)} (e.g. "Mon-Fri 09:00-17:00", UTC)'
        )
    return value


ItemId = Annotated[str, AfterValidator(_check_id)]
Window = Annotated[str, AfterValidator(_check_window)]


class ChecklistItem(BaseModel):
    model_config = _MODEL

    id: ItemId
    section: Annotated[str, AfterValidator(check_not_blank)]
    title: Annotated[str, AfterValidator(check_not_blank)]
    # Exactly one of: a check bva runs, or a sign-off (who may sign: "anyone" or role names).
    check: CheckKind | None = None
    signoff: list[str] | None = None
    urls: list[HttpUrl] = Field(default_factory=list)  # tls: endpoints beyond the services'
    hostnames: list[str] = Field(default_factory=list)  # dns: names beyond the services'

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.check is None) == (self.signoff is None):
            raise LocatedError([(("check",), "an item is either a check or a signoff, not both")])
        if self.signoff is not None and not self.signoff:
            raise LocatedError([(("signoff",), 'name who may sign, or ["anyone"]')])
        return self

    @property
    def automated(self) -> bool:
        return self.check is not None


def _item(id: str, section: str, title: str, kind: str) -> dict[str, Any]:
    return {"id": id, "section": section, "title": title} | (
        {"signoff": ["anyone"]} if kind == "signoff" else {"check": kind}
    )


CODE, ENV, INFRA, RELEASE = "Code Quality", "Environment", "Infrastructure", "Release"
# The seed's checklist, its words and order; each box bva can check is a check.
SEED_ITEMS: tuple[dict[str, Any], ...] = (
    _item("tests-passing", CODE, "All tests passing (unit, integration, e2e)", "signoff"),
    _item("code-reviewed", CODE, "Code reviewed and approved", "signoff"),
    _item("no-debug", CODE, "No console.log or debug statements", "signoff"),
    _item("security-audit", CODE, "Security audit completed", "signoff"),
    _item("performance-testing", CODE, "Performance testing completed", "signoff"),
    _item("documentation", CODE, "Documentation updated", "signoff"),
    _item("environment-variables", ENV, "Environment variables configured", "configuration"),
    _item("migrations", ENV, "Database migrations tested", "migrations"),
    _item("ssl", ENV, "SSL certificates valid", "tls"),
    _item("dns", ENV, "DNS records configured", "dns"),
    _item("monitoring", ENV, "Monitoring and alerting setup", "monitoring"),
    _item("backups", ENV, "Backup procedures verified", "backups"),
    _item("resources", INFRA, "Resources provisioned", "services"),
    _item("load-balancers", INFRA, "Load balancers configured", "signoff"),
    _item("autoscaling", INFRA, "Auto-scaling policies set", "autoscaling"),
    _item("database-replicas", INFRA, "Database replicas ready", "replicas"),
    _item("cdn", INFRA, "CDN configured", "signoff"),
    # Where the logs go (ELK, Loki…) is nothing bva can see: a person vouches for it.
    _item("logging", INFRA, "Logging infrastructure ready", "signoff"),
    # bva's own: what the release itself needs, beyond the seed's boxes.
    _item("images", RELEASE, "Target images exist", "images"),
    _item("window", RELEASE, "Inside the maintenance window", "window"),
)


class ChecklistConfig(BaseModel):
    model_config = _MODEL

    items: list[ChecklistItem] = Field(default_factory=list)  # added, or overriding by id
    remove: list[ItemId] = Field(default_factory=list)
    stale_after: PositiveDuration = 900.0  # a result older than this must be re-run for a Go
    check_timeout: PositiveDuration = 10.0  # each check's own bound; they run side by side
    tls_min_days: float = Field(default=14.0, gt=0)
    tls_ca_file: str | None = None  # an internal CA to trust instead of the system's
    registry: HttpUrl | None = None  # where images are looked up (OCI distribution API)
    registry_token: SecretRef | None = None
    # Who holds which role, for sign-offs that name roles: {"release-captain": ["asha"]}.
    roles: dict[str, list[str]] = Field(default_factory=dict)

    def resolved(self) -> tuple[ChecklistItem, ...]:
        """The seed's items with this platform's overrides, removals and additions, in order:
        an override keeps its seed position, an addition goes at the end of its section."""
        own = {i.id: i for i in self.items}
        out = [own.pop(d["id"]) if d["id"] in own else ChecklistItem(**d) for d in SEED_ITEMS]
        out = [i for i in out if i.id not in self.remove]
        for extra in own.values():
            last = max((n for n, i in enumerate(out) if i.section == extra.section), default=None)
            out.insert(len(out) if last is None else last + 1, extra)
        return tuple(out)

    @model_validator(mode="after")
    def _known_removals(self) -> Self:
        known = {d["id"] for d in SEED_ITEMS} | {i.id for i in self.items}
        bad = [r for r in self.remove if r not in known]
        if bad:
            raise LocatedError([(("remove",), f"no checklist item {quote(bad[0])}")])
        seen: set[str] = set()
        for n, item in enumerate(self.items):
            if item.id in seen:
                raise LocatedError([(("items", n, "id"), f"duplicate item {quote(item.id)}")])
            seen.add(item.id)
        return self


class EnvironmentChecklist(BaseModel):
    """Per environment: is a Go required to start a release, are the sign-offs, and when may
    one run. Unset, production requires both and other environments neither."""

    model_config = _MODEL

    require_go: bool | None = None
    require_signoffs: bool | None = None
    windows: list[Window] = Field(default_factory=list)  # UTC; empty: any time
