"""kubectl's rollout rules as pure functions over API JSON (dicts as the server returns them).

Ported from kubectl/pkg/polymorphichelpers rollout_status.go (DeploymentStatusViewer) and
rollback.go (DeploymentRollbacker) so bva and kubectl never disagree about a Deployment.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from backends.errors import RolloutRefused
from backends.models import RolloutState, RolloutStatus

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"
POD_TEMPLATE_HASH = "pod-template-hash"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"

# Kept from the Deployment, never copied from the ReplicaSet, on undo (rollback.go).
ANNOTATIONS_TO_SKIP = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION_ANNOTATION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)

JsonObj = Mapping[str, Any]


def _get(obj: JsonObj, *path: str) -> Any:
    cur: Any = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _name(obj: JsonObj) -> str:
    return str(_get(obj, "metadata", "name") or "")


def rollout_status(deployment: JsonObj, noun: str = "deployment") -> RolloutStatus:
    """``kubectl rollout status`` for one Deployment, plus a PAUSED state kubectl lacks."""
    name = _name(deployment)
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    generation = _int(_get(deployment, "metadata", "generation"))
    observed_generation = _int(status.get("observedGeneration"))
    spec_replicas = spec.get("replicas")
    updated = _int(status.get("updatedReplicas"))
    replicas = _int(status.get("replicas"))
    available = _int(status.get("availableReplicas"))
    observed = generation <= observed_generation

    def result(state: RolloutState, done: bool, message: str) -> RolloutStatus:
        if state is not RolloutState.FAILED and spec.get("paused"):
            state = RolloutState.PAUSED
        return RolloutStatus(
            deployment=name,
            state=state,
            done=done,
            message=message,
            updated=updated,
            desired=_int(spec_replicas),
            available=available,
            replicas=replicas,
            observed=observed,
        )

    waiting = f'Waiting for {noun} "{name}" rollout to finish: '
    if not observed:
        return result(
            RolloutState.PROGRESSING, False, "Waiting for deployment spec update to be observed..."
        )
    progressing = next(
        (c for c in status.get("conditions") or () if c.get("type") == "Progressing"), None
    )
    if progressing is not None and progressing.get("reason") == TIMED_OUT_REASON:
        return result(RolloutState.FAILED, False, f'{noun} "{name}" exceeded its progress deadline')
    # Only an explicit spec.replicas counts, as in kubectl (a nil pointer skips the check).
    if isinstance(spec_replicas, int) and updated < spec_replicas:
        msg = f"{updated} out of {spec_replicas} new replicas have been updated..."
        return result(RolloutState.PROGRESSING, False, waiting + msg)
    if replicas > updated:
        msg = f"{replicas - updated} old replicas are pending termination..."
        return result(RolloutState.PROGRESSING, False, waiting + msg)
    if available < updated:
        msg = f"{available} of {updated} updated replicas are available..."
        return result(RolloutState.PROGRESSING, False, waiting + msg)
    return result(RolloutState.COMPLETE, True, f'{noun} "{name}" successfully rolled out')


def revision_of(obj: JsonObj) -> int | None:
    """deploymentutil.Revision: a missing annotation is revision 0, a garbled one is None."""
    raw = (_get(obj, "metadata", "annotations") or {}).get(REVISION_ANNOTATION)
    if raw is None:
        return 0
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def owned_replicasets(deployment: JsonObj, replicasets: Iterable[JsonObj]) -> list[JsonObj]:
    """ReplicaSets whose controller ownerReference is this Deployment (metav1.IsControlledBy)."""
    uid = _get(deployment, "metadata", "uid")
    owned: list[JsonObj] = []
    for rs in replicasets:
        refs = _get(rs, "metadata", "ownerReferences") or ()
        if any(ref.get("controller") and ref.get("uid") == uid for ref in refs):
            owned.append(rs)
    return owned


def semantic(value: Any) -> Any:
    """Normalise JSON the way apiequality.Semantic treats Go values: nil equals empty."""
    if isinstance(value, Mapping):
        out = {k: semantic(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [semantic(v) for v in value]
    return value


def _without_hash(template: JsonObj) -> dict[str, Any]:
    copied: dict[str, Any] = copy.deepcopy(dict(template))
    labels = (copied.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    return copied


def equal_ignore_hash(template1: JsonObj, template2: JsonObj) -> bool:
    return bool(semantic(_without_hash(template1)) == semantic(_without_hash(template2)))


def undo_target(
    deployment: JsonObj, replicasets: Iterable[JsonObj], to_revision: int | None
) -> tuple[JsonObj | None, str]:
    """kubectl ``rollout undo``: pick the ReplicaSet to restore.

    Returns (ReplicaSet, "deployment.apps/x rolled back") when a patch should be sent, or
    (None, "deployment.apps/x skipped rollback (...)") when nothing needs to change. Raises
    RolloutRefused with kubectl's message when kubectl would fail. Checks run in kubectl's
    order: find the revision, then refuse paused, then skip an identical template.
    """
    name = _name(deployment)
    wanted = to_revision or 0
    if wanted < 0:
        raise RolloutRefused(f"unable to find specified revision {wanted} in history")
    target = _find_revision(deployment, owned_replicasets(deployment, replicasets), wanted)
    if _get(deployment, "spec", "paused"):
        raise RolloutRefused(
            "you cannot rollback a paused deployment; resume it first with "
            f"'kubectl rollout resume deployment/{name}' and try again"
        )
    target_template = _get(target, "spec", "template") or {}
    if equal_ignore_hash(target_template, _get(deployment, "spec", "template") or {}):
        # kubectl prints the flag's value here (0 for "previous"); the real number is clearer.
        shown = revision_of(target) or wanted
        return None, (
            f"deployment.apps/{name} skipped rollback "
            f"(current template already matches revision {shown})"
        )
    return target, f"deployment.apps/{name} rolled back"


def _find_revision(deployment: JsonObj, replicasets: list[JsonObj], to_revision: int) -> JsonObj:
    """rollback.go deploymentRevision, loop and tie-breaking included."""
    latest_revision, previous_revision = -1, -1
    latest: JsonObj | None = None
    previous: JsonObj | None = None
    for rs in replicasets:
        v = revision_of(rs)
        if v is None:
            continue
        if to_revision == 0:
            if latest_revision < v:
                previous_revision, previous = latest_revision, latest
                latest_revision, latest = v, rs
            elif previous_revision < v:
                previous_revision, previous = v, rs
        elif to_revision == v:
            return rs
    if to_revision > 0:
        raise RolloutRefused(f"unable to find specified revision {to_revision} in history")
    if previous is None:
        raise RolloutRefused(f'no rollout history found for deployment "{_name(deployment)}"')
    return previous


def undo_patch(deployment: JsonObj, target_rs: JsonObj) -> list[dict[str, Any]]:
    """The JSON patch kubectl sends to restore ``target_rs``'s template and annotations."""
    template = _without_hash(_get(target_rs, "spec", "template") or {})
    deployment_annotations = _get(deployment, "metadata", "annotations") or {}
    annotations = {k: v for k, v in deployment_annotations.items() if k in ANNOTATIONS_TO_SKIP}
    for key, value in (_get(target_rs, "metadata", "annotations") or {}).items():
        if key not in ANNOTATIONS_TO_SKIP:
            annotations[key] = value
    return [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]
