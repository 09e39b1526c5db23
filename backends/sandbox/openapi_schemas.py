"""The definitions of the served kinds, in Swagger 2.0 form, built from the installed
``kubernetes`` client's models: each model's ``openapi_types`` and ``attribute_map`` give the
fields and their types, its pydantic field descriptions (or, in the older generated client,
its property docstrings) give the upstream descriptions, and ``openapi_tables`` adds what the
models flatten away (groups, IntOrString/Quantity/MicroTime, patch extensions) and keeps the
fields and required fields to the served version's (v1.31), whatever client is installed.

The client only describes primitive fields: a field that refers to another definition has no
description of its own upstream text, so it takes the description of the type it refers to,
which is what ``kubectl explain`` then prints for it.

Importing the client and its models costs most of a second, so nothing here runs until the
first OpenAPI request asks for it (openapi.py caches the result for the process).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from backends.sandbox import openapi_tables as tables
from backends.sandbox.resources import RESOURCES, ResourceType

Obj = dict[str, Any]

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
TIME = f"{META}.Time"
MICRO_TIME = f"{META}.MicroTime"
FIELDS_V1 = f"{META}.FieldsV1"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"

# Definitions with no model class of their own: the client maps them to str/datetime/object.
SYNTHETIC: dict[str, Obj] = {
    TIME: {
        "description": "Time is a timestamp in RFC 3339 form, at second precision, in UTC.",
        "type": "string",
        "format": "date-time",
    },
    MICRO_TIME: {
        "description": "MicroTime is a timestamp in RFC 3339 form, at microsecond precision.",
        "type": "string",
        "format": "date-time",
    },
    FIELDS_V1: {
        "description": "FieldsV1 stores a set of fields in a data structure like a Trie, in "
        "JSON format.",
        "type": "object",
    },
    QUANTITY: {
        "description": "Quantity is a fixed-point representation of a number, such as 100m, "
        "1.5, 128Mi or 2Gi.",
        "type": "string",
    },
    INT_OR_STRING: {
        "description": "IntOrString is a type that can hold an int32 or a string: a number "
        "such as 8080, or a name or percentage such as http or 25%.",
        "type": "string",
        "format": "int-or-string",
    },
}
_SPECIAL_REFS = {
    "IntOrString": INT_OR_STRING,
    "Quantity": QUANTITY,
    "MicroTime": MICRO_TIME,
    "FieldsV1": FIELDS_V1,
}
_PRIMITIVES: dict[str, Obj] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number", "format": "double"},
    "bool": {"type": "boolean"},
    "bytes": {"type": "string", "format": "byte"},
    "bytearray": {"type": "string", "format": "byte"},
    "date": {"type": "string", "format": "date"},
    "object": {"type": "object"},
}
_NAME = re.compile(r"([A-Z][a-z]+)?(V\d+(?:alpha\d+|beta\d+)?)([A-Z]\w*)")
_LIST = re.compile(r"(?:List|list)\[(.+)\]")
_DICT = re.compile(r"(?:Dict\[str, (.+)\]|dict\(str, (.+)\))")
_NOQA = re.compile(r"\s*# noqa: E501")


def definition_name(model: str) -> str:
    """V1Deployment -> io.k8s.api.apps.v1.Deployment, CoreV1Event -> io.k8s.api.core.v1.Event,
    V1ObjectMeta -> io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta."""
    m = _NAME.fullmatch(model)
    if m is None:
        raise ValueError(f"not a kubernetes model name: {model}")
    prefix, version, base = m.group(1), m.group(2).lower(), m.group(3)
    if prefix:
        return f"io.k8s.api.{prefix.lower()}.{version}.{base}"
    if version == "v1" and base in tables.META_V1:
        return f"{META}.{base}"
    if version == "v1" and base in tables.APPS_V1:
        return f"io.k8s.api.apps.v1.{base}"
    if version == "v1" and base in tables.AUTOSCALING_V1:
        return f"io.k8s.api.autoscaling.v1.{base}"
    if version == "v1" and base in tables.COORDINATION_V1:
        return f"io.k8s.api.coordination.v1.{base}"
    if version == "v2":
        return f"io.k8s.api.autoscaling.v2.{base}"
    return f"io.k8s.api.core.{version}.{base}"


def _short(definition: str) -> str:
    return definition.removeprefix("io.k8s.api.").removeprefix("io.k8s.apimachinery.pkg.apis.")


def _package(r: ResourceType) -> str:
    group = {"": "core", "coordination.k8s.io": "coordination"}.get(r.group, r.group)
    return f"io.k8s.api.{group}.{r.version}"


def model_for(r: ResourceType, client: Any) -> str:
    """The client's model class name for a served kind (CoreV1Event for core Events)."""
    version = r.version.capitalize()
    prefix = "Core" if not r.group else r.group.split(".")[0].capitalize()
    for name in (f"{prefix}{version}{r.kind}", f"{version}{r.kind}"):
        if hasattr(client, name) and definition_name(name) == f"{_package(r)}.{r.kind}":
            return name
    raise LookupError(f"the kubernetes client has no model for {r.api_version} {r.kind}")


