"""The sandbox database's contents: database ``bharathva`` built by Flyway-style versioned
migrations (applied for real, recorded in ``flyway_schema_history`` exactly as Flyway records
them), a few rows per service, and the two roles: ``bva_monitor`` (what bva monitors with) and
``bharathva_app`` (what the simulated services use).

One migration stays pending: it is written to the migrations directory with the others but not
applied, so a reader comparing the directory with the history sees one to come.
"""

from __future__ import annotations

import re
import time
import zlib
from pathlib import Path
from typing import Any

DATABASE = "bharathva"
MONITOR_ROLE = "bva_monitor"
APP_ROLE = "bharathva_app"
SCHEMAS = ("auth", "users", "tweets")
SEED_ACCOUNTS = 40  # rows the load's random ids fall within

# (script, SQL). Versions are applied in this order; the last one is left pending.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "V1__create_auth_schema.sql",
        """CREATE SCHEMA auth;

CREATE TABLE auth.accounts (
    id         BIGSERIAL PRIMARY KEY,
    email      VARCHAR(255) NOT NULL UNIQUE,
    password   VARCHAR(100) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_login TIMESTAMPTZ
);
""",
    ),
    (
        "V2__create_sessions_and_refresh_tokens.sql",
        """CREATE TABLE auth.sessions (
    id         BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES auth.accounts (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_account_idx ON auth.sessions (account_id);

CREATE TABLE auth.refresh_tokens (
    token      VARCHAR(64) PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES auth.sessions (id) ON DELETE CASCADE,
    issued_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
""",
    ),
    (
        "V3__create_users_schema.sql",
        """CREATE SCHEMA users;

CREATE TABLE users.profiles (
    id           BIGINT PRIMARY KEY,
    handle       VARCHAR(30) NOT NULL UNIQUE,
    display_name VARCHAR(100) NOT NULL,
    bio          TEXT NOT NULL DEFAULT '',
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
""",
    ),
    (
        "V4__create_follows.sql",
        """CREATE TABLE users.follows (
    follower_id BIGINT NOT NULL REFERENCES users.profiles (id),
    followee_id BIGINT NOT NULL REFERENCES users.profiles (id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id)
);
CREATE INDEX follows_followee_idx ON users.follows (followee_id);
""",
    ),
    (
        "V5__create_tweets_schema.sql",
        """CREATE SCHEMA tweets;

CREATE TABLE tweets.tweets (
    id         BIGSERIAL PRIMARY KEY,
    author_id  BIGINT NOT NULL,
    body       VARCHAR(280) NOT NULL,
    like_count INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX tweets_author_idx ON tweets.tweets (author_id, created_at DESC);
""",
    ),
    (
        "V6__create_likes.sql",
        """CREATE TABLE tweets.likes (
    tweet_id   BIGINT NOT NULL REFERENCES tweets.tweets (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tweet_id, account_id)
);
""",
    ),
    (
        "V7__add_tweet_edited_at.sql",
        """ALTER TABLE tweets.tweets ADD COLUMN edited_at TIMESTAMPTZ;
""",
    ),
)
# What `bva sandbox drill` can do to the database (backends/sandbox/pgworld.py does it).
DRILLS = (
    "pause-replay",
    "resume-replay",
    "stop",
    "start",
    "flood",
    "calm",
    "break-migration",
    "repair-migration",
)
APPLIED = MIGRATIONS[:-1]
PENDING = MIGRATIONS[-1:]
# The drill `break-migration` drops this into the migrations directory: a release's migrate
# step then fails on it, as a migration that was never tried on staging would.
BROKEN_MIGRATION = (
    "V8__broken_on_purpose.sql",
    """ALTER TABLE tweets.tweets ADD COLUMN reach BIGINT;
UPDATE tweets.no_such_table SET reach = 0;
""",
)

FLYWAY_TABLE_DDL = """
CREATE TABLE public.flyway_schema_history (
    installed_rank INT NOT NULL,
    version VARCHAR(50),
    description VARCHAR(200) NOT NULL,
    type VARCHAR(20) NOT NULL,
    script VARCHAR(1000) NOT NULL,
    checksum INTEGER,
    installed_by VARCHAR(100) NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT now(),
    execution_time INTEGER NOT NULL,
    success BOOLEAN NOT NULL,
    CONSTRAINT flyway_schema_history_pk PRIMARY KEY (installed_rank)
);
CREATE INDEX flyway_schema_history_s_idx ON public.flyway_schema_history (success);
"""

