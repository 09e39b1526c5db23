"""kubectl's rollout status / undo rules, table-driven, on API-shaped dicts (no server)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from backends.errors import RolloutRefused
from backends.kube.rollout_rules import (
    equal_ignore_hash,
    owned_replicasets,
    rollout_status,
    undo_patch,
    undo_target,
)
from backends.models import RolloutState

UID = "uid-auth"


def deployment(
    *,
    generation: int = 2,
    observed: int = 2,
    replicas: int | None = 3,
    status_replicas: int = 3,
    updated: int = 3,
    available: int = 3,
    paused: bool = False,
    progressing_reason: str | None = "NewReplicaSetAvailable",
    image: str = "bharathva/auth-service:1.1.0",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "auth-service"}},
        "template": template(image),
    }
    if replicas is not None:
        spec["replicas"] = replicas
    if paused:
        spec["paused"] = True
    conditions = []
    if progressing_reason:
        conditions.append(
            {
                "type": "Progressing",
                "status": "False" if progressing_reason == "ProgressDeadlineExceeded" else "True",
                "reason": progressing_reason,
            }
        )
    return {
        "metadata": {
            "name": "auth-service",
            "uid": UID,
            "generation": generation,
            "annotations": annotations
            if annotations is not None
            else {
                "deployment.kubernetes.io/revision": "3",
                "kubernetes.io/change-cause": "current cause",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
        },
        "spec": spec,
        "status": {
            "observedGeneration": observed,
            "replicas": status_replicas,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "conditions": conditions,
        },
    }


def template(image: str, pod_hash: str | None = None) -> dict[str, Any]:
    labels = {"app": "auth-service", "track": "stable"}
    if pod_hash:
        labels["pod-template-hash"] = pod_hash
    return {
        "metadata": {"labels": labels, "creationTimestamp": None},
        "spec": {"containers": [{"name": "auth-service", "image": image}]},
    }


def replicaset(
    revision: int | str | None,
    image: str,
    *,
    owner_uid: str = UID,
    controller: bool = True,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    ann = dict(annotations or {})
    if revision is not None:
        ann["deployment.kubernetes.io/revision"] = str(revision)
    return {
        "metadata": {
            "name": f"auth-service-{revision}",
            "annotations": ann,
            "ownerReferences": [
                {"kind": "Deployment", "name": "auth-service", "uid": owner_uid}
                | ({"controller": True} if controller else {})
            ],
        },
        "spec": {"replicas": 0, "template": template(image, pod_hash=f"h{revision}")},
    }


WAIT = 'Waiting for deployment "auth-service" rollout to finish: '


@pytest.mark.parametrize(
    ("kwargs", "state", "done", "message"),
    [
        pytest.param(
            {"generation": 3, "observed": 2},
            RolloutState.PROGRESSING,
            False,
            "Waiting for deployment spec update to be observed...",
            id="spec-not-observed",
        ),
        pytest.param(
            {"generation": 3, "observed": 2, "progressing_reason": "ProgressDeadlineExceeded"},
            RolloutState.PROGRESSING,
            False,
            "Waiting for deployment spec update to be observed...",
            id="observation-checked-before-deadline",
        ),
        pytest.param(
            {"progressing_reason": "ProgressDeadlineExceeded", "updated": 1},
            RolloutState.FAILED,
            False,
            'deployment "auth-service" exceeded its progress deadline',
            id="deadline-exceeded",
        ),
        pytest.param(
            {"updated": 1, "status_replicas": 4, "available": 3},
            RolloutState.PROGRESSING,
            False,
            WAIT + "1 out of 3 new replicas have been updated...",
            id="updating",
        ),
        pytest.param(
            {"updated": 3, "status_replicas": 4},
            RolloutState.PROGRESSING,
            False,
            WAIT + "1 old replicas are pending termination...",
            id="old-pending",
        ),
        pytest.param(
            {"updated": 3, "available": 2},
            RolloutState.PROGRESSING,
            False,
            WAIT + "2 of 3 updated replicas are available...",
            id="waiting-available",
        ),
        pytest.param(
            {},
            RolloutState.COMPLETE,
            True,
            'deployment "auth-service" successfully rolled out',
            id="complete",
        ),
        pytest.param(
            {"replicas": None, "updated": 0, "status_replicas": 0, "available": 0},
            RolloutState.COMPLETE,
            True,
            'deployment "auth-service" successfully rolled out',
            id="nil-spec-replicas-skips-update-check",
        ),
        pytest.param(
            {"observed": 5, "generation": 2},
            RolloutState.COMPLETE,
            True,
            'deployment "auth-service" successfully rolled out',
            id="observed-ahead",
        ),
        pytest.param(
            {"paused": True, "updated": 0, "progressing_reason": "DeploymentPaused"},
            RolloutState.PAUSED,
            False,
            WAIT + "0 out of 3 new replicas have been updated...",
            id="paused-keeps-kubectl-message",
        ),
        pytest.param(
            {"paused": True},
            RolloutState.PAUSED,
            True,
            'deployment "auth-service" successfully rolled out',
            id="paused-but-complete",
        ),
        pytest.param(
            {"paused": True, "progressing_reason": "ProgressDeadlineExceeded"},
            RolloutState.FAILED,
            False,
            'deployment "auth-service" exceeded its progress deadline',
            id="failure-wins-over-paused",
        ),
    ],
)
def test_rollout_status(
    kwargs: dict[str, Any], state: RolloutState, done: bool, message: str
) -> None:
    status = rollout_status(deployment(**kwargs))
    assert (status.state, status.done, status.message) == (state, done, message)
    assert status.deployment == "auth-service"


def test_rollout_status_numbers() -> None:
    status = rollout_status(deployment(updated=2, status_replicas=4, available=1))
    assert (status.updated, status.desired, status.available, status.replicas) == (2, 3, 1, 4)


def test_rollout_status_of_empty_object() -> None:
    status = rollout_status({})
    assert status.state is RolloutState.COMPLETE
    assert status.message == 'deployment "" successfully rolled out'


HISTORY = [
    replicaset(1, "bharathva/auth-service:1.0.0", annotations={"kubernetes.io/change-cause": "r1"}),
    replicaset(2, "bharathva/auth-service:1.0.5"),
    replicaset(3, "bharathva/auth-service:1.1.0"),
]


@pytest.mark.parametrize(
    ("dep_kwargs", "replicasets", "to_revision", "expected"),
    [
        pytest.param({}, HISTORY, None, (2, "deployment.apps/auth-service rolled back"), id="prev"),
        pytest.param({}, HISTORY, 0, (2, "deployment.apps/auth-service rolled back"), id="zero"),
        pytest.param(
            {}, HISTORY[::-1], None, (2, "deployment.apps/auth-service rolled back"), id="unsorted"
        ),
        pytest.param({}, HISTORY, 1, (1, "deployment.apps/auth-service rolled back"), id="named"),
        pytest.param(
            {},
            HISTORY,
            3,
            (
                None,
                "deployment.apps/auth-service skipped rollback "
                "(current template already matches revision 3)",
            ),
            id="identical-skipped",
        ),
        pytest.param(
            {"image": "bharathva/auth-service:1.0.5"},
            HISTORY,
            None,
            (
                None,
                "deployment.apps/auth-service skipped rollback "
                "(current template already matches revision 2)",
            ),
            id="previous-identical-skipped",
        ),
        pytest.param(
            {},
            [*HISTORY, replicaset(9, "x:9", owner_uid="someone-else")],
            None,
            (2, "deployment.apps/auth-service rolled back"),
            id="foreign-replicaset-ignored",
        ),
        pytest.param(
            {},
            [*HISTORY, replicaset(9, "x:9", controller=False)],
            None,
            (2, "deployment.apps/auth-service rolled back"),
            id="non-controller-owner-ignored",
        ),
        pytest.param(
            {},
            [*HISTORY, replicaset("garbled", "x:9")],
            None,
            (2, "deployment.apps/auth-service rolled back"),
            id="garbled-revision-skipped",
        ),
        pytest.param(
            {},
            [HISTORY[2], replicaset(None, "bharathva/auth-service:0.9.0")],
            None,
            (0, "deployment.apps/auth-service rolled back"),
            id="missing-annotation-is-revision-0",
        ),
    ],
)
def test_undo_target(
    dep_kwargs: dict[str, Any],
    replicasets: list[dict[str, Any]],
    to_revision: int | None,
    expected: tuple[int | None, str],
) -> None:
    target, message = undo_target(deployment(**dep_kwargs), replicasets, to_revision)
    revision = (
        None
        if target is None
        else int(target["metadata"]["annotations"].get("deployment.kubernetes.io/revision", 0))
    )
    assert (revision, message) == expected


@pytest.mark.parametrize(
    ("dep_kwargs", "replicasets", "to_revision", "message"),
    [
        pytest.param(
            {"paused": True},
            HISTORY,
            None,
            "you cannot rollback a paused deployment; resume it first with "
            "'kubectl rollout resume deployment/auth-service' and try again",
            id="paused",
        ),
        pytest.param(
            {"paused": True},
            HISTORY,
            7,
            "unable to find specified revision 7 in history",
            id="paused-but-revision-checked-first",
        ),
        pytest.param(
            {},
            HISTORY,
            7,
            "unable to find specified revision 7 in history",
            id="unknown-revision",
        ),
        pytest.param(
            {},
            HISTORY,
            -1,
            "unable to find specified revision -1 in history",
            id="negative-revision",
        ),
        pytest.param(
            {},
            HISTORY[2:],
            None,
            'no rollout history found for deployment "auth-service"',
            id="single-revision",
        ),
        pytest.param(
            {},
            [],
            None,
            'no rollout history found for deployment "auth-service"',
            id="no-replicasets",
        ),
        pytest.param(
            {},
            [replicaset(2, "x:2", owner_uid="other"), HISTORY[2]],
            None,
            'no rollout history found for deployment "auth-service"',
            id="only-foreign-history",
        ),
    ],
)
def test_undo_refused(
    dep_kwargs: dict[str, Any],
    replicasets: list[dict[str, Any]],
    to_revision: int | None,
    message: str,
) -> None:
    with pytest.raises(RolloutRefused) as info:
        undo_target(deployment(**dep_kwargs), replicasets, to_revision)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        pytest.param(template("a:1", "h1"), template("a:1"), True, id="hash-label-ignored"),
        pytest.param(template("a:1", "h1"), template("a:1", "h2"), True, id="hash-differs"),
        pytest.param(template("a:1"), template("a:2"), False, id="image-differs"),
        pytest.param(
            {"metadata": {"labels": {}}, "spec": {"containers": []}},
            {"metadata": {"creationTimestamp": None}, "spec": {}},
            True,
            id="nil-equals-empty",
        ),
        pytest.param(
            template("a:1"),
            template("a:1") | {"metadata": {"labels": {"app": "x"}}},
            False,
            id="labels-differ",
        ),
    ],
)
def test_equal_ignore_hash(left: dict[str, Any], right: dict[str, Any], equal: bool) -> None:
    assert equal_ignore_hash(left, right) is equal


def test_undo_patch_is_kubectls_json_patch() -> None:
    dep = deployment(
        annotations={
            "deployment.kubernetes.io/revision": "3",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "deployment.kubernetes.io/desired-replicas": "3",
            "kubernetes.io/change-cause": "current cause",
            "team": "identity",
        }
    )
    target = replicaset(
        1,
        "bharathva/auth-service:1.0.0",
        annotations={
            "kubernetes.io/change-cause": "r1",
            "deployment.kubernetes.io/desired-replicas": "2",
            "deployment.kubernetes.io/max-replicas": "4",
            "bva.dev/note": "from rs",
        },
    )
    before = copy.deepcopy(target)
    patch = undo_patch(dep, target)
    assert target == before, "the ReplicaSet passed in must not be modified"
    assert patch == [
        {
            "op": "replace",
            "path": "/spec/template",
            "value": {
                "metadata": {
                    "labels": {"app": "auth-service", "track": "stable"},
                    "creationTimestamp": None,
                },
                "spec": {
                    "containers": [
                        {"name": "auth-service", "image": "bharathva/auth-service:1.0.0"}
                    ]
                },
            },
        },
        {
            "op": "replace",
            "path": "/metadata/annotations",
            # Skipped keys come from the Deployment; everything else from the ReplicaSet. The
            # Deployment's own non-skipped annotations ("team") are dropped, as in kubectl.
            "value": {
                "deployment.kubernetes.io/revision": "3",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "deployment.kubernetes.io/desired-replicas": "3",
                "kubernetes.io/change-cause": "r1",
                "bva.dev/note": "from rs",
            },
        },
    ]


def test_owned_replicasets_matches_controller_uid() -> None:
    mine = replicaset(1, "a:1")
    theirs = replicaset(2, "a:2", owner_uid="other")
    not_controller = replicaset(3, "a:3", controller=False)
    orphan = {"metadata": {"name": "orphan"}}
    owned = owned_replicasets(deployment(), [mine, theirs, not_controller, orphan])
    assert owned == [mine]
