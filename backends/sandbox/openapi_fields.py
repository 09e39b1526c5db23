"""Server-side field validation (``fieldValidation=Strict|Warn|Ignore``) from the served
schemas: the fields of an object that its kind's definition does not know.

kube-apiserver decodes a body (or, for a patch, the patched object) into the Go type; with
Strict an unknown field fails the request with 400 "strict decoding error: unknown field
"spec.replicaz"", with Warn (the default) it becomes a warning, with Ignore nothing. kubectl
sends Strict whenever the OpenAPI document shows the PATCH operation takes fieldValidation,
and then leaves validation to the server, so without this `kubectl apply` would accept a
misspelt field silently.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


class Fields:
    """Walks objects against Swagger 2.0 definitions (``#/definitions/...`` refs)."""

    def __init__(self, definitions: dict[str, Obj]) -> None:
        self.definitions = definitions

    def _resolve(self, schema: Obj) -> Obj:
        seen = 0
        while "$ref" in schema and seen < 16:
            schema = self.definitions.get(schema["$ref"].rsplit("/", 1)[1], {})
            seen += 1
        return schema

    def unknown(self, definition: str, obj: Any, *, prune: set[str] | None = None) -> list[str]:
        """Dotted paths (``spec.template.spec.containers[0].imagez``) of unknown fields, in
        the order the object has them, as the Go decoder reports them. With ``prune``, those
        not in it are also removed from ``obj``, as decoding into the Go type drops them."""
        out: list[str] = []
        self._walk(self.definitions.get(definition, {}), obj, "", out, prune)
        return out

    def _walk(
        self, schema: Obj, value: Any, path: str, out: list[str], prune: set[str] | None
    ) -> None:
        schema = self._resolve(schema)
        if isinstance(value, dict):
            props = schema.get("properties")
            extra = schema.get("additionalProperties")
            if isinstance(props, dict):
                for key, sub in list(value.items()):
                    where = f"{path}.{key}" if path else str(key)
                    if key in props:
                        self._walk(props[key], sub, where, out, prune)
                        continue
                    out.append(where)
                    if prune is not None and where not in prune:
                        del value[key]
            elif isinstance(extra, dict):
                for key, sub in value.items():
                    self._walk(extra, sub, f"{path}[{key}]", out, prune)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for i, item in enumerate(value):
                self._walk(schema["items"], item, f"{path}[{i}]", out, prune)


DIRECTIVES = ("Strict", "Warn", "Ignore")
