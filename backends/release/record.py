"""The release record: what the seed asks deployment documentation to keep, written by the
process that drives a release, as JSON (the source) and Markdown beside it in the journal dir.

It is written when the release starts, at every phase and when it ends, so a driver that dies
still leaves a record saying how far it got. Writes replace the files atomically."""

from __future__ import annotations

import calendar
import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.checklist.models import ChecklistReport, ReleaseGate
from backends.checklist.report import report_json
from backends.journal.scrub import scrub_text
from backends.orchestrator import Orchestrator
from backends.release.models import DatabasePlan, ReleaseView, StepState, version_words
from backends.release.plan import ReleasePlan
from backends.rollback.diff import template_diff
from backends.sanitize import sanitize_text

SCHEMA = "bva.release-record/v1"
RECORD_ID = re.compile(r"^r-[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$")


class RecordError(Exception):
    """A record cannot be found or read; ``str()`` is one line."""


def records_dir(journal_path: Path) -> Path:
    """Release records live beside the environment's journal, in ``releases/``."""
    return journal_path.parent / "releases"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _clean(text: str, limit: int = 300) -> str:
    return sanitize_text(scrub_text(str(text)), limit)


@dataclass(frozen=True, slots=True)
class ServiceBefore:
    """A service's stable Deployment as the release found it."""

    service: str
    deployment: str
    revision: int | None
    image: str
    template: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass
class _Phase:
    number: int
    weight: int
    started_at: float
    ended_at: float | None = None
    start_tallies: dict[str, dict[str, tuple[int, int, int]]] = field(default_factory=dict)
    gates: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


