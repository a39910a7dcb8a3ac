"""Many rows in one statement: `INSERT … <rows> ON CONFLICT …`, returning what the tail's RETURNING gives.

PostgreSQL: the rows are COPYed into a temporary staging table (one per
target, created once per database session, `ON COMMIT DELETE ROWS`, no WAL),
in binary, then moved by one `INSERT … SELECT` that empties the staging table as it reads
it (`WITH staged AS (DELETE … RETURNING *)`), so a second batch in the same
transaction never sees the first one's rows. COPY encodes rows in psycopg's C
code: no per-value quoting in Python, no parameter list to parse, one round
trip for the data whatever its size.

SQLite (the embedded default), which has no COPY: `VALUES` in chunks.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.models import Model

_SQLITE_CHUNK = 1000  # rows per INSERT: stays below SQLite's parameter limit for the tables here


def bulk_insert(
    model: type[Model],
    columns: Sequence[str],
    pg_types: Sequence[str],
    rows: Sequence[Sequence],
    tail: str,
    *,
    order_by: Sequence[str] = (),
) -> list[tuple]:
    """`INSERT INTO model (columns) <rows> <tail>`; returns RETURNING's rows if `tail` has one.

    `pg_types` are the PostgreSQL types of the columns (the staging table's; values must be of
    them exactly, e.g. floats for float8, as COPY goes in binary);
    `order_by` orders the rows as they reach the target, e.g. so concurrent
    upserts lock rows in the same order."""
    q = connection.ops.quote_name
    names = ", ".join(q(c) for c in columns)
    head = f"INSERT INTO {q(model._meta.db_table)} ({names}) "
    returning = " RETURNING " in f" {tail} "
    with connection.cursor() as cursor:  # opens the connection if needed
        if connection.vendor != "postgresql":
            out: list[tuple] = []
            row_sql = "(" + ",".join(["%s"] * len(columns)) + ")"
            for start in range(0, len(rows), _SQLITE_CHUNK):
                chunk = rows[start : start + _SQLITE_CHUNK]
                values = ",".join([row_sql] * len(chunk))
                cursor.execute(f"{head}VALUES {values} {tail}", [v for row in chunk for v in row])
                if returning:
                    out += cursor.fetchall()
            return out
        stage = q(f"stage_{model._meta.db_table}")
        # The driver's own cursor: Django's wrapper has no COPY. Same connection, same transaction.
        with connection.connection.cursor() as raw:
            definition = ", ".join(f"{q(c)} {t}" for c, t in zip(columns, pg_types, strict=True))
            # IF NOT EXISTS every time: a rolled-back transaction also rolls back the table's creation.
            raw.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} ({definition}) ON COMMIT DELETE ROWS")
            with raw.copy(f"COPY {stage} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(list(pg_types))  # binary: no number or date formatting and parsing either side
                for row in rows:
                    copy.write_row(row)
            order = f" ORDER BY {', '.join(q(c) for c in order_by)}" if order_by else ""
            raw.execute(
                f"WITH staged AS (DELETE FROM {stage} RETURNING *) {head}SELECT {names} FROM staged{order} {tail}"
            )
            return raw.fetchall() if returning else []


def upsert(
    model: type[Model],
    columns: Sequence[str],
    pg_types: Sequence[str],
    key: Sequence[str],
    added: Sequence[str],
    rows: Sequence[Sequence],
    returning: str = "",
) -> list[tuple]:
    """Insert rows or add their `added` columns to the stored ones (`c = c + excluded.c`).

    Rows reach the table in `key` order, so concurrent upserts take their row locks in
    the same order and cannot deadlock on each other."""
    q = connection.ops.quote_name
    table = q(model._meta.db_table)
    sets = ", ".join(f"{q(c)} = {table}.{q(c)} + excluded.{q(c)}" for c in added)
    tail = f"ON CONFLICT ({', '.join(q(c) for c in key)}) DO UPDATE SET {sets}" + (
        f" RETURNING {returning}" if returning else ""
    )
    return bulk_insert(model, columns, pg_types, rows, tail, order_by=key)
