"""The sandbox's OpenAPI v2 and v3 documents, judged by the real kubectl: `explain` answers
from them, `apply` computes its strategic merge patches from them (the same patches kubectl's
built-in types give) and leaves field validation to the server, which decodes strictly; and
the documents themselves: every reference resolves, the v3 links carry their document's hash,
the v2 protobuf is gnostic's message."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from backends.sandbox import openapi, openapi_proto, openapi_schemas, patch
from backends.sandbox.openapi_fields import Fields
from backends.sandbox.resources import RESOURCES
from tests.sandbox.test_kubectl import kc, kc_json
from tests.support.sandbox_proc import RunningSandbox

Obj = dict[str, Any]


def run(sb: RunningSandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", *args], env=sb.env, capture_output=True, text=True, timeout=60
    )


def flat(text: str) -> str:
    """explain wraps descriptions at 80 columns: compare with whitespace collapsed."""
    return " ".join(text.split())


def test_explain_answers_from_the_served_schemas(sandbox: RunningSandbox, kubectl: str) -> None:
    spec = flat(kc(sandbox, "explain", "deployment.spec"))
    assert "GROUP: apps KIND: Deployment VERSION: v1" in spec
    assert (
        "replicas <integer> Number of desired pods. This is a pointer to distinguish between "
        "explicit zero and not specified. Defaults to 1." in spec
    )
    # The client has no text for a field that refers to a type: the type's own is shown.
    assert (
        "strategy <DeploymentStrategy> DeploymentStrategy describes how to replace existing "
        "pods with new ones." in spec
    )
    assert "selector <LabelSelector> -required-" in spec
    assert "template <PodTemplateSpec> -required-" in spec
    assert "<no description>" not in spec

    image = flat(kc(sandbox, "explain", "deployment.spec.template.spec.containers.image"))
    assert "FIELD: image <string>" in image and "Container image name." in image
    ports = flat(kc(sandbox, "explain", "deployment.spec.template.spec.containers.ports"))
    assert "containerPort <integer> -required-" in ports

    hpa = flat(
        kc(sandbox, "explain", "horizontalpodautoscaler.spec", "--api-version=autoscaling/v2")
    )
    assert "KIND: HorizontalPodAutoscaler VERSION: v2" in hpa
    assert "maxReplicas <integer> -required- maxReplicas is the upper limit" in hpa
    assert "metrics <[]MetricSpec>" in hpa
    hpa_v1 = flat(kc(sandbox, "explain", "hpa.spec", "--api-version=autoscaling/v1"))
    assert "targetCPUUtilizationPercentage <integer>" in hpa_v1
    for kind in ("pod", "service", "configmap", "secret", "namespace", "node", "lease", "event"):
        assert "DESCRIPTION:" in kc(sandbox, "explain", kind), kind

    missing = run(sandbox, "explain", "deployment.spec.replicaz")
    assert missing.returncode != 0 and 'field "replicaz" does not exist' in missing.stderr

    # The v2 document, which kubectl only reads as protobuf.
    v2 = flat(kc(sandbox, "explain", "--output", "plaintext-openapiv2", "deployment.spec"))
    assert "KIND: Deployment VERSION: apps/v1 RESOURCE: spec <Object>" in v2
    assert "replicas <integer> Number of desired pods." in v2


WEB_V1 = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: applied-web
  labels: {app: applied-web, tier: front}
spec:
  replicas: 2
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 25%}
  selector:
    matchLabels: {app: applied-web}
  template:
    metadata:
      labels: {app: applied-web}
    spec:
      tolerations: [{key: a, operator: Exists}]
      containers:
      - name: web
        image: nginx:1.25
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
        - {name: C, value: "3"}
        ports:
        - {containerPort: 80, name: http}
        - {containerPort: 443, name: https}
        volumeMounts:
        - {name: data, mountPath: /data}
        - {name: cache, mountPath: /cache}
      - name: side
        image: busybox:1.36
      volumes:
      - {name: data, emptyDir: {sizeLimit: 1Gi}}
      - {name: cache, emptyDir: {}}
"""
# The image changed, env B removed, a port and a mount gone, the volume's source replaced,
# the strategy switched (retainKeys drops rollingUpdate), the containers reordered.
WEB_V2 = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: applied-web
  labels: {app: applied-web}
