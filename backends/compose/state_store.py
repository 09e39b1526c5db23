"""Small records every bva sees, kept in the Engine itself: the release lock, the checklist's
sign-offs and each canary's release state.

The Engine has no mutable object with compare-and-swap, but a container name is unique: a
record is a created-never-started container named ``<project>-bva-<key>-<seq>`` whose label
holds the value. Writing version N+1 is creating that name, which exactly one writer can do
(the others get 409 Conflict: the record moved), then removing the older ones. Reading takes
the highest sequence. The holder containers carry bva's labels only, not compose's, so
`docker compose` never counts them as the project's (nor as orphans); they use a tiny image
bva imports once (``bva/state``), since the Engine needs one to create a container.
"""

from __future__ import annotations

import contextlib
import io
import re
import tarfile
from typing import Any

from backends.compose.engine import Engine
from backends.errors import Conflict, NotFound

IMAGE = "bva/state:1"
OF = "io.bva.state-of"  # the project
KEY = "io.bva.state-key"
SEQ = "io.bva.state-seq"
VALUE = "io.bva.state"
_KEY = re.compile(r"^[a-z0-9][a-z0-9.-]{0,100}$")


def _empty_rootfs() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("state")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    return buf.getvalue()


class StateStore:
    def __init__(self, engine: Engine, project: str) -> None:
        self._engine = engine
        self._project = project
        self._image_ready = False

    def _name(self, key: str, seq: int) -> str:
        return f"{self._project}-bva-{key}-{seq}"

    def _holders(self, api: Any, key: str) -> list[tuple[int, dict[str, Any]]]:
        flt = {"label": [f"{OF}={self._project}", f"{KEY}={key}"]}
        out = []
        for c in api.containers(all=True, filters=flt):
            seq = str((c.get("Labels") or {}).get(SEQ, ""))
            if seq.isdigit():
                out.append((int(seq), c))
        return sorted(out, key=lambda pair: pair[0])

    def read(self, key: str) -> tuple[str | None, int]:
        """(the value, its sequence); (None, 0) when there is none. Blocking."""
        if not _KEY.match(key):
            raise ValueError(f"bad state key {key!r}")
        holders = self._engine.call(f"reading {key}", lambda api: self._holders(api, key))
        if not holders:
            return None, 0
        seq, c = holders[-1]
        return str((c.get("Labels") or {}).get(VALUE, "")), seq

    def values(self, prefix: str) -> dict[str, str]:
        """Every record whose key starts with ``prefix``: key -> its newest value. Blocking."""

        def read(api: Any) -> dict[str, str]:
            newest: dict[str, tuple[int, str]] = {}
            for c in api.containers(all=True, filters={"label": [f"{OF}={self._project}"]}):
                labels = c.get("Labels") or {}
                key, seq = str(labels.get(KEY, "")), str(labels.get(SEQ, ""))
                if not (key.startswith(prefix) and seq.isdigit()):
                    continue
                if key not in newest or int(seq) > newest[key][0]:
                    newest[key] = (int(seq), str(labels.get(VALUE, "")))
            return {k: v for k, (_, v) in newest.items()}

        return self._engine.call("reading the state records", read)

    def _ensure_image(self, api: Any) -> None:
        if self._image_ready:
            return
        try:
            api.inspect_image(IMAGE)
        except Exception:
            repo, _, tag = IMAGE.partition(":")
            api.import_image_from_data(_empty_rootfs(), repository=repo, tag=tag)
        self._image_ready = True

    def write(self, key: str, value: str, expected: int) -> int:
        """Replace version ``expected`` (0: create) with ``value``; ``Conflict`` if the record
        moved since it was read. Returns the new sequence. Blocking."""
        if not _KEY.match(key):
            raise ValueError(f"bad state key {key!r}")
        seq = expected + 1

        def create(api: Any) -> None:
            self._ensure_image(api)
            if expected == 0 and self._holders(api, key):
                raise Conflict(f"{key} exists already")
            api.create_container(
                IMAGE,
                ["/state"],  # never started: the Engine only wants a command
                name=self._name(key, seq),
                labels={OF: self._project, KEY: key, SEQ: str(seq), VALUE: value},
                network_disabled=True,
            )

        moved = Conflict(f"{key} changed since it was read (someone else wrote it)")
        try:
            self._engine.call(f"writing {key}", create)
        except Conflict:
            raise moved from None

        def newer(api: Any) -> list[Any]:
            return [c for n, c in self._holders(api, key) if n > seq]

        # A writer that read long ago may find its name free again (pruned): a newer record
        # standing beside it says it lost.
        if self._engine.call(f"writing {key}", newer):
            self._engine.call(
                f"writing {key}",
                lambda api: api.remove_container(self._name(key, seq), force=True),
            )
            raise moved
        self._prune(key, keep=seq)
        return seq

    def _prune(self, key: str, keep: int) -> None:
        def prune(api: Any) -> None:
            for seq, c in self._holders(api, key):
                if seq < keep:
                    # Removed by another bva pruning too: either way it is gone.
                    with contextlib.suppress(Exception):
                        api.remove_container(c["Id"], force=True)

        self._engine.call(f"pruning {key}", prune)

    def delete(self, key: str) -> None:
        def remove(api: Any) -> None:
            for _, c in self._holders(api, key):
                try:
                    api.remove_container(c["Id"], force=True)
                except Exception as exc:
                    if "No such container" not in str(exc):
                        raise

        with contextlib.suppress(NotFound):
            self._engine.call(f"deleting {key}", remove)
