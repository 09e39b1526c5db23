"""What the pre-deploy checklist reads from the cluster: HorizontalPodAutoscalers, the
environment of a Deployment's pod template, and the keys (never the values) of Secrets and
ConfigMaps. ``KubeAdapter`` inherits these reads."""

from __future__ import annotations

from typing import Any

from backends.errors import NotFound
from backends.kube.base import Json, KubeBase
from backends.kube.client import KubeClient, read_json
from backends.kube.config_objects import autoscaler_from, data_keys, env_refs
from backends.models import Autoscaler, EnvRef


class ConfigReads(KubeBase):
    async def list_autoscalers(self) -> list[Autoscaler]:
        def list_(kube: KubeClient) -> list[Json]:
            data = read_json(
                kube.autoscaling.list_namespaced_horizontal_pod_autoscaler(
                    self.namespace, **self._raw()
                )
            )
            return list(data.get("items") or [])

        autoscalers = [autoscaler_from(item) for item in await self._call(list_)]
        return sorted(autoscalers, key=lambda a: a.name)

    async def workload_env(self, name: str) -> list[EnvRef]:
        return env_refs(await self._get_deployment(name))

    async def secret_keys(self, name: str) -> frozenset[str] | None:
        return await self._keys(
            name, f"secret {name}", lambda kube, **kw: kube.core.read_namespaced_secret(**kw)
        )

    async def config_map_keys(self, name: str) -> frozenset[str] | None:
        return await self._keys(
            name,
            f"configmap {name}",
            lambda kube, **kw: kube.core.read_namespaced_config_map(**kw),
        )

    async def _keys(self, name: str, what: str, read: Any) -> frozenset[str] | None:
        def get(kube: KubeClient) -> frozenset[str]:
            # The values arrive (the API has no keys-only read) and are dropped in data_keys.
            return data_keys(read(kube, name=name, namespace=self.namespace, **self._raw()), what)

        try:
            return await self._call(get)
        except NotFound:
            return None
