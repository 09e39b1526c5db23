"""Simulated database load: each service that has a database holds its own pool of
connections (``application_name`` = the service), reads on the replicas and writes on the
primary at a rate that follows its ready pods, so pg_stat_activity, pg_stat_replication and
the replicas' lag are live. A service scaled to no ready pod holds no connection, as a real
one's pool goes with its pods: that is how a restore drains the application. Now and then a
slow query (for "longest running") and a short row lock wait (for "blocked by"). It survives
servers going away: every worker reconnects with backoff and never raises."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg

# Pool sizes per service: 9 of the platform's pool of 20 (45 %), well under the 80 % alert.
POOLS: dict[str, int] = {"auth-service": 3, "user-service": 2, "tweet-service": 4}
BASE_INTERVAL_S = 0.6  # between one connection's queries with one ready pod
SLOW_EVERY = 25  # about one query in SLOW_EVERY is a 1 to 3 s one
LOCK_EVERY_S = (20.0, 40.0)  # a row lock wait now and then

_WRITES = {
    "auth-service": (
        "UPDATE auth.accounts SET last_login = now() WHERE id = %s",
        "INSERT INTO auth.sessions (account_id, expires_at) VALUES (%s, now() + interval '1 h')",
    ),
    "user-service": ("UPDATE users.profiles SET display_name = display_name WHERE id = %s",),
    "tweet-service": (
        "INSERT INTO tweets.tweets (author_id, body) VALUES (%s, 'sandbox load')",
        "UPDATE tweets.tweets SET like_count = like_count + 1 WHERE id = %s",
    ),
}
_READS = {
    "auth-service": "SELECT id, email FROM auth.accounts WHERE id = %s",
    "user-service": "SELECT count(*) FROM users.follows WHERE follower_id = %s",
    "tweet-service": (
        "SELECT id, body FROM tweets.tweets WHERE author_id = %s ORDER BY id DESC LIMIT 20"
    ),
}
_SLOW = {
    "auth-service": "SELECT count(*), pg_sleep(%s) FROM auth.sessions",
    "user-service": "SELECT count(*), pg_sleep(%s) FROM users.follows",
    "tweet-service": "SELECT count(*), pg_sleep(%s) FROM tweets.tweets",
}


@dataclass(frozen=True, slots=True)
class Target:
    primary: str  # DSN of the primary, for the services' role
    replicas: tuple[str, ...]


class DbLoad:
    def __init__(
        self,
        target: Target,
        ready_pods: Callable[[str], int],
        *,
        accounts: int = 40,
        seed: int = 1,
        pools: dict[str, int] | None = None,
        slow_every: int = SLOW_EVERY,
        lock_every_s: tuple[float, float] = LOCK_EVERY_S,
    ) -> None:
        self._target = target
        self._ready = ready_pods
        self._accounts = accounts
        self._rng = random.Random(seed)
        self._pools = dict(POOLS if pools is None else pools)
        self._slow_every = slow_every
        self._lock_every = lock_every_s
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        replicas = self._target.replicas or (self._target.primary,)
        for service, size in self._pools.items():
            writers = max(1, (size + 1) // 2)
            for i in range(size):
                if i < writers:
                    dsn, reads = self._target.primary, False
                else:
                    dsn, reads = replicas[i % len(replicas)], True
                self._tasks.append(asyncio.create_task(self._worker(service, dsn, reads)))
            if service == "tweet-service":
                self._tasks.append(asyncio.create_task(self._lock_waits(service)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def _connect(self, service: str, dsn: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
        return await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, application_name=service, connect_timeout=2
        )

    async def _worker(self, service: str, dsn: str, reads: bool) -> None:
        backoff = 0.5
        while True:
            await self._until_serving(service)
            try:
                async with await self._connect(service, dsn) as conn:
                    backoff = 0.5
                    while self._ready(service) > 0:
                        await asyncio.sleep(self._interval(service))
                        if self._ready(service) > 0:
                            await self._one_query(conn, service, reads)
            except (psycopg.Error, OSError):
                # A drill stopped the server, or it restarts: try again a little later.
                await asyncio.sleep(backoff * (0.5 + self._rng.random()))
                backoff = min(backoff * 2, 5.0)

    async def _until_serving(self, service: str) -> None:
        # The ready count is the simulated cluster's, with no event to wait on.
        while self._ready(service) <= 0:  # noqa: ASYNC110
            await asyncio.sleep(0.25)

    def _interval(self, service: str) -> float:
        pods = max(0, self._ready(service))
        if pods == 0:
            return 2.0  # nobody is serving requests: the pool sits idle
        return BASE_INTERVAL_S / pods * (0.5 + self._rng.random())

    async def _one_query(
        self, conn: psycopg.AsyncConnection[tuple[object, ...]], service: str, reads: bool
    ) -> None:
        account = 1 + self._rng.randrange(self._accounts)
        if reads:
            if self._rng.randrange(self._slow_every) == 0:
                await conn.execute(_SLOW[service], (round(1 + 2 * self._rng.random(), 2),))
            else:
                await conn.execute(_READS[service], (account,))
            return
        statements: Sequence[str] = _WRITES[service]
        await conn.execute(statements[self._rng.randrange(len(statements))], (account,))

    async def _lock_waits(self, service: str) -> None:
        """One session holds a row lock for a moment while another wants the same row."""
        while True:
            await asyncio.sleep(self._rng.uniform(*self._lock_every))
            await self._until_serving(service)
            try:
                async with (
                    await self._connect(service, self._target.primary) as holder,
                    await self._connect(service, self._target.primary) as waiter,
                ):
                    row = "UPDATE tweets.tweets SET like_count = like_count WHERE id = 1"
                    async with holder.transaction():
                        await holder.execute(row)
                        blocked = asyncio.create_task(waiter.execute(row))
                        await asyncio.sleep(2.0)
                    await asyncio.wait_for(blocked, 5.0)
            except (psycopg.Error, OSError, TimeoutError):
                await asyncio.sleep(1.0)
