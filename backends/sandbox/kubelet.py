"""Scheduler and kubelet stand-in: pods go Pending -> Running -> Ready, crash-looping images
restart with growing back-off, deleted pods terminate gracefully."""

from __future__ import annotations

import copy
import functools
import random
import secrets
from collections.abc import Callable
from typing import Any

from backends.sandbox.events import EventRecorder
from backends.sandbox.logs import LogBook
from backends.sandbox.store import Store, rfc3339
from backends.sandbox.view import LogFormat, behaviour_for_image

Obj = dict[str, Any]
NODES = ("sandbox-node-1", "sandbox-node-2", "sandbox-node-3")
CRASH_RUN_S = 0.6
BACKOFF_START_S = 10.0
BACKOFF_MAX_S = 300.0
TERMINATION_S = 0.3


class Kubelet:
    def __init__(
        self,
        store: Store,
        recorder: EventRecorder,
        logs: LogBook,
        clock: Callable[[], float],
        schedule: Callable[[float, Callable[[], None]], None],
        *,
        speed: float,
        ready_delay: float,
        rng: random.Random,
        log_format_for: Callable[[str], LogFormat],
    ) -> None:
        self._store = store
        self._events = recorder
        self._logs = logs
        self._clock = clock
        self._schedule = schedule
        self._speed = speed
        self._ready_delay = ready_delay
        self._rng = rng
        self._log_format_for = log_format_for
        self._next_node = 0
        self._next_ip = 2

    def _after(self, seconds: float, fn: Callable[[], None]) -> None:
        self._schedule(self._clock() + seconds / self._speed, fn)

    def pod_created(self, pod: Obj) -> None:
        ns, name, uid = _ident(pod)
        self._after(0.05, lambda: self._bind(ns, name, uid))

    def _current(self, ns: str, name: str, uid: str) -> Obj | None:
        pod = self._store.get("pods", ns, name)
        if pod is None or pod["metadata"]["uid"] != uid:
            return None
        return copy.deepcopy(pod)

    def _save(self, pod: Obj) -> None:
        self._store.update("pods", pod, "pods", check_rv=False)

    def _bind(self, ns: str, name: str, uid: str) -> None:
        pod = self._current(ns, name, uid)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        node = NODES[self._next_node % len(NODES)]
        self._next_node += 1
        now = rfc3339(self._clock())
        pod["spec"]["nodeName"] = node
        ip = f"10.244.{self._next_node % len(NODES)}.{self._next_ip % 250 + 2}"
        self._next_ip += 1
        pod["status"].update(
            {
                "phase": "Pending",
                "hostIP": "127.0.0.1",
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "startTime": now,
                "conditions": [
                    _cond("PodReadyToStartContainers", "False", now),
                    _cond("Initialized", "True", now),
                    _cond("Ready", "False", now, "ContainersNotReady"),
                    _cond("ContainersReady", "False", now, "ContainersNotReady"),
                    _cond("PodScheduled", "True", now),
                ],
                "containerStatuses": [
                    {
                        "name": c["name"],
                        "image": c["image"],
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "started": False,
                        "state": {"waiting": {"reason": "ContainerCreating"}},
                        "lastState": {},
                    }
                    for c in pod["spec"].get("containers") or []
                ],
            }
        )
        self._save(pod)
        self._events.record(
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {ns}/{name} to {node}",
            "default-scheduler",
        )
        self._after(0.2, lambda: self._start_all(ns, name, uid))

    def _start_all(self, ns: str, name: str, uid: str) -> None:
        pod = self._current(ns, name, uid)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        now = rfc3339(self._clock())
        _set_cond(pod, "PodReadyToStartContainers", "True", now)
        pod["status"]["phase"] = "Running"
        for cs in pod["status"]["containerStatuses"]:
            self._run_container(pod, cs, now, first=True)
        self._save(pod)
        self._after_start(pod)

    def _run_container(self, pod: Obj, cs: Obj, now: str, *, first: bool) -> None:
        node = pod["spec"].get("nodeName", "")
        image = cs["image"]
        digest = secrets.token_hex(32)
        cs["imageID"] = f"docker.io/{image.split(':')[0]}@sha256:{digest}"
        cs["containerID"] = f"containerd://{secrets.token_hex(32)}"
        cs["started"] = True
        cs["state"] = {"running": {"startedAt": now}}
        if first:
            self._events.record(
                pod,
                "Normal",
                "Pulled",
                f'Container image "{image}" already present on machine',
                "kubelet",
                node,
            )
        self._events.record(
            pod, "Normal", "Created", f"Created container {cs['name']}", "kubelet", node
        )
        self._events.record(
            pod, "Normal", "Started", f"Started container {cs['name']}", "kubelet", node
        )
        service = pod["metadata"].get("labels", {}).get("app", pod["metadata"]["name"])
        self._logs.container_started(
            pod["metadata"]["name"],
            cs["name"],
            service=service,
            fmt=self._log_format_for(service),
            behaviour=behaviour_for_image(image),
            image=image,
            port=_container_port(pod, cs["name"]),
        )

    def _after_start(self, pod: Obj) -> None:
        ns, name, uid = _ident(pod)
        for cs in pod["status"]["containerStatuses"]:
            cname = cs["name"]
            if behaviour_for_image(cs["image"]) == "crash":
                self._after(CRASH_RUN_S, functools.partial(self._crash, ns, name, uid, cname))
            else:
                delay = max(self._ready_delay - 0.25, 0.05)
                self._after(delay, functools.partial(self._ready, ns, name, uid, cname))

    def _ready(self, ns: str, name: str, uid: str, cname: str) -> None:
        pod = self._current(ns, name, uid)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        for cs in pod["status"]["containerStatuses"]:
            if cs["name"] == cname and "running" in cs["state"]:
                cs["ready"] = True
        self._refresh_ready(pod)
        self._save(pod)

    def _refresh_ready(self, pod: Obj) -> None:
        now = rfc3339(self._clock())
        statuses = pod["status"].get("containerStatuses") or []
        all_ready = bool(statuses) and all(cs["ready"] for cs in statuses)
        reason = "" if all_ready else "ContainersNotReady"
        _set_cond(pod, "Ready", "True" if all_ready else "False", now, reason)
        _set_cond(pod, "ContainersReady", "True" if all_ready else "False", now, reason)

    def _crash(self, ns: str, name: str, uid: str, cname: str) -> None:
        pod = self._current(ns, name, uid)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        now = rfc3339(self._clock())
        node = pod["spec"].get("nodeName", "")
        cs = next(c for c in pod["status"]["containerStatuses"] if c["name"] == cname)
        started = cs["state"].get("running", {}).get("startedAt", now)
        cs["lastState"] = {
            "terminated": {
                "exitCode": 1,
                "reason": "Error",
                "startedAt": started,
                "finishedAt": now,
                "containerID": cs.get("containerID", ""),
            }
        }
        cs["restartCount"] += 1
        cs["ready"] = False
        cs["started"] = False
        backoff = min(BACKOFF_START_S * 2 ** (cs["restartCount"] - 1), BACKOFF_MAX_S)
        cs["state"] = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {int(backoff)}s restarting failed container={cname} "
                f"pod={name}_{ns}({uid})",
            }
        }
        self._refresh_ready(pod)
        self._save(pod)
        self._logs.container_terminated(name, cname, exit_code=1, reason="Error")
        self._events.record(
            pod,
            "Warning",
            "BackOff",
            f"Back-off restarting failed container {cname} in pod {name}_{ns}({uid})",
            "kubelet",
            node,
        )
        self._after(backoff, lambda: self._restart(ns, name, uid, cname))

    def _restart(self, ns: str, name: str, uid: str, cname: str) -> None:
        pod = self._current(ns, name, uid)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        now = rfc3339(self._clock())
        cs = next(c for c in pod["status"]["containerStatuses"] if c["name"] == cname)
        self._run_container(pod, cs, now, first=False)
        self._save(pod)
        self._after(CRASH_RUN_S, lambda: self._crash(ns, name, uid, cname))

    def delete(self, pod: Obj, grace: bool = True) -> None:
        """Graceful deletion: the pod shows Terminating, then disappears."""
        ns, name, uid = _ident(pod)
        current = self._current(ns, name, uid)
        if current is None:
            return
        if current["metadata"].get("deletionTimestamp") and grace:
            return
        if not grace:
            self._finish_delete(ns, name, uid)
            return
        now = rfc3339(self._clock())
        current["metadata"]["deletionTimestamp"] = now
        current["metadata"]["deletionGracePeriodSeconds"] = 30
        for cs in current["status"].get("containerStatuses") or []:
            cs["ready"] = False
            self._events.record(
                current,
                "Normal",
                "Killing",
                f"Stopping container {cs['name']}",
                "kubelet",
                current["spec"].get("nodeName", ""),
            )
        if current["status"].get("conditions"):
            self._refresh_ready(current)
        self._save(current)
        self._after(TERMINATION_S, lambda: self._finish_delete(ns, name, uid))

    def _finish_delete(self, ns: str, name: str, uid: str) -> None:
        if self._current(ns, name, uid) is None:
            return
        pod = self._store.get("pods", ns, name)
        for cs in (pod or {}).get("status", {}).get("containerStatuses") or []:
            if "running" in (cs.get("state") or {}):
                self._logs.container_terminated(name, cs["name"], exit_code=143, reason="Completed")
        self._store.delete("pods", ns, name, "pods")
        self._logs.pod_deleted(name)


def _container_port(pod: Obj, container: str) -> int:
    for c in pod["spec"].get("containers") or []:
        if c.get("name") == container:
            for p in c.get("ports") or []:
                return int(p.get("containerPort", 8080))
    return 8080


def _ident(pod: Obj) -> tuple[str, str, str]:
    m = pod["metadata"]
    return m["namespace"], m["name"], m["uid"]


def _cond(ctype: str, status: str, now: str, reason: str = "") -> Obj:
    c: Obj = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": now}
    if reason:
        c["reason"] = reason
    return c


def _set_cond(pod: Obj, ctype: str, status: str, now: str, reason: str = "") -> None:
    conds = pod["status"].setdefault("conditions", [])
    for c in conds:
        if c["type"] == ctype:
            if c["status"] != status:
                c["status"] = status
                c["lastTransitionTime"] = now
            if reason:
                c["reason"] = reason
            else:
                c.pop("reason", None)
            return
    conds.append(_cond(ctype, status, now, reason))