def _clean(text: str | None) -> str | None:
    if not text:
        return None
    text = _NOQA.sub("", text).strip()
    return text or None


def class_description(cls: type) -> str | None:
    doc = inspect.cleandoc(cls.__doc__ or "")
    # The older generator put only its own boilerplate in class docstrings.
    if doc.startswith("NOTE: This class is auto generated"):
        return None
    return _clean(doc.split("\nAttributes:", 1)[0])


def field_description(cls: type, attr: str) -> str | None:
    fields = getattr(cls, "model_fields", None)
    if fields is not None:
        info = fields.get(attr)
        return _clean(info.description if info is not None else None)
    prop = getattr(cls, attr, None)
    doc = inspect.cleandoc(getattr(prop, "__doc__", None) or "")
    # "Gets the X of this Y.\n\n<description>\n\n:return: ..."
    body = doc.split(":return:", 1)[0].split("\n", 1)
    return _clean(body[1] if len(body) > 1 else None)


def _ref(definition: str) -> Obj:
    return {"$ref": f"#/definitions/{definition}"}


class _Builder:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.definitions: dict[str, Obj] = {}
        self.pending: list[str] = []
        self.descriptions: dict[str, str | None] = {}

    def model(self, name: str) -> str:
        """The definition name of model ``name``, queued to be built."""
        definition = definition_name(name)
        if definition not in self.definitions and definition not in self.descriptions:
            self.descriptions[definition] = class_description(getattr(self.client, name))
            self.pending.append(name)
        return definition

    def schema(self, type_name: str, special: str | None) -> Obj:
        m = _LIST.fullmatch(type_name)
        if m:
            return {"type": "array", "items": self.schema(m.group(1).strip(), special)}
        m = _DICT.fullmatch(type_name)
        if m:
            value = (m.group(1) or m.group(2)).strip()
            return {"type": "object", "additionalProperties": self.schema(value, special)}
        if special == "byte":
            return dict(_PRIMITIVES["bytes"])
        if special is not None:
            return _ref(_SPECIAL_REFS[special])
        if type_name == "datetime":
            return _ref(TIME)
        if type_name in _PRIMITIVES:
            return dict(_PRIMITIVES[type_name])
        return _ref(self.model(type_name))

    def build(self, name: str) -> None:
        cls = getattr(self.client, name)
        definition = definition_name(name)
        short = _short(definition)
        specials = tables.SPECIAL_FIELDS.get(short, {})
        extensions = tables.FIELD_EXTENSIONS.get(short, {})
        properties: Obj = {}
        dropped = tables.NOT_IN_V1_31.get(short, ())
        for attr, type_name in cls.openapi_types.items():
            field = cls.attribute_map[attr]
            if field in dropped:
                continue
            prop = self.schema(type_name.strip(), specials.get(field))
            description = field_description(cls, attr)
            if description is None and "$ref" in prop:
                description = self.descriptions.get(prop["$ref"].rsplit("/", 1)[1])
            if description:
                prop["description"] = description
            prop.update(extensions.get(field, {}))
            properties[field] = prop
        schema: Obj = {"type": "object", "properties": dict(sorted(properties.items()))}
        if self.descriptions.get(definition):
            schema = {"description": self.descriptions[definition], **schema}
        required = [f for f in tables.REQUIRED_V1_31.get(short, ()) if f in properties]
        if required:
            schema["required"] = sorted(required)
        if short in tables.ATOMIC_STRUCTS:
            schema["x-kubernetes-map-type"] = "atomic"
        self.definitions[definition] = schema

    def run(self) -> None:
        while self.pending:
            self.build(self.pending.pop())


def _gvk(r: ResourceType, kind: str) -> list[Obj]:
    return [{"group": r.group, "kind": kind, "version": r.version}]


def build_definitions() -> tuple[dict[str, Obj], dict[tuple[str, str], list[str]]]:
    """Every definition reachable from the served kinds (and their lists), and per
    (group, version) the definitions of the kinds it serves, the kind's own first."""
    import kubernetes.client as client

    builder = _Builder(client)
    roots: dict[tuple[str, str], list[str]] = {}
    kinds: list[tuple[ResourceType, str, str]] = []
    for r in RESOURCES:
        model = model_for(r, client)
        for name, kind in ((model, r.kind), (f"{model}List", f"{r.kind}List")):
            if hasattr(client, name):
                definition = builder.model(name)
                roots.setdefault((r.group, r.version), []).append(definition)
                kinds.append((r, kind, definition))
    builder.run()
    definitions = builder.definitions
    for r, kind, definition in kinds:
        definitions[definition]["x-kubernetes-group-version-kind"] = _gvk(r, kind)
    for name, schema in SYNTHETIC.items():
        definitions[name] = dict(schema)
    return dict(sorted(definitions.items())), roots


def references(schema: Any) -> set[str]:
    """The definition names ``schema`` refers to (v2 or v3 style)."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                found.add(ref.rsplit("/", 1)[1])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def reachable(definitions: dict[str, Obj], roots: list[str]) -> list[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(references(definitions[name]) - seen)
    return sorted(seen)
