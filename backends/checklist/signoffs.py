"""Sign-offs for the pending release, kept in the cluster beside the release lock (a Lease of
their own, compare-and-swap on its version), so a second engineer on another terminal sees
them and co-signs; each one journalled. They belong to one version: signing for another
version starts a fresh set, because a review of 1.2.0 says nothing about 1.3.0."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from backends.checklist.models import SignOff, SignoffRecord, SignoffStore
from backends.config.checklist import ChecklistConfig, ChecklistItem
from backends.errors import BvaError, Conflict
from backends.sanitize import sanitize_text

ATTEMPTS = 5  # compare-and-swap retries when two people sign at the same moment


class SignoffError(BvaError):
    """A sign-off refused (not allowed for that item, read-only); one line."""


def may_sign(config: ChecklistConfig, item: ChecklistItem, who: str) -> str:
    """ "" when ``who`` may sign ``item``, else why not (for the one-line refusal)."""
    allowed = item.signoff or []
    if "anyone" in allowed:
        return ""
    roles = [r for r in allowed if who in config.roles.get(r, [])]
    if roles:
        return ""
    return f"{who} may not sign {item.title!r}: it needs {' or '.join(allowed)}"


async def read_for(store: SignoffStore, release_version: str) -> tuple[SignOff, ...]:
    record = await store.read_signoffs()
    if record is None or record.release_version != release_version:
        return ()
    return record.signoffs


async def sign(
    store: SignoffStore,
    config: ChecklistConfig,
    item: ChecklistItem,
    *,
    release_version: str,
    who: str,
    comment: str = "",
    clock: Callable[[], float] = time.time,
) -> tuple[SignOff, ...]:
    """Add ``who``'s sign-off of ``item`` for ``release_version`` (a second one by the same
    person replaces the first); returns every sign-off now held for that version."""
    who = sanitize_text(who.strip(), 80)
    if not who:
        raise SignoffError("a sign-off needs a name")
    if item.automated:
        raise SignoffError(f"{item.title!r} is a check bva runs, not a sign-off")
    refused = may_sign(config, item, who)
    if refused:
        raise SignoffError(refused)
    mine = SignOff(item.id, who, clock(), sanitize_text(comment.strip(), 300))
    for _ in range(ATTEMPTS):
        current = await store.read_signoffs()
        kept: Sequence[SignOff] = ()
        if current is not None and current.release_version == release_version:
            kept = [s for s in current.signoffs if (s.item, s.who) != (mine.item, mine.who)]
        record = SignoffRecord(
            release_version, (*kept, mine), current.version if current is not None else ""
        )
        try:
            written = await store.write_signoffs(record)
        except Conflict:
            continue  # someone co-signed in between: read theirs and add ours again
        return written.signoffs
    raise SignoffError("the sign-offs kept changing under us; try again")
