"""The Swagger 2.0 document as the protobuf kube-apiserver serves on /openapi/v2 for
``Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf``: gnostic's
``openapi.v2.Document`` message (github.com/google/gnostic-models, openapiv2/OpenAPIv2.proto).

kubectl (client-go's discovery ``OpenAPISchema``) only ever asks for protobuf and cannot read
JSON there, so this is what ``kubectl explain --output plaintext-openapiv2`` and kubectl's v2
fallbacks (patch metadata, client-side validation) read. Only the parts of the message the
sandbox's documents use are encoded; the field numbers are the .proto's.

Vendor extensions are ``NamedAny`` whose ``Any.yaml`` holds the value as YAML; JSON text is
YAML, and is what is written.
"""

from __future__ import annotations

import json
from typing import Any

Obj = dict[str, Any]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _bytes(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _str(field: int, text: str) -> bytes:
    return _bytes(field, text.encode()) if text else b""


def _bool(field: int, value: bool) -> bytes:
    return _varint(field << 3) + b"\x01" if value else b""


def _named(field: int, name: str, value: bytes) -> bytes:
    return _bytes(field, _str(1, name) + _bytes(2, value))


def _extensions(field: int, obj: Obj) -> bytes:
    out = b""
    for key, value in obj.items():
        if key.startswith("x-"):
            any_value = _str(2, json.dumps(value, separators=(",", ":")) + "\n")
            out += _named(field, key, any_value)
    return out


def schema(s: Obj) -> bytes:
    out = _str(1, s.get("$ref", "")) + _str(2, s.get("format", ""))
    out += _str(3, s.get("title", "")) + _str(4, s.get("description", ""))
    for name in s.get("required", ()):
        out += _str(19, name)
    extra = s.get("additionalProperties")
    if isinstance(extra, bool):
        # A oneof member is written even when false: it says which member is set.
        out += _bytes(21, _varint(2 << 3) + (b"\x01" if extra else b"\x00"))
    elif isinstance(extra, dict):
        out += _bytes(21, _bytes(1, schema(extra)))
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        out += _bytes(22, b"".join(_str(1, t) for t in types))
    if "items" in s:
        out += _bytes(23, _bytes(1, schema(s["items"])))
    for sub in s.get("allOf", ()):
        out += _bytes(24, schema(sub))
    if "properties" in s:
        props = b"".join(_named(1, k, schema(v)) for k, v in s["properties"].items())
        out += _bytes(25, props)
    return out + _extensions(31, s)


def _parameter(p: Obj) -> bytes:
    if p.get("in") == "body":
        body = _str(1, p.get("description", "")) + _str(2, p["name"]) + _str(3, "body")
        body += _bool(4, bool(p.get("required"))) + _bytes(5, schema(p.get("schema", {})))
        return _bytes(1, _bytes(1, body))
    # Path and query parameters share these field numbers but for type and uniqueItems.
    query = p.get("in") == "query"
    sub = _bool(1, bool(p.get("required"))) + _str(2, p["in"])
    sub += _str(3, p.get("description", "")) + _str(4, p["name"])
    sub += _str(6 if query else 5, p.get("type", ""))
    sub += _bool(20 if query else 19, bool(p.get("uniqueItems")))
    return _bytes(1, _bytes(2, _bytes(3 if query else 4, sub)))


def _operation(op: Obj) -> bytes:
    out = b"".join(_str(1, t) for t in op.get("tags", ()))
    out += _str(3, op.get("description", "")) + _str(5, op.get("operationId", ""))
    out += b"".join(_str(6, t) for t in op.get("produces", ()))
    out += b"".join(_str(7, t) for t in op.get("consumes", ()))
    out += b"".join(_bytes(8, _parameter(p)) for p in op.get("parameters", ()))
    codes = b""
    for code, resp in op.get("responses", {}).items():
        body = _str(1, resp.get("description", ""))
        if "schema" in resp:
            body += _bytes(2, _bytes(1, schema(resp["schema"])))
        codes += _named(1, code, _bytes(1, body))
    out += _bytes(9, codes)
    out += b"".join(_str(10, s) for s in op.get("schemes", ()))
    return out + _extensions(13, op)


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def document(doc: Obj) -> bytes:
    info = doc.get("info", {})
    out = _str(1, doc.get("swagger", "2.0"))
    out += _bytes(2, _str(1, info.get("title", "")) + _str(2, info.get("version", "")))
    paths = b""
    for path, item in doc.get("paths", {}).items():
        body = b"".join(
            _bytes(_METHODS[m], _operation(op)) for m, op in item.items() if m in _METHODS
        )
        body += b"".join(_bytes(9, _parameter(p)) for p in item.get("parameters", ()))
        paths += _named(2, path, body)
    out += _bytes(8, paths)
    defs = b"".join(_named(1, k, schema(v)) for k, v in doc.get("definitions", {}).items())
    out += _bytes(9, defs)
    return out + _extensions(16, doc)


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    """Decode one varint at ``at``: (value, next offset). For tests of the encoding."""
    shift = value = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """A message's (field number, varint value or bytes) in order, unnested."""
    out: list[tuple[int, int | bytes]] = []
    at = 0
    while at < len(data):
        key, at = read_varint(data, at)
        if key & 7 == 0:
            value, at = read_varint(data, at)
            out.append((key >> 3, value))
        elif key & 7 == 2:
            size, at = read_varint(data, at)
            out.append((key >> 3, data[at : at + size]))
            at += size
        else:
            raise ValueError(f"wire type {key & 7} is not used by these documents")
    return out