spec:
  replicas: 3
  strategy:
    type: Recreate
  selector:
    matchLabels: {app: applied-web}
  template:
    metadata:
      labels: {app: applied-web}
    spec:
      tolerations: [{key: b, operator: Exists}]
      containers:
      - name: side
        image: busybox:1.36
      - name: web
        image: nginx:1.27
        env:
        - {name: C, value: "3"}
        - {name: A, value: "10"}
        ports:
        - {containerPort: 8080, name: http}
        volumeMounts:
        - {name: data, mountPath: /data}
      volumes:
      - {name: data, configMap: {name: web-config}}
"""


def test_apply_patches_from_the_schema_as_from_built_in_types(
    sandbox: RunningSandbox, kubectl: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(WEB_V1)
    # No --validate=false: kubectl finds fieldValidation in the v3 document.
    assert "deployment.apps/applied-web created" in kc(sandbox, "apply", "-f", str(manifest))

    manifest.write_text(WEB_V2)
    # --openapi-patch=false computes the patch from kubectl's compiled-in Go types; the
    # default computes it from the served schema's x-kubernetes-patch-* extensions.
    from_schema = kc_json(sandbox, "apply", "-f", str(manifest), "--dry-run=server")
    from_types = kc_json(
        sandbox, "apply", "-f", str(manifest), "--dry-run=server", "--openapi-patch=false"
    )
    # (status and resourceVersion move on between the two: the controllers run)
    for obj in (from_schema, from_types):
        obj["metadata"] = {k: obj["metadata"].get(k) for k in ("labels", "annotations")}
        obj.pop("status", None)
    assert from_schema == from_types

    out = run(sandbox, "apply", "-f", str(manifest))
    assert out.returncode == 0 and "deployment.apps/applied-web configured" in out.stdout
    assert "warning" not in out.stderr.lower()  # no fallback from a failed schema lookup
    dep = kc_json(sandbox, "get", "deployment", "applied-web")
    spec = dep["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["side", "web"]  # merged, not duplicated
    web = pod["containers"][1]
    assert web["image"] == "nginx:1.27"
    assert web["env"] == [{"name": "C", "value": "3"}, {"name": "A", "value": "10"}]
    assert [p["containerPort"] for p in web["ports"]] == [8080]
    assert web["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    assert pod["volumes"] == [{"name": "data", "configMap": {"name": "web-config"}}]
    assert pod["tolerations"] == [{"key": "b", "operator": "Exists"}]
    assert dep["metadata"]["labels"] == {"app": "applied-web"}


TYPO = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: typo
spec:
  {replicas}: 2
  selector:
    matchLabels: {{app: typo}}
  template:
    metadata:
      labels: {{app: typo}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        {image}: x
"""


