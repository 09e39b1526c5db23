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
import json
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import platformdirs

from backends.journal.records import (
    GENESIS_HASH,
    STAGES,
    JournalEntry,
    JournalError,
    JournalRecord,
    VerifyResult,
    canonical_json,
    chain_problem,
    parse_line,
    record_from_dict,
    record_hash,
    shape_problem,
)
from backends.journal.scrub import MAX_TEXT, failure_text, one_line, scrub_details

JOURNAL_DIR_ENV_VAR = "BVA_JOURNAL_DIR"

_ENV_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")
_TAIL_CHUNK = 8192


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
        if stage not in STAGES:
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
                    "actor": one_line(self.actor, 200),
                    "environment": one_line(self.environment, 200),
                    "action": one_line(action, 200),
                    "stage": stage,
                    "target": one_line(target, MAX_TEXT),
                    "result": one_line(result, MAX_TEXT),
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
        return record_from_dict(body)

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
            problem = shape_problem(data)
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
            data, problem = parse_line(raw, terminated)
            if problem is not None:
                raise JournalError(f"journal {self.path}: line {number}: {problem}")
            out.append(record_from_dict(data))
        return out

    def verify(self) -> VerifyResult:
        """Check the whole chain. Never raises for tampering: reports the first broken record
        (1-based line and why). Raises JournalError only when the file cannot be read."""
        prev_hash = GENESIS_HASH
        count = 0
        for number, (raw, terminated) in enumerate(self._lines(), start=1):
            data, problem = parse_line(raw, terminated)
            if problem is None:
                problem = chain_problem(data, number, prev_hash)
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
