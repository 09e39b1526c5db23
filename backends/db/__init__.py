"""The database adapter: what bva reads from the platform's PostgreSQL primary and replicas.

Owns the catalog queries, the psycopg connections (read-only, bounded by connect and
statement timeouts), the Flyway history and migration-file reading, and the immutable
picture models. May import backends.config, backends.errors and backends.sanitize; never
Textual, the orchestrators or the sandbox. Screens and the CLI see only ``models``.
"""
