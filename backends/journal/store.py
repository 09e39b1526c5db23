"""The append-only, hash-chained journal of mutating actions.

Every mutating action is written here before it runs and after it ran (who, where, what,
result). The file is JSON Lines, one record per line; each record carries the hash of the
record before it, so editing, deleting, reordering, inserting or truncating records breaks the
chain and ``verify()`` names the first broken line.

Record hash: sha256 over the canonical JSON (``sort_keys``, compact separators, ASCII) of every
field except ``hash``. The first record's ``prev_hash`` is 64 zeros and its ``seq`` is 1, so a
record's ``seq`` is also its line number.

Concurrency: appends open the file with ``O_APPEND``, hold an exclusive ``flock`` while they
read the last record's hash and write the new line, and ``fsync`` before releasing it, so
several processes on one machine can append to one journal.

What the chain cannot show: cutting whole records off the end at a line boundary leaves a
valid (shorter) chain. ``VerifyResult.last_hash`` lets an operator anchor the chain elsewhere.

Secrets never reach the file: detail keys named like a secret are dropped, and URL
credentials, ``password=`` pairs and secret-named query parameters are masked in every string.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import getpass
import hashlib
import json
import math
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import platformdirs

from backends.config.values import mask_dsn
from backends.errors import ReadOnlyError, RolloutRefused

__all__ = [
    "GENESIS_HASH",
    "JOURNAL_DIR_ENV_VAR",
    "Journal",
    "JournalEntry",
    "JournalError",
    "JournalRecord",
    "Stage",
    "VerifyResult",
    "canonical_json",
    "default_actor",
    "failure_text",
    "is_secret_key",
    "journal_path",
    "record_hash",
    "scrub_details",
    "scrub_text",
]

GENESIS_HASH = "0" * 64
JOURNAL_DIR_ENV_VAR = "BVA_JOURNAL_DIR"

Stage = Literal["before", "after"]
_STAGES: tuple[str, ...] = ("before", "after")

# Field name -> accepted JSON types, in the order they are checked.
_FIELDS: dict[str, tuple[type, ...]] = {
    "seq": (int,),
    "ts": (int, float),
    "actor": (str,),
    "environment": (str,),
    "action": (str,),
    "stage": (str,),
    "target": (str,),
    "result": (str,),
    "details": (dict,),
    "prev_hash": (str,),
    "hash": (str,),
}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ENV_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")

_MAX_TEXT = 1000  # characters kept of any one string (action, target, result, detail value)
_MAX_RESULT_REASON = 300  # characters of an exception message in "failed: ..."
_MAX_DEPTH = 6  # nesting kept in details; deeper values become their (masked) text
_MAX_ITEMS = 100  # entries kept per dict/list in details
_TAIL_CHUNK = 8192


class JournalError(Exception):
    """The journal cannot be read or written; ``str()`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@dataclass(frozen=True, slots=True)
class JournalRecord:
    seq: int
    ts: float
    actor: str
    environment: str
    action: str
    stage: Stage
    target: str
    result: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """The record as one canonical JSON line (no newline): what the file holds."""
        return canonical_json(self.to_dict())

    def computed_hash(self) -> str:
        return record_hash(self.to_dict())


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    count: int  # records in an intact journal; records checked good before the break otherwise
    first_bad: int | None  # 1-based line number of the first broken record
    reason: str  # "" when ok
    last_hash: str = GENESIS_HASH  # hash of the last good record (anchor for the chain)


@dataclass(slots=True)
class JournalEntry:
    """What ``Journal.record`` yields: the "before" record, and what the "after" will say.

    The body may set ``result`` (e.g. ``"refused: deployment is paused"``) and add to
    ``details``; on an exception the result is ``"failed: <message>"`` whatever was set.
    """

    before: JournalRecord
    result: str = "ok"
    details: dict[str, Any] = field(default_factory=dict)
    after: JournalRecord | None = None


# --- hashing -------------------------------------------------------------------------------


def canonical_json(data: Mapping[str, Any]) -> str:
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def record_hash(data: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of every field except ``hash``."""
    body = {k: v for k, v in data.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("ascii")).hexdigest()


# --- secrets -------------------------------------------------------------------------------

_SECRET_KEY = re.compile(
    r"pass(?:word|wd|phrase)|pwd|token|secret|dsn|credential|api[_-]?key|private[_-]?key"
    r"|access[_-]?key|auth(?:orization)?$|cookie|session[_-]?id|bearer",
    re.IGNORECASE,
)
# URL userinfo: "scheme://user:pass@" is handled by mask_dsn; a lone "https://TOKEN@host" is
# how tokens ride in clone URLs, so an http(s) userinfo without a password is masked too.
_HTTP_LONE_USERINFO = re.compile(r"(?P<scheme>https?://)(?P<user>[^/?#\s:@]+)@", re.IGNORECASE)
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;][^=&;#\s]*(?:pass(?:word|wd)|pwd|token|secret|signature|sig|api[_-]?key"
    r"|access[_-]?key|auth)[^=&;#\s]*=)(?P<value>[^&;#\s]*)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(?P<kind>Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def scrub_text(text: str, limit: int = _MAX_TEXT) -> str:
    """``text`` with URL credentials, ``password=`` values, secret query parameters and
    bearer tokens masked as ``***``, cut to ``limit`` characters."""
    masked = mask_dsn(text)
    masked = _HTTP_LONE_USERINFO.sub(lambda m: f"{m.group('scheme')}***@", masked)
    masked = _SECRET_QUERY.sub(lambda m: f"{m.group('key')}***", masked)
    masked = _BEARER.sub(lambda m: f"{m.group('kind')} ***", masked)
    if len(masked) > limit:
        masked = masked[: limit - 1] + "…"
    return masked


def scrub_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-safe copy of ``details`` with secret-named keys dropped (at any depth) and every
    string masked. Values JSON cannot hold become their text; non-finite floats too."""
    if not details:
        return {}
    return cast(dict[str, Any], _scrub_value(dict(details), 0))


def _scrub_value(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return scrub_text(value)
    if depth >= _MAX_DEPTH:
        return scrub_text(str(value))
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = key if isinstance(key, str) else str(key)
            if is_secret_key(name):
                continue
            if len(out) >= _MAX_ITEMS:
                break
            out[scrub_text(name, 200)] = _scrub_value(item, depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_scrub_value(item, depth + 1) for item in list(items)[:_MAX_ITEMS]]
    return scrub_text(str(value))


def _one_line(text: str, limit: int) -> str:
    return scrub_text(" ".join(text.split()), limit)


def failure_text(exc: BaseException) -> str:
    """The "after" result for an action that raised: ``refused: ...`` for a refusal by the
    rules or by read-only mode, ``failed: ...`` otherwise; one masked line."""
    if isinstance(exc, asyncio.CancelledError):
        return "failed: cancelled"
    if isinstance(exc, KeyboardInterrupt):
        return "failed: interrupted"
    message = _one_line(str(exc), _MAX_RESULT_REASON) or type(exc).__name__
    kind = "refused" if isinstance(exc, ReadOnlyError | RolloutRefused) else "failed"
    return f"{kind}: {message}"


# --- where ---------------------------------------------------------------------------------


def default_actor() -> str:
    """``user@host`` of this process."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = f"uid{os.getuid()}"
    try:
        host = socket.gethostname() or "localhost"
    except OSError:
        host = "localhost"
    return f"{user}@{host}"


def journal_path(environment: str, override: str | None = None) -> Path:
    """``override``, else ``$BVA_JOURNAL_DIR/<env>.jsonl``, else the user data dir's
    ``journal/<env>.jsonl``. The environment name must be safe as a file name."""
    if override:
        return Path(override).expanduser()
    if not _ENV_NAME.fullmatch(environment) or ".." in environment:
        raise JournalError(
            f"bad environment name {environment[:60]!r} for a journal file "
            '(use letters, digits, "-", "_" and ".")'
        )
    base = os.environ.get(JOURNAL_DIR_ENV_VAR)
    directory = (
        Path(base).expanduser() if base else Path(platformdirs.user_data_dir("bva")) / "journal"
    )
    return directory / f"{environment}.jsonl"


# --- the journal ---------------------------------------------------------------------------


class Journal:
    def __init__(self, path: Path, environment: str, actor: str | None = None) -> None:
        self.path = Path(path)
        self.environment = environment
        self.actor = actor if actor is not None else default_actor()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, {self.environment!r})"

    # writing -----------------------------------------------------------------------------

    def append(
        self,
        action: str,
        target: str,
        *,
        stage: str,
        result: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> JournalRecord:
        """Append one record and return it, durable (fsynced) when this returns.

        Refuses (JournalError) a bad stage, an empty action, a "before" with a result, and a
        journal whose last line is not a whole record (truncated or corrupt): appending after
        it would hide the damage, so the action must not run until someone has looked.
        """
        if stage not in _STAGES:
            raise JournalError(f"journal stage must be 'before' or 'after', got {stage!r}")
        if not action.strip():
            raise JournalError("journal action must not be empty")
        if stage == "before" and result:
            raise JournalError("a 'before' journal record has no result")
        if stage == "after" and not result:
            raise JournalError("an 'after' journal record needs a result")
        clean_details = scrub_details(details)
        fd = self._open_for_append()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                seq, prev_hash = self._tail(fd)
                body: dict[str, Any] = {
                    "seq": seq + 1,
                    "ts": time.time(),
                    "actor": _one_line(self.actor, 200),
                    "environment": _one_line(self.environment, 200),
                    "action": _one_line(action, 200),
                    "stage": stage,
                    "target": _one_line(target, _MAX_TEXT),
                    "result": _one_line(result, _MAX_TEXT),
                    "details": clean_details,
                    "prev_hash": prev_hash,
                }
                body["hash"] = record_hash(body)
                line = (canonical_json(body) + "\n").encode("ascii")
                _write_all(fd, line)
                os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError as exc:
            raise JournalError(f"journal {self.path}: cannot write: {_os_reason(exc)}") from None
        finally:
            os.close(fd)
        return _record_from_dict(body)

    @contextlib.contextmanager
    def record(
        self, action: str, target: str, details: Mapping[str, Any] | None = None
    ) -> Iterator[JournalEntry]:
        """Journal an action around the ``with`` body: "before" on entry, "after" on exit with
        ``entry.result`` ("ok" unless the body set it) or ``failed: <message>`` if the body
        raised (the exception is re-raised). If "before" cannot be written the body does not
        run."""
        before = self.append(action, target, stage="before", details=details)
        entry = JournalEntry(before=before)
        try:
            yield entry
        except BaseException as exc:
            self._after_failure(entry, action, target, details, exc)
            raise
        entry.after = self.append(
            action,
            target,
            stage="after",
            result=entry.result or "ok",
            details=_merge(details, entry.details),
        )

    @contextlib.asynccontextmanager
    async def arecord(
        self, action: str, target: str, details: Mapping[str, Any] | None = None
    ) -> AsyncIterator[JournalEntry]:
        """``record`` for async code: the appends (which fsync) run in a thread."""
        before = await asyncio.to_thread(
            self.append, action, target, stage="before", details=details
        )
        entry = JournalEntry(before=before)
        try:
            yield entry
        except BaseException as exc:
            # Shielded from a second cancellation so the "after" record still lands.
            await asyncio.shield(
                asyncio.to_thread(self._after_failure, entry, action, target, details, exc)
            )
            raise
        entry.after = await asyncio.to_thread(
            self.append,
            action,
            target,
            stage="after",
            result=entry.result or "ok",
            details=_merge(details, entry.details),
        )

    def _after_failure(
        self,
        entry: JournalEntry,
        action: str,
        target: str,
        details: Mapping[str, Any] | None,
        exc: BaseException,
    ) -> None:
        try:
            entry.after = self.append(
                action,
                target,
                stage="after",
                result=failure_text(exc),
                details=_merge(details, entry.details),
            )
        except JournalError as journal_exc:
            exc.add_note(f"and the journal could not record it: {journal_exc}")

    def _open_for_append(self) -> int:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            created_dirs = _make_private_dirs(self.path.parent)
            existed = self.path.exists()
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise JournalError(f"journal {self.path}: cannot open: {_os_reason(exc)}") from None
        if not existed:
            with contextlib.suppress(OSError):
                os.fchmod(fd, 0o600)  # the umask may have taken more than it should
        if not existed or created_dirs:
            with contextlib.suppress(OSError):
                _fsync_dir(self.path.parent)
        return fd

    def _tail(self, fd: int) -> tuple[int, str]:
        """(seq, hash) of the last record; (0, zeros) for an empty file. Raises JournalError if
        the last line is not a whole, well-formed record."""
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, GENESIS_HASH
        last = _read_last_line(fd, size)
        if last is None:
            raise JournalError(
                f"journal {self.path}: the last line is not a whole record (file truncated or "
                "corrupt); refusing to append — run 'bva journal verify'"
            )
        try:
            data = json.loads(last)
            problem = _shape_problem(data)
        except (ValueError, UnicodeDecodeError):
            problem = "not valid JSON"
        if problem is not None:
            raise JournalError(
                f"journal {self.path}: the last record is broken ({problem}); refusing to "
                "append — run 'bva journal verify'"
            )
        return int(data["seq"]), str(data["hash"])

    # reading -----------------------------------------------------------------------------

    def records(self) -> list[JournalRecord]:
        """Every record, parsed (not verified: see ``verify``). A missing file has none.
        Raises JournalError naming the line of a malformed record."""
        out: list[JournalRecord] = []
        for number, (raw, terminated) in enumerate(self._lines(), start=1):
            data, problem = _parse_line(raw, terminated)
            if problem is not None:
                raise JournalError(f"journal {self.path}: line {number}: {problem}")
            out.append(_record_from_dict(data))
        return out

    def verify(self) -> VerifyResult:
        """Check the whole chain. Never raises for tampering: reports the first broken record
        (1-based line and why). Raises JournalError only when the file cannot be read."""
        prev_hash = GENESIS_HASH
        count = 0
        for number, (raw, terminated) in enumerate(self._lines(), start=1):
            data, problem = _parse_line(raw, terminated)
            if problem is None:
                problem = _chain_problem(data, number, prev_hash)
            if problem is not None:
                return VerifyResult(False, count, number, problem, prev_hash)
            prev_hash = data["hash"]
            count += 1
        return VerifyResult(True, count, None, "", prev_hash)

    def exists(self) -> bool:
        return self.path.is_file()

    def _lines(self) -> list[tuple[bytes, bool]]:
        """Each line's bytes, and whether it ended with a newline (only the last may not)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise JournalError(f"journal {self.path}: cannot read: {_os_reason(exc)}") from None
        if not raw:
            return []
        parts = raw.split(b"\n")
        tail = parts.pop()
        out = [(part, True) for part in parts]
        if tail:  # cut short: the writer always ends a record with a newline
            out.append((tail, False))
        return out


# --- helpers -------------------------------------------------------------------------------


def _merge(base: Mapping[str, Any] | None, extra: Mapping[str, Any]) -> dict[str, Any] | None:
    if not extra:
        return dict(base) if base else None
    merged = dict(base or {})
    merged.update(extra)
    return merged


def _parse_line(raw: bytes, terminated: bool = True) -> tuple[dict[str, Any], str | None]:
    if not raw.strip():
        return {}, "blank line"
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return {}, "not valid UTF-8"
    except ValueError:
        return {}, "not valid JSON" + ("" if terminated else " (file cut short)")
    if not terminated:
        return {}, "no newline after the last record (file cut short)"
    problem = _shape_problem(data)
    if problem is not None:
        return {}, problem
    return cast(dict[str, Any], data), None


def _shape_problem(data: object) -> str | None:
    if not isinstance(data, dict):
        return "not a JSON object"
    for name, types in _FIELDS.items():
        if name not in data:
            return f"missing field {name!r}"
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, types):
            return f"field {name!r} has the wrong type"
    extra = sorted(set(data) - set(_FIELDS))
    if extra:
        return f"unexpected field {extra[0][:40]!r}"
    if data["stage"] not in _STAGES:
        return "field 'stage' is not 'before' or 'after'"
    if isinstance(data["ts"], float) and not math.isfinite(data["ts"]):
        return "field 'ts' is not a finite number"
    for name in ("prev_hash", "hash"):
        if not _HEX64.fullmatch(data[name]):
            return f"field {name!r} is not a sha256 hex digest"
    return None


def _chain_problem(data: dict[str, Any], number: int, prev_hash: str) -> str | None:
    try:
        computed = record_hash(data)
    except ValueError:  # NaN/Infinity sneaked in a nested value
        return "not valid canonical JSON"
    if computed != data["hash"]:
        return "hash mismatch"
    seq = data["seq"]
    if seq != number:
        if seq > number:
            return f"sequence gap: expected {number}, got {seq}"
        return f"sequence out of order: expected {number}, got {seq}"
    if data["prev_hash"] != prev_hash:
        if number == 1:
            return "previous hash of the first record is not the genesis hash (64 zeros)"
        return f"previous hash does not match line {number - 1}"
    return None


def _record_from_dict(data: Mapping[str, Any]) -> JournalRecord:
    return JournalRecord(
        seq=int(data["seq"]),
        ts=float(data["ts"]),
        actor=str(data["actor"]),
        environment=str(data["environment"]),
        action=str(data["action"]),
        stage=cast(Stage, data["stage"]),
        target=str(data["target"]),
        result=str(data["result"]),
        details=dict(data["details"]),
        prev_hash=str(data["prev_hash"]),
        hash=str(data["hash"]),
    )


def _read_last_line(fd: int, size: int) -> bytes | None:
    """The last line of the file without its newline; None if the file does not end with one."""
    if os.pread(fd, 1, size - 1) != b"\n":
        return None
    pos = size - 1
    chunks: list[bytes] = []
    while pos > 0:
        start = max(0, pos - _TAIL_CHUNK)
        chunk = os.pread(fd, pos - start, start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            chunks.append(chunk[newline + 1 :])
            break
        chunks.append(chunk)
        pos = start
    return b"".join(reversed(chunks))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _make_private_dirs(directory: Path) -> bool:
    """Create the missing directories of ``directory`` with mode 0o700; True if any was."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
    return bool(missing)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_reason(exc: OSError) -> str:
    if exc.errno is not None and exc.strerror:
        return exc.strerror
    return errno.errorcode.get(exc.errno or 0, str(exc))
