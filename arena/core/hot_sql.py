"""Plain SQL for the hot path (hand-out and votes), as prepared statements on PostgreSQL.

Django's psycopg cursors bind parameters on the client, so PostgreSQL parses and plans every
statement afresh; for the short joins of the hand-out and the vote, planning cost more than running
(about 1 ms against 0.1 ms each, most of PostgreSQL's CPU per vote cycle). Here PostgreSQL gets
server-side parameters and named prepared statements (psycopg keeps them per connection), so each
statement is planned once per pooled connection. Elsewhere (SQLite) the Django cursor runs the same
SQL. Errors come out as Django's database exceptions either way.

Statements that run here must type their parameters where PostgreSQL cannot infer them (e.g. a
NULL in a SELECT list: write ``%s::bigint``).

``sql()`` and ``columns()`` write the models' table names and INSERT column lists into such
statements, once, when the module that holds them is imported: the raw SQL of the hot path and of the
ratings' fold names its tables and columns the way the models do, and a field named in a column list
that the model lacks fails at import, not on a vote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from django.db import connection
from django.db.models import Model

Params = Sequence[Any] | Mapping[str, Any]

# {name}; JSON literals such as '{}' and the %(name)s parameters do not match.
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def sql(text: str, *models: type[Model], **parts: str) -> str:
    """``text`` with the names of ``models`` and the ``parts`` written in.

    ``{battle}`` becomes the table of the model named Battle, and ``{name}`` the text ``parts[name]``
    (e.g. a column list from ``columns``, or another statement, which went through ``sql`` itself:
    parts go in as they are). Any other ``{name}`` is left for a later ``str.format`` with the parts
    that change per call (e.g. ``{extra}``). Meant for module constants, so the substitution costs
    nothing per statement.
    """
    names = {model._meta.model_name: model._meta.db_table for model in models}
    if clash := names.keys() & parts.keys():
        raise ValueError(f"{sorted(clash)} name both a model and a part")
    names.update(parts)
    return _PLACEHOLDER.sub(lambda match: names.get(match[1], match[0]), text)


def columns(model: type[Model], *fields: str) -> str:
    """The columns of these fields of ``model``, comma-separated (an INSERT's column list)."""
    return ", ".join(model._meta.get_field(field).column for field in fields)


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
    with connection.wrap_database_errors:
        cursor = _cursor(connection.connection)
        cursor.execute(sql, params, prepare=True)
        return _result(cursor, fetch)


def _cursor(raw: psycopg.Connection) -> psycopg.Cursor:
    """The connection's own cursor for hot statements, kept on the connection as long as it lives: a new
    cursor starts with empty caches of the loaders and dumpers of its columns and parameters (about
    12 us per statement here). A connection serves one thread at a time, and each statement's rows are
    read before the next runs. (On the connection, not in a weak-keyed map: a cursor refers to its
    connection, so a map's entry would keep every connection the pool ever dropped.)"""
    cursor = getattr(raw, "_arena_hot_cursor", None)
    if cursor is None or cursor.closed:
        cursor = raw._arena_hot_cursor = psycopg.Cursor(raw)
    return cursor


def _result(cursor: Any, fetch: str) -> Any:
    if fetch == "rowcount":
        return cursor.rowcount
    return cursor.fetchone() if fetch == "one" else cursor.fetchall()