_SEED_ROWS = f"""
INSERT INTO auth.accounts (email, password, last_login)
SELECT 'user' || i || '@bharathva.example', 'scrypt$' || md5(i::text), now() - i * interval '1 h'
  FROM generate_series(1, {SEED_ACCOUNTS}) AS i;
INSERT INTO auth.sessions (account_id, expires_at)
SELECT i, now() + interval '1 day' FROM generate_series(1, {SEED_ACCOUNTS // 2}) AS i;
INSERT INTO auth.refresh_tokens (token, session_id)
SELECT md5('refresh' || id), id FROM auth.sessions;
INSERT INTO users.profiles (id, handle, display_name)
SELECT i, 'user' || i, 'User ' || i FROM generate_series(1, {SEED_ACCOUNTS}) AS i;
INSERT INTO users.follows (follower_id, followee_id)
SELECT a, b FROM generate_series(1, {SEED_ACCOUNTS}) AS a,
                 generate_series(1, {SEED_ACCOUNTS}) AS b
 WHERE a <> b AND (a * 7 + b * 3) % 11 = 0;
INSERT INTO tweets.tweets (author_id, body)
SELECT 1 + i % {SEED_ACCOUNTS}, 'hello from the sandbox #' || i FROM generate_series(1, 120) AS i;
INSERT INTO tweets.likes (tweet_id, account_id)
SELECT t, 1 + (t * 13) % {SEED_ACCOUNTS} FROM generate_series(1, 120) AS t;
UPDATE tweets.tweets SET like_count = 1;
"""

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def flyway_checksum(text: str) -> int:
    """Flyway's checksum of a migration: CRC32 over each line's UTF-8 bytes (what Java's
    ``BufferedReader.readLine`` yields: no line endings, a leading BOM stripped), as a signed
    32-bit int. Empty lines add no bytes, so a trailing newline changes nothing."""
    crc = 0
    for line in _LINE_BREAK.split(text.removeprefix("\ufeff")):
        crc = zlib.crc32(line.encode("utf-8"), crc)
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def describe(script: str) -> tuple[str, str]:
    """(version, description) as Flyway derives them from ``V1_1__add_things.sql``."""
    m = re.fullmatch(r"V([0-9_.]+)__(.+)\.sql", script)
    if m is None:
        raise ValueError(f"not a versioned migration name: {script}")
    return m.group(1).replace("_", "."), m.group(2).replace("_", " ")


def write_migrations(directory: Path) -> None:
    """Every migration file, applied and pending, as the services' repository holds them."""
    directory.mkdir(parents=True, exist_ok=True)
    for script, sql in MIGRATIONS:
        (directory / script).write_text(sql)


def seed(admin_dsn: str, *, monitor_password: str, app_password: str) -> None:
    """Roles, database, migrations and rows on the primary. ``admin_dsn``: the superuser's
    URL for database ``postgres``; blocking."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as conn:
        for role, password in ((MONITOR_ROLE, monitor_password), (APP_ROLE, app_password)):
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
        conn.execute(f"GRANT pg_monitor TO {MONITOR_ROLE}")
        # Reads only, whatever grants it might be given later.
        conn.execute(f"ALTER ROLE {MONITOR_ROLE} SET default_transaction_read_only = on")
        # FILE_COPY: a checkpoint instead of the whole template in the WAL the replicas replay.
        conn.execute(f"CREATE DATABASE {DATABASE} OWNER {APP_ROLE} STRATEGY = FILE_COPY")
        conn.execute(f"REVOKE ALL ON DATABASE {DATABASE} FROM PUBLIC")
        conn.execute(f"GRANT CONNECT ON DATABASE {DATABASE} TO {MONITOR_ROLE}, {APP_ROLE}")
    db_dsn = admin_dsn.rsplit("/", 1)[0] + "/" + DATABASE
    with psycopg.connect(db_dsn, autocommit=True, connect_timeout=5) as conn:
        # PostgreSQL 14 still lets everyone create in public.
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        conn.execute(FLYWAY_TABLE_DDL)
        for rank, (script, text) in enumerate(APPLIED, start=1):
            _apply(conn, rank, script, text)
        conn.execute(_SEED_ROWS)
        schemas = ", ".join(SCHEMAS)
        conn.execute(f"GRANT USAGE ON SCHEMA {schemas} TO {APP_ROLE}")
        for schema in SCHEMAS:
            conn.execute(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} "
                f"TO {APP_ROLE}"
            )
            conn.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {APP_ROLE}")
        conn.execute(f"GRANT SELECT ON public.flyway_schema_history TO {MONITOR_ROLE}")
        conn.execute("ANALYZE")


def _apply(conn: Any, rank: int, script: str, text: str) -> None:
    """One migration in its own transaction with its history row, as Flyway runs it."""
    version, description = describe(script)
    with conn.transaction():
        began = time.monotonic()
        conn.execute(text)
        took = int((time.monotonic() - began) * 1000)
        conn.execute(
            "INSERT INTO public.flyway_schema_history (installed_rank, version, description, "
            "type, script, checksum, installed_by, execution_time, success) "
            "VALUES (%s, %s, %s, 'SQL', %s, %s, current_user, %s, true)",
            (rank, version, description, script, flyway_checksum(text), took),
        )