class ReleaseRecorder:
    """Collects one release's record as it runs and writes it at each step."""

    def __init__(
        self,
        directory: Path,
        plan: ReleasePlan,
        *,
        environment: str,
        actor: str,
        deployments: Mapping[str, str],
        containers: Mapping[str, str],
        checklist: ChecklistReport | None = None,
        gate: ReleaseGate | None = None,
        override_reason: str = "",
        database: DatabasePlan | None = None,
        clock: Any = time.time,
    ) -> None:
        self.directory = directory
        self.plan = plan
        self._env = environment
        self._actor = actor
        self._deployments = dict(deployments)
        self._containers = dict(containers)
        self._checklist = checklist
        self._gate = gate
        self._override = override_reason
        self._database = database
        self._clock = clock
        self.started_at = clock()
        self._before: dict[str, ServiceBefore] = {}
        self._after: dict[str, ServiceBefore] = {}
        self._phases: list[_Phase] = []
        self._adopted: dict[str, Any] = {}  # what the record of a taken-over release said

    def adopt(self, doc: Mapping[str, Any]) -> None:
        """Carry on the record a release's first driver wrote (this process took it over):
        its start, checklist, database step and the phases it saw stay as they were."""
        started = doc.get("started_at")
        if isinstance(started, str):
            with contextlib.suppress(ValueError):
                self.started_at = calendar.timegm(time.strptime(started, "%Y-%m-%dT%H:%M:%SZ"))
        for key in ("checklist", "database", "phases"):
            if doc.get(key) is not None:
                self._adopted[key] = doc[key]

    @property
    def release_id(self) -> str:
        return self.plan.release_id

    @property
    def json_path(self) -> Path:
        return self.directory / f"{self.release_id}.json"

    @property
    def md_path(self) -> Path:
        return self.directory / f"{self.release_id}.md"

    async def _read(self, orchestrator: Orchestrator) -> dict[str, ServiceBefore]:
        out: dict[str, ServiceBefore] = {}
        for service in self.plan.services:
            dep = self._deployments[service]
            rev = await orchestrator.current_revision(dep)
            image = ""
            if rev is not None:
                container = self._containers.get(service, "")
                image = rev.images.get(container) or next(iter(rev.images.values()), "")
            out[service] = ServiceBefore(
                service,
                dep,
                rev.revision if rev is not None else None,
                image,
                dict(rev.template) if rev is not None and rev.template else {},
            )
        return out

    async def capture_before(self, orchestrator: Orchestrator) -> None:
        self._before = await self._read(orchestrator)

    async def capture_after(self, orchestrator: Orchestrator) -> None:
        self._after = await self._read(orchestrator)

    # -- phases ---------------------------------------------------------------------------
    def _cumulative(self, view: ReleaseView) -> dict[str, dict[str, tuple[int, int, int]]]:
        return {
            p.service: {g.gate: (g.passed, g.failed, g.inconclusive) for g in p.gates}
            for p in view.progress
        }

    def _close_phase(self, view: ReleaseView, now: float) -> None:
        if not self._phases or self._phases[-1].ended_at is not None:
            return
        last = self._phases[-1]
        last.ended_at = now
        for p in view.progress:
            base = last.start_tallies.get(p.service, {})
            for g in p.gates:
                b = base.get(g.gate, (0, 0, 0))
                value = g.last.value if g.last is not None else None
                last.gates.setdefault(p.service, {})[g.gate] = {
                    "passed": g.passed - b[0],
                    "failed": g.failed - b[1],
                    "inconclusive": g.inconclusive - b[2],
                    "last": round(value, 3) if value is not None else None,
                    "threshold": g.last.threshold if g.last is not None else None,
                    "unit": g.last.unit if g.last is not None else "",
                }

    def observe(self, view: ReleaseView) -> None:
        """Note the phase the release is in (called at every written step)."""
        if self.plan.strategy != "canary" or view.database_busy:
            return
        now = self._clock()
        index = view.phase_index
        known = self._phases[-1].number - 1 if self._phases else -1
        if index != known and (not view.state.over or not self._phases):
            # The phase before ends where this one starts.
            self._close_phase(view, view.phase_started if self._phases else now)
            self._phases.append(
                _Phase(index + 1, view.weight, view.phase_started, None, self._cumulative(view))
            )
        if view.state.over:
            self._close_phase(view, now)

    # -- the document ---------------------------------------------------------------------
    def document(self, view: ReleaseView) -> dict[str, Any]:
        now = self._clock()
        over = view.state.over
        return {
            "schema": SCHEMA,
            "release_id": self.release_id,
            "environment": self._env,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(now) if over else None,
            "duration_s": round(now - self.started_at, 1),
            "who": {"actor": self._actor, "driver": view.owner},
            "version": self.plan.version,
            "strategy": self.plan.strategy,
            "outcome": {
                "state": view.state.value,
                "reason": _clean(view.reason) if view.state.value != "finished" else "",
            },
            "services": self._services(over),
            "checklist": self._adopted.get("checklist") or self._checklist_doc(),
            "database": self._adopted.get("database") or self._database_doc(view),
            "config_changes": self._config_changes(over),
            "phases": [
                *self._earlier_phases(),
                *(self._phase_doc(p) for p in self._phases),
            ],
            "rollback": self._rollback(view),
        }

    def _services(self, over: bool) -> list[dict[str, Any]]:
        out = []
        for service in self.plan.services:
            before = self._before.get(service)
            after = self._after.get(service) if over else None
            out.append(
                {
                    "service": service,
                    "deployment": self._deployments[service],
                    "from_image": _clean(before.image) if before else None,
                    "from_revision": before.revision if before else None,
                    "to_version": self.plan.version,
                    "now_image": _clean(after.image) if after else None,
                    "now_revision": after.revision if after else None,
                }
            )
        return out

    def _checklist_doc(self) -> dict[str, Any] | None:
        if self._checklist is None and self._gate is None:
            return None
        return {
            "gate": (
                {
                    "required": self._gate.required,
                    "go": self._gate.go,
                    "words": _clean(self._gate.words),
                }
                if self._gate is not None
                else None
            ),
            "override_reason": _clean(self._override) if self._override else None,
            "report": report_json(self._checklist) if self._checklist is not None else None,
        }

    def _database_doc(self, view: ReleaseView) -> dict[str, Any] | None:
        db = self._database
        if db is None:
            return None
        return {
            "from": version_words(db.latest),
            "to": version_words(db.target),
            "migrations": [
                {"version": m.version, "description": _clean(m.description, 120)}
                for m in db.pending
            ],
            "no_backup_reason": _clean(db.no_backup_reason) if db.no_backup_reason else None,
            "steps": [
                {"step": s.name, "state": s.state.value, "detail": _clean(s.detail)}
                for s in view.database
            ],
            "backup": self._backup_name(view),
        }

    @staticmethod
    def _backup_name(view: ReleaseView) -> str | None:
        for s in view.database:
            if s.name == "backup" and s.state is StepState.DONE and s.detail:
                return _clean(s.detail.split(":", 1)[0].strip(), 200)
        return None

    def _config_changes(self, over: bool) -> dict[str, Any]:
        if not over:
            return {}
        out: dict[str, Any] = {}
        for service in self.plan.services:
            before, after = self._before.get(service), self._after.get(service)
            if before is None or after is None or not before.template or not after.template:
                continue
            out[service] = [
                {"container": c.container, "field": c.field, "from": c.current, "to": c.target}
                for c in template_diff(before.template, after.template)
            ]
        return out

    def _earlier_phases(self) -> list[Any]:
        """The phases the first driver closed, before this process took the release over."""
        mine = {p.number for p in self._phases}
        earlier = self._adopted.get("phases") or []
        return [p for p in earlier if isinstance(p, dict) and p.get("phase") not in mine]

    @staticmethod
    def _phase_doc(p: _Phase) -> dict[str, Any]:
        return {
            "phase": p.number,
            "weight": p.weight,
            "started_at": _iso(p.started_at),
            "ended_at": _iso(p.ended_at),
            "gates": p.gates,
        }

    def _rollback(self, view: ReleaseView) -> dict[str, Any]:
        changed = [
            s
            for s in self.plan.services
            if (b := self._before.get(s)) is not None
            and (a := self._after.get(s)) is not None
            and a.revision != b.revision
        ]
        commands = []
        for service in changed:
            rev = self._before[service].revision
            commands.append(
                f"bva rollback --env {self._env} {service}"
                + (f" --to-revision {rev}" if rev else "")
            )
        note = ""
        if not view.state.over:
            note = "the release is not over: `bva release abort` ends it and removes the canaries"
        elif not changed:
            note = "no stable Deployment changed: nothing to roll back"
        backup = self._backup_name(view)
        # A failed migration may have applied some versions before the one that failed.
        ran = (StepState.DONE, StepState.FAILED)
        migrated = any(s.name == "migrate" and s.state in ran for s in view.database)
        adopted_db = self._adopted.get("database")
        if adopted_db and not view.database:
            backup = adopted_db.get("backup")
            migrated = any(
                s.get("step") == "migrate" and s.get("state") in ("done", "failed")
                for s in adopted_db.get("steps") or []
            )
        database = None
        if migrated:
            database = (
                f"bva db restore --env {self._env} {backup}"
                if backup
                else "no backup was taken before the migrations (see the database section)"
            )
        return {"commands": commands, "database": database, "note": note}

    # -- writing --------------------------------------------------------------------------
    def write(self, view: ReleaseView) -> Path:
        """Write both files (atomically each); returns the JSON's path."""
        self.observe(view)
        doc = self.document(view)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        _atomic(self.json_path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        from backends.release.record_md import record_markdown

        _atomic(self.md_path, record_markdown(doc))
        return self.json_path


def _atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# -- reading ---------------------------------------------------------------------------------
def list_records(directory: Path) -> list[str]:
    """Release ids with a record, oldest first (ids sort by their start time)."""
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("r-*.json") if RECORD_ID.match(p.stem))


def read_record(directory: Path, release_id: str | None = None) -> dict[str, Any]:
    """The record of ``release_id`` (the newest when None), checked to be one of ours."""
    if release_id is not None and not RECORD_ID.match(release_id):
        raise ValueError(f"{release_id[:60]!r} is not a release id (r-YYYYMMDD-HHMMSS-xxxx)")
    ids = list_records(directory)
    if release_id is None:
        if not ids:
            raise RecordError(f"no release record in {directory}")
        release_id = ids[-1]
    path = directory / f"{release_id}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(f"no release record {release_id} in {directory}") from None
    except (OSError, ValueError) as exc:
        raise RecordError(f"cannot read {path}: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise RecordError(f"{path} is not a bva release record ({SCHEMA})")
    return doc
