"""bva's release objects as Kubernetes keeps them: the canary Deployment (the stable one's
template with the new image, its release state in annotations) and the release lock (a
coordination.k8s.io Lease). Pure functions between API JSON and bva's models."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from backends.kube.convert import container_images
from backends.models import Canary, LockRecord

Json = dict[str, Any]

LEASE_NAME = "bva-release"
RELEASE_ANNOTATION = "bva.io/release-id"
# What a copy of the stable Deployment must not inherit: its revision, kubectl's record of
# the last apply, its change-cause.
DROP_ANNOTATIONS = (
    "deployment.kubernetes.io/revision",
    "kubectl.kubernetes.io/last-applied-configuration",
    "kubernetes.io/change-cause",
)


def canary_manifest(
    stable: Json, name: str, service: str, container: str, image: str, replicas: int,
    marks: dict[str, str],
) -> Json:  # fmt: skip
    """``name`` beside ``stable``: the same pod template with ``image`` in ``container``,
    labelled track=canary so the Service (which selects on app only) sends it traffic."""
    meta = stable["metadata"]
    spec = copy.deepcopy(stable["spec"])
    labels = {"app": service, "track": "canary"}
    spec["selector"] = {"matchLabels": dict(labels)}
    template_meta = spec["template"].setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), **labels}
    template_meta["labels"].pop("pod-template-hash", None)
    for c in spec["template"]["spec"].get("containers") or []:
        if c.get("name") == container:
            c["image"] = image
    spec["replicas"] = replicas
    spec.pop("paused", None)
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in DROP_ANNOTATIONS
    }
    annotations.update(marks)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "labels": {**(meta.get("labels") or {}), **labels},
            "annotations": annotations,
        },
        "spec": spec,
    }


def canary_from(deployment: Json, service: str) -> Canary:
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    return Canary(
        service=service,
        name=str(meta.get("name", "")),
        desired=int(spec.get("replicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        images=container_images((spec.get("template") or {}).get("spec")),
        marks={str(k): str(v) for k, v in (meta.get("annotations") or {}).items()},
    )


def _micro(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None  # a Lease someone else wrote badly: treated as never renewed


def lease_body(record: LockRecord) -> Json:
    meta: Json = {"name": LEASE_NAME, "annotations": {RELEASE_ANNOTATION: record.release_id}}
    if record.version:
        meta["resourceVersion"] = record.version
    spec: Json = {"holderIdentity": record.holder, "leaseDurationSeconds": record.duration}
    if record.acquired is not None:
        spec["acquireTime"] = _micro(record.acquired)
    if record.renewed is not None:
        spec["renewTime"] = _micro(record.renewed)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": spec,
    }


def lock_from(lease: Json, default_duration: int = 15) -> LockRecord:
    spec = lease.get("spec") or {}
    meta = lease.get("metadata") or {}
    return LockRecord(
        holder=str(spec.get("holderIdentity") or "unknown"),
        release_id=str((meta.get("annotations") or {}).get(RELEASE_ANNOTATION, "")),
        acquired=_parse(spec.get("acquireTime")),
        renewed=_parse(spec.get("renewTime")),
        duration=int(spec.get("leaseDurationSeconds") or default_duration),
        version=str(meta.get("resourceVersion") or ""),
    )
