"""The REPLACE statements sync writes: the generated row formatter (apply.row_formatter) must give
the same SQL text as formatting every value by its type (apply.literal_maker), value for value,
whatever types a column's values turn out to have (NULLs, a zero date's text among datetimes, a
string where numbers were seen), and quote strings by the target connection's rules."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from migrator.db import connect, query
from migrator.sync.apply import Route, literal_maker, replace_sql

ROWS = [
    {"id": 1, "d": Decimal("0.0000001"), "ts": datetime(2024, 2, 29, 1, 2, 3, 4), "day": date(2024, 1, 1),
     "s": "it's a \\ back\nslash \x00 \U0001F600", "b": b"\x00'\\", "f": 1.5, "t": timedelta(hours=-1, microseconds=1),
     "n": None},
    {"id": 2, "d": Decimal("-12345678901234567890.1234"), "ts": "0000-00-00 00:00:00", "day": "2024-05-00",
     "s": "", "b": b"", "f": -0.0, "t": timedelta(0), "n": 7},
    {"id": None, "d": None, "ts": None, "day": None, "s": None, "b": None, "f": None, "t": None, "n": "x'y"},
    {"id": 2**64 - 1, "d": Decimal("1E+3"), "ts": datetime(1000, 1, 1), "day": date(9999, 12, 31), "s": "ok",
     "b": b"\xff", "f": 3e-300, "t": timedelta(days=34, seconds=3599), "n": True},
]


def generic_sql(route: Route, rows: list[dict], lit) -> str:
    from migrator.db import qualified, quote_ident

    values = ",".join("(" + ",".join(lit(v) for v in route.values_of(r)) + ")" for r in rows)
    return (f"REPLACE INTO {qualified(route.target_database, route.target_table)} "
            f"({','.join(quote_ident(c) for c in route.columns)}) VALUES {values}")


def test_generated_row_text_equals_per_value_literals(target):
    route = Route(table_id="s.d.t", target_database="d", target_table="t", key=["id"], columns=list(ROWS[0]))
    sharded = Route(table_id="s.d.t", target_database="d", target_table="t", key=["id", "src"],
                    columns=list(ROWS[0]) + ["src"], source_value="src1/d'b", source_column="src")
    with connect(target, "target") as conn:
        for mode in ("", "NO_BACKSLASH_ESCAPES"):
            query(conn, "SET SESSION sql_mode = %s", (mode,))
            lit = literal_maker(conn)
            quoted = "''''" if mode else "'\\''"
            assert lit("'") == quoted == lit.quote_str("'"), "the connection's escaping rules were not followed"
            for r in (route, sharded):
                for rows in (ROWS, ROWS[1:], ROWS[2:], ROWS[::-1]):  # each order: other value types seen first
                    assert replace_sql(r, rows, lit) == generic_sql(r, rows, lit)
            # a row without some column: written as NULL, as before
            assert replace_sql(route, [{"id": 5}], lit) == generic_sql(route, [{"id": 5}], lit)
