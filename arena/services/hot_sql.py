"""Plain SQL for the hot path (hand-out and votes), as prepared statements on PostgreSQL.

Django's psycopg cursors bind parameters on the client, so PostgreSQL parses and plans every
statement afresh; for the short joins of the hand-out and the vote, planning cost more than running
(about 1 ms against 0.1 ms each, most of PostgreSQL's CPU per vote cycle). Here PostgreSQL gets
server-side parameters and named prepared statements (psycopg keeps them per connection), so each
statement is planned once per pooled connection. Elsewhere (SQLite) the Django cursor runs the same
SQL. Errors come out as Django's database exceptions either way.

Statements that run here must type their parameters where PostgreSQL cannot infer them (e.g. a
NULL in a SELECT list: write ``%s::bigint``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from django.db import connection

Params = Sequence[Any] | Mapping[str, Any]


def fetchone(sql: str, params: Params) -> tuple | None:
    return _run(sql, params, fetch="one")


def fetchall(sql: str, params: Params) -> list[tuple]:
    return _run(sql, params, fetch="all")


def execute(sql: str, params: Params) -> int:
    """Run a statement that returns no rows; the number of rows it changed."""
    return _run(sql, params, fetch="rowcount")


def _run(sql: str, params: Params, fetch: str) -> Any:
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return _result(cursor, fetch)
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return _result(cursor, fetch)


def _result(cursor: Any, fetch: str) -> Any:
    if fetch == "rowcount":
        return cursor.rowcount
    return cursor.fetchone() if fetch == "one" else cursor.fetchall()