def test_the_server_validates_fields_strictly(
    sandbox: RunningSandbox, kubectl: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "typo.yaml"
    manifest.write_text(TYPO.format(replicas="replicaz", image="imagez"))
    created = run(sandbox, "apply", "-f", str(manifest))
    assert created.returncode != 0
    assert (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.replicaz", unknown field '
        '"spec.template.spec.containers[0].imagez"' in created.stderr
    )
    assert 'deployments.apps "typo" not found' in run(sandbox, "get", "deploy", "typo").stderr

    # Warn accepts, warns, and drops the fields, as decoding into the Go type does.
    warned = run(sandbox, "apply", "-f", str(manifest), "--validate=warn")
    assert warned.returncode == 0, warned.stderr
    assert 'Warning: unknown field "spec.replicaz"' in warned.stderr
    assert 'Warning: unknown field "spec.template.spec.containers[0].imagez"' in warned.stderr
    dep = kc_json(sandbox, "get", "deployment", "typo")
    assert "replicaz" not in dep["spec"] and dep["spec"]["replicas"] == 1
    assert "imagez" not in dep["spec"]["template"]["spec"]["containers"][0]

    # The patch of a later apply is decoded strictly too.
    manifest.write_text(TYPO.format(replicas="replicas", image="imagez"))
    patched = run(sandbox, "apply", "-f", str(manifest))
    assert patched.returncode != 0
    assert (
        'error when patching "' in patched.stderr
        and 'strict decoding error: unknown field "spec.template.spec.containers[0].imagez"'
        in patched.stderr
    )
    manifest.write_text(TYPO.format(replicas="replicas", image="imagePullPolicy"))
    fixed = run(sandbox, "apply", "-f", str(manifest))
    assert fixed.returncode == 0 and "configured" in fixed.stdout, fixed.stderr
    assert kc_json(sandbox, "get", "deployment", "typo")["spec"]["replicas"] == 2

    # --validate=false (fieldValidation=Ignore) drops them without a word.
    manifest.write_text(TYPO.format(replicas="replicaz", image="imagePullPolicy"))
    ignored = run(sandbox, "apply", "-f", str(manifest), "--validate=false")
    assert ignored.returncode == 0 and "Warning" not in ignored.stderr, ignored.stderr
    assert "replicaz" not in kc_json(sandbox, "get", "deployment", "typo")["spec"]


# -- the documents themselves, without a sandbox ------------------------------------------
def _refs(doc: Any) -> set[str]:
    return openapi_schemas.references(doc)


def test_every_served_kind_resolves_all_its_references() -> None:
    docs = openapi.documents()
    v2 = json.loads(docs.v2_json)
    definitions = v2["definitions"]
    assert _refs(v2) <= set(definitions)
    for r in RESOURCES:
        path = openapi.gv_path(r.group, r.version)
        v3 = json.loads(docs.v3[path])
        schemas = v3["components"]["schemas"]
        name = docs.kinds[(r.group, r.version, r.kind)]
        assert schemas[name]["x-kubernetes-group-version-kind"] == [
            {"group": r.group, "kind": r.kind, "version": r.version}
        ]
        for ref in _refs(v3):
            assert ref in schemas, (path, ref)
        # Every schema has something to say, or explain prints "<no description>".
        for prop, sub in schemas[name]["properties"].items():
            assert sub.get("description"), (name, prop)
        item = json.dumps(v3["paths"])
        assert '"fieldValidation"' in item and r.plural in item


def test_definitions_use_upstream_names_and_shapes() -> None:
    name = openapi_schemas.definition_name
    assert name("V1Deployment") == "io.k8s.api.apps.v1.Deployment"
    assert name("V1ObjectMeta") == "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    assert name("V1Container") == "io.k8s.api.core.v1.Container"
    assert name("CoreV1Event") == "io.k8s.api.core.v1.Event"
    assert name("V1LeaseSpec") == "io.k8s.api.coordination.v1.LeaseSpec"
    assert name("V1CrossVersionObjectReference") == (
        "io.k8s.api.autoscaling.v1.CrossVersionObjectReference"
    )
    assert name("V2MetricSpec") == "io.k8s.api.autoscaling.v2.MetricSpec"

    defs = openapi.documents().definitions
    container = defs["io.k8s.api.core.v1.Container"]
    assert container["required"] == ["name"]
    env = container["properties"]["env"]
    assert env["x-kubernetes-patch-merge-key"] == "name"
    assert env["x-kubernetes-patch-strategy"] == "merge"
    assert env["items"] == {"$ref": "#/definitions/io.k8s.api.core.v1.EnvVar"}
    ports = container["properties"]["ports"]
    assert ports["x-kubernetes-patch-merge-key"] == "containerPort"
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    spec = defs["io.k8s.api.apps.v1.DeploymentSpec"]
    assert spec["required"] == ["selector", "template"]
    assert spec["properties"]["strategy"]["x-kubernetes-patch-strategy"] == "retainKeys"
    rolling = defs["io.k8s.api.apps.v1.RollingUpdateDeployment"]["properties"]
    assert rolling["maxSurge"]["$ref"].endswith("intstr.IntOrString")
    limits = defs["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
    assert limits["additionalProperties"]["$ref"].endswith("resource.Quantity")
    meta = defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
    assert meta["creationTimestamp"]["$ref"].endswith("meta.v1.Time")
    assert meta["ownerReferences"]["x-kubernetes-patch-merge-key"] == "uid"
    assert meta["finalizers"]["x-kubernetes-patch-strategy"] == "merge"
    assert defs["io.k8s.api.coordination.v1.LeaseSpec"]["properties"]["renewTime"]["$ref"].endswith(
        "meta.v1.MicroTime"
    )
    # The served version's fields: v1.31 has no Deployment.spec requirement, no
    # Container.restartPolicyRules, whatever the installed client says.
    assert "required" not in defs["io.k8s.api.apps.v1.Deployment"]
    assert "restartPolicyRules" not in container["properties"]
    # v3 has upstream's forms for the number-or-string types, and allOf-wrapped refs.
    apps = json.loads(openapi.documents().v3["apis/apps/v1"])["components"]["schemas"]
    int_or_string = apps["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert int_or_string["format"] == "int-or-string"
    assert int_or_string["oneOf"] == [{"type": "integer"}, {"type": "string"}]
    surge = apps["io.k8s.api.apps.v1.RollingUpdateDeployment"]["properties"]["maxSurge"]
    assert surge["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}
    ]
    assert "maximum number of pods" in surge["description"]


# patch.py keys lists by field name alone; where one name means two things upstream, the
# server's table has the pods' meaning.
_PATCH_PY_DIFFERS = {
    ("io.k8s.api.core.v1.ServiceSpec", "ports"),  # upstream merges by port
    ("io.k8s.api.core.v1.LoadBalancerIngress", "ports"),  # upstream replaces it
    ("io.k8s.api.core.v1.NamespaceSpec", "finalizers"),  # upstream replaces it
}


def test_merge_keys_agree_with_the_server_patch() -> None:
    for name, schema in openapi.documents().definitions.items():
        for field, prop in (schema.get("properties") or {}).items():
            if (name, field) in _PATCH_PY_DIFFERS:
                continue
            key = prop.get("x-kubernetes-patch-merge-key")
            strategy = prop.get("x-kubernetes-patch-strategy", "")
            if field in patch.MERGE_KEYS and prop.get("type") == "array":
                assert key == patch.MERGE_KEYS[field], (name, field)
            if field in patch.MERGED_PRIMITIVE_LISTS:
                assert "merge" in strategy and key is None, (name, field)


def test_unknown_fields_are_found_and_pruned() -> None:
    fields = Fields(openapi.documents().definitions)
    deployment = "io.k8s.api.apps.v1.Deployment"
    obj: Obj = {
        "metadata": {"name": "x", "labels": {"any": "label"}, "nmae": "y"},
        "spec": {
            "replicaz": 1,
            "strategy": {"rollingUpdate": {"maxSurge": "25%"}},
            "template": {
                "spec": {"containers": [{"name": "a"}, {"name": "b", "imagez": "i"}]},
            },
        },
    }
    unknown = ["metadata.nmae", "spec.replicaz", "spec.template.spec.containers[1].imagez"]
    assert fields.unknown(deployment, obj) == unknown
    fields.unknown(deployment, obj, prune={"spec.replicaz"})
    assert fields.unknown(deployment, obj) == ["spec.replicaz"]
    assert obj["metadata"] == {"name": "x", "labels": {"any": "label"}}


async def test_check_fields_follows_the_directive() -> None:
    deployment = next(r for r in RESOURCES if r.kind == "Deployment")
    body: Obj = {"spec": {"replicaz": 1, "replicas": 2}}
    with pytest.raises(openapi.StrictDecodingError, match=r'unknown field "spec\.replicaz"'):
        await openapi.check_fields(deployment, "Strict", body)
    obj, warnings = await openapi.check_fields(deployment, "Warn", body)
    assert obj == {"spec": {"replicas": 2}} and warnings == ['unknown field "spec.replicaz"']
    assert body == {"spec": {"replicaz": 1, "replicas": 2}}  # the request's body is not changed
    assert await openapi.check_fields(deployment, "Ignore", body) == ({"spec": {"replicas": 2}}, [])
    assert await openapi.check_fields(deployment, None, body) == (body, [])
    # A stored object's unknown field is not the patch's doing.
    stored: Obj = {"spec": {"old": True}}
    patched: Obj = {"spec": {"old": True, "replicas": 3}}
    assert await openapi.check_fields(deployment, "Strict", patched, stored) == (patched, [])


def _openapi_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/openapi/v2", openapi.serve_v2)
    app.router.add_get("/openapi/v3", openapi.serve_v3_root)
    app.router.add_get("/openapi/v3/{path:.+}", openapi.serve_v3)
    return app


async def test_v3_links_carry_the_hash_of_their_document() -> None:
    async with TestClient(TestServer(_openapi_app())) as client:
        root = await (
            await client.get("/openapi/v3", headers={"Accept": "application/json"})
        ).json()
        assert set(root["paths"]) == {openapi.gv_path(r.group, r.version) for r in RESOURCES}
        for path, entry in root["paths"].items():
            url = entry["serverRelativeURL"]
            assert url.startswith(f"/openapi/v3/{path}?hash=")
            resp = await client.get(url, headers={"Accept": "application/json"})
            assert resp.status == 200
            body = await resp.read()
            digest = hashlib.sha512(body).hexdigest().upper()
            assert url.endswith(f"?hash={digest}")
            assert resp.headers["Etag"] == f'"{digest}"'
            assert resp.headers["Cache-Control"] == "public, immutable"
            assert json.loads(body)["openapi"] == "3.0.0"
            again = await client.get(url, headers={"If-None-Match": f'"{digest}"'})
            assert again.status == 304
        stale = await client.get("/openapi/v3/apis/apps/v1?hash=0", allow_redirects=False)
        assert stale.status == 301
        assert stale.headers["Location"] == root["paths"]["apis/apps/v1"]["serverRelativeURL"]
        assert (await client.get("/openapi/v3/apis/batch/v1")).status == 404
        refused = await client.get("/openapi/v3", headers={"Accept": "text/html"})
        assert refused.status == 406


def message(data: bytes) -> dict[int, list[bytes]]:
    """A protobuf message's length-delimited fields (all these documents use) by number."""
    out: dict[int, list[bytes]] = {}
    for number, value in openapi_proto.fields(data):
        assert isinstance(value, bytes), number
        out.setdefault(number, []).append(value)
    return out


async def test_v2_is_served_as_gnostic_protobuf_or_json() -> None:
    docs = openapi.documents()
    async with TestClient(TestServer(_openapi_app())) as client:
        resp = await client.get("/openapi/v2", headers={"Accept": openapi.PROTO_V2})
        assert resp.status == 200
        assert resp.headers["Content-Type"] == openapi.PROTO_V2_CONTENT_TYPE
        document = message(await resp.read())
        assert document[1] == [b"2.0"]  # swagger
        # definitions (9): NamedSchema (1) entries of name (1) and Schema (2)
        named = [message(entry) for entry in message(document[9][0])[1]]
        assert [n[1][0].decode() for n in named] == list(docs.definitions)
        deployment = next(n for n in named if n[1][0] == b"io.k8s.api.apps.v1.Deployment")
        schema = message(deployment[2][0])
        # vendor_extension (31): NamedAny of name (1) and Any (2), whose yaml (2) is the value
        extensions = {
            message(ext)[1][0].decode(): message(message(ext)[2][0])[2][0] for ext in schema[31]
        }
        assert json.loads(extensions["x-kubernetes-group-version-kind"]) == [
            {"group": "apps", "kind": "Deployment", "version": "v1"}
        ]

        as_json = await client.get("/openapi/v2", headers={"Accept": "application/json"})
        assert as_json.headers["Content-Type"] == "application/json"
        v2 = await as_json.json()
        assert v2["swagger"] == "2.0" and set(v2["definitions"]) == set(docs.definitions)
        refused = await client.get("/openapi/v2", headers={"Accept": "text/html"})
        assert refused.status == 406


def test_definitions_are_kept_across_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    built = openapi._load_definitions()
    assert list((tmp_path / "bva" / "sandbox-openapi").glob("*.json"))

    def no_build() -> Any:
        raise AssertionError("the kept definitions were not read")

    monkeypatch.setattr(openapi_schemas, "build_definitions", no_build)
    assert openapi._load_definitions() == built


def test_older_clients_docstrings_give_the_descriptions() -> None:
    class V1Thing:
        """NOTE: This class is auto generated by OpenAPI Generator.
        Ref: https://openapi-generator.tech

        Do not edit the class manually.
        """

        @property
        def size(self) -> int:
            """Gets the size of this V1Thing.  # noqa: E501

            How big the thing is.  # noqa: E501

            :return: The size of this V1Thing.  # noqa: E501
            :rtype: int
            """
            return 0

    assert openapi_schemas.field_description(V1Thing, "size") == "How big the thing is."
    assert openapi_schemas.class_description(V1Thing) is None
