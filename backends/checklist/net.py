"""The checklist's network checks — a TLS certificate (``net_tls``), a DNS name (``net_dns``),
a container image (``net_registry``) — and what they share: the finding type and the state
vocabulary.

Each check is one async function returning a ``NetFinding`` and never raising for anything
the network or a server does. They share one vocabulary, so the checklist can count them:

- ``pass``: the check got an answer and the answer is good;
- ``warn``: an answer that is usable today but wants attention (a certificate close to its
  end, a plain-HTTP endpoint);
- ``fail``: an answer that is wrong — the thing exists and is broken, or is known not to
  exist (an expired or untrusted certificate, a name that does not resolve, an image the
  registry does not have, a malformed reference);
- ``unknown``: no answer — unreachable, timed out, a resolver or registry failing — so the
  check cannot say either way. A network outage must never read as "the release is bad",
  nor as "the release is fine".

Every check is bounded by its ``timeout`` as a whole (connection, handshake, retries and
token flow together), because one stuck check would otherwise stall the whole checklist.
Evidence is one sanitised line and never contains a credential.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from backends.sanitize import sanitize_text

__all__ = ["NetFinding", "NetState", "finding"]

NetState = Literal["pass", "warn", "fail", "unknown"]

_REDACTED: Final = "[redacted]"


@dataclass(frozen=True, slots=True)
class NetFinding:
    """One network check's answer. ``state`` is one of ``pass``/``warn``/``fail``/``unknown``
    (the module docstring says which is which); ``evidence`` is one sanitised line that never
    holds a secret; ``duration_s`` is how long the check took, wall-clock."""

    state: NetState
    evidence: str
    duration_s: float


def finding(
    state: NetState, evidence: str, started: float, secrets: Iterable[str | None] = ()
) -> NetFinding:
    """A check's ``NetFinding``, timed from ``started`` (a ``time.monotonic()`` reading),
    with every non-empty ``secrets`` value redacted from the evidence and the line sanitised."""
    # Secrets are scrubbed before sanitising: sanitising could split a secret (escapes,
    # truncation) into a form a plain replace would no longer find.
    for secret in secrets:
        if secret:
            evidence = evidence.replace(secret, _REDACTED)
    return NetFinding(state, sanitize_text(evidence), time.monotonic() - started)
