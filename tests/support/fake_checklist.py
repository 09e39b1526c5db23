"""A stand-in checklist engine for the Checklist screen's snapshots and key tests: the real
items and verdict, canned findings (deterministic: fixed clock), behind ChecklistEngine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from backends.checklist.models import ChecklistReport, ItemResult, ItemState, SignOff
from backends.checklist.runner import signoff_result, verdict
from backends.config.loader import builtin_platform_path, load_platform
from tests.support.fake_platform import NOW

CFG = load_platform(builtin_platform_path())
GOOD = {
    "environment-variables": (
        ItemState.PASS,
        "27 variables set, every Secret and ConfigMap key they name there",
    ),
    "migrations": (ItemState.PASS, "at V6; pending (the release migrates them): V7"),
    "ssl": (
        ItemState.PASS,
        "3 certificates fine: https://api.bharathva.example: valid 71 days (Let's Encrypt R11)",
    ),
    "dns": (ItemState.PASS, "3 hostnames fine: api.bharathva.example: 203.0.113.10"),
    "monitoring": (
        ItemState.PASS,
        "worst error rate 0.2% (auth-service), worst p95 180 ms (tweet-service)",
    ),
    "backups": (
        ItemState.WARN,
        "newest verified backup 22 min old (RPO 15 min): the release takes a fresh one",
    ),
    "resources": (ItemState.PASS, "5 services UP, 12 pods ready, every rollout complete"),
    "autoscaling": (ItemState.PASS, "5 HPAs as the platform file sets them, replicas in range"),
    "database-replicas": (
        ItemState.PASS,
        "streaming, lag under 1s: replica-1 0.02s, replica-2 0.03s",
    ),
    "images": (ItemState.PASS, "5 images fine: bharathva/auth-service:1.2.0 is in the registry"),
    "window": (ItemState.PASS, "inside Mon-Fri 09:00-17:00 UTC"),
}
BAD = {
    **GOOD,
    "environment-variables": (
        ItemState.FAIL,
        "auth-service: JWT_SECRET: secret bharathva-jwt has no key jwt-secret",
    ),
    "autoscaling": (ItemState.FAIL, "tweet-service: no HorizontalPodAutoscaler"),
    "dns": (ItemState.UNKNOWN, "api.bharathva.example: resolver timed out after 2.4s"),
}


class FakeChecklist:
    def __init__(
        self, *, failing: bool = False, signoffs: Sequence[SignOff] = (), hang: bool = False
    ) -> None:
        self.findings = BAD if failing else GOOD
        self.signoffs = list(signoffs)
        self.hang = hang
        self.runs: list[set[str] | None] = []
        self.versions: list[str | None] = []
        self.signed: list[tuple[str, str, str, str]] = []
        self.can_sign = True

    @property
    def environment(self) -> str:
        return "sandbox"

    async def run(
        self,
        version: str | None,
        *,
        only: set[str] | None = None,
        previous: Sequence[ItemResult] = (),
        on_result: Callable[[ItemResult], None] | None = None,
    ) -> ChecklistReport:
        self.runs.append(only)
        self.versions.append(version)
        kept = {r.item: r for r in previous}
        results: list[ItemResult] = []
        for n, item in enumerate(CFG.checklist.resolved()):
            if not item.automated:
                results.append(signoff_result(item, self.signoffs, required=True))
                continue
            if only is not None and item.id not in only:
                results.append(
                    kept.get(item.id)
                    or ItemResult(item.id, item.section, item.title, True, ItemState.NOT_RUN)
                )
                continue
            state, evidence = self.findings[item.id]
            r = ItemResult(
                item.id, item.section, item.title, True, state, evidence, 0.1 + n / 10, NOW - 30
            )
            if on_result is not None:
                on_result(r)
            if self.hang and n > 8:
                await asyncio.Event().wait()  # the rest never answers: the screen shows it running
            results.append(r)
        return ChecklistReport(
            "sandbox",
            version,
            tuple(results),
            verdict(results, now=NOW, stale_after_s=900),
            NOW,
            True,
            900.0,
            tuple(dict.fromkeys(r.section for r in results)),
        )

    async def sign(self, item: str, who: str, comment: str, version: str) -> None:
        self.signed.append((item, who, comment, version))
        self.signoffs.append(SignOff(item, who, NOW - 5, comment))
