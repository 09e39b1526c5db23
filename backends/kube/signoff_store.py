"""The checklist's sign-offs in the cluster: a Lease of their own (``bva-checklist``) beside the
release lock's, the record in an annotation, replaced with compare-and-swap on its
resourceVersion so that two engineers signing at once both land."""

from __future__ import annotations

from typing import Any

from backends.checklist.models import SignoffRecord
from backends.checklist.signoff_json import record_from_json, record_json
from backends.errors import NotFound
from backends.kube.base import Json, KubeBase
from backends.kube.client import KubeClient, read_json

SIGNOFF_LEASE = "bva-checklist"
SIGNOFF_ANNOTATION = "bva.io/signoffs"


def signoff_lease(record: SignoffRecord) -> Json:
    meta: Json = {"name": SIGNOFF_LEASE, "annotations": {SIGNOFF_ANNOTATION: record_json(record)}}
    if record.version:
        meta["resourceVersion"] = record.version
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": {}}


def signoffs_from(lease: Json) -> SignoffRecord | None:
    meta = lease.get("metadata") or {}
    text = (meta.get("annotations") or {}).get(SIGNOFF_ANNOTATION, "")
    return record_from_json(str(text), str(meta.get("resourceVersion") or ""))


class SignoffLease(KubeBase):
    """The adapter's sign-off store (mixed into KubeAdapter)."""

    async def read_signoffs(self) -> SignoffRecord | None:
        def get(kube: KubeClient) -> Json:
            return dict(
                read_json(
                    kube.coordination.read_namespaced_lease(
                        SIGNOFF_LEASE, self.namespace, **self._raw()
                    )
                )
            )

        try:
            return signoffs_from(await self._call(get))
        except NotFound:
            return None

    async def write_signoffs(self, record: SignoffRecord) -> SignoffRecord:
        self._guard("sign a checklist item")
        body = signoff_lease(record)

        def write(kube: KubeClient) -> Any:
            api = kube.coordination
            if record.version:
                return api.replace_namespaced_lease(
                    SIGNOFF_LEASE, self.namespace, body, **self._raw()
                )
            return api.create_namespaced_lease(self.namespace, body, **self._raw())

        stored = signoffs_from(dict(read_json(await self._call(write))))
        if stored is None:
            raise NotFound("the sign-off record did not read back")
        return stored
