"""The one statement a refresh sends to each server.

Everything comes back as a single JSON value so a refresh is one round trip however much it
reads. Only catalog views and functions a pg_monitor member may use; without pg_monitor
PostgreSQL hides other sessions' query text and most of pg_stat_replication, and the answer
says so (``monitor``) instead of failing.
"""

from __future__ import annotations

QUERY_CHARS = 300  # of each session's query text; the screen truncates further

_FLYWAY_STATE = """CASE WHEN to_regclass('{flyway}') IS NULL THEN 'absent'
       WHEN has_table_privilege(to_regclass('{flyway}'), 'SELECT') THEN 'readable'
       ELSE 'denied' END"""

_SERVER = """
  'version', current_setting('server_version'),
  'started', extract(epoch FROM pg_postmaster_start_time()),
  'now', extract(epoch FROM now()),
  'in_recovery', pg_is_in_recovery(),
  'max_connections', current_setting('max_connections')::int,
  'database', current_database(),
  'monitor', pg_has_role(current_user, 'pg_monitor', 'MEMBER'),
  'flyway_table', {state}
"""

_SESSIONS = f"""
  'sessions', (SELECT coalesce(json_agg(a), '[]') FROM (
    SELECT pid, coalesce(application_name, '') AS app, coalesce(usename, '') AS usr,
           coalesce(datname, '') AS db,
           coalesce(state, '') AS state,
           coalesce(wait_event_type || ':' || wait_event, '') AS wait,
           extract(epoch FROM now() - query_start) AS query_s,
           extract(epoch FROM now() - xact_start) AS xact_s,
           left(query, {QUERY_CHARS}) AS query,
           pg_blocking_pids(pid) AS blocked_by
      FROM pg_stat_activity
     WHERE pid <> pg_backend_pid()
       -- Without pg_monitor another role's backend_type reads NULL: a row in a database
       -- is then taken for a client (background processes have no database).
       AND coalesce(backend_type, CASE WHEN datid IS NOT NULL THEN 'client backend' END)
           = 'client backend') a)
"""

# Byte gaps with pg_wal_lsn_diff as pgcenter does; backup and rewind clients are not standbys.
_STANDBYS = """
  'standbys', CASE WHEN pg_is_in_recovery() THEN '[]'::json ELSE (
    SELECT coalesce(json_agg(r), '[]') FROM (
      SELECT coalesce(application_name, '') AS name, coalesce(client_addr::text, 'local') AS client,
             coalesce(state, '') AS state, coalesce(sync_state, '') AS sync_state,
             extract(epoch FROM write_lag) AS write_lag,
             extract(epoch FROM flush_lag) AS flush_lag,
             extract(epoch FROM replay_lag) AS replay_lag,
             pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS gap
        FROM pg_stat_replication
       WHERE coalesce(application_name, '') NOT IN ('pg_basebackup', 'pg_rewind')
       ORDER BY application_name) r) END
"""

# Lag as postgres_exporter computes it: 0 once everything received is replayed, so an idle
# primary does not read as a stalled replica.
_REPLICA = """
  'replica', CASE WHEN NOT pg_is_in_recovery() THEN NULL ELSE json_build_object(
    'receive', pg_last_wal_receive_lsn()::text,
    'replay', pg_last_wal_replay_lsn()::text,
    'gap', pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint,
    'lag', CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                ELSE greatest(0, coalesce(
                    extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0))
           END,
    'paused', pg_is_wal_replay_paused(),
    'receiver', coalesce((SELECT status FROM pg_stat_wal_receiver LIMIT 1), '')) END
"""

_FLYWAY = """
  'flyway', (SELECT coalesce(json_agg(f ORDER BY f.installed_rank), '[]') FROM (
    SELECT installed_rank, version, description, type, script, checksum,
           extract(epoch FROM installed_on) AS installed_on, execution_time, success
      FROM {flyway}) f)
"""


def refresh_sql(*, flyway_table: str, with_flyway: bool) -> str:
    """The statement for one server. ``with_flyway`` only once the table is known to exist:
    naming a missing table fails the whole statement at parse time."""
    state = _FLYWAY_STATE.format(flyway=flyway_table)
    parts = [_SERVER.format(state=state), _SESSIONS, _STANDBYS, _REPLICA]
    if with_flyway:
        parts.append(_FLYWAY.format(flyway=flyway_table))
    return "SELECT json_build_object(" + ",".join(parts) + ")"


def flyway_probe_sql(flyway_table: str) -> str:
    """Whether the history table is there and readable: 'absent', 'readable' or 'denied'."""
    return "SELECT " + _FLYWAY_STATE.format(flyway=flyway_table)
