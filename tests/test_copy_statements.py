"""Whole-chunk reads are cut into INSERT statements straight from the aggregated bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.copy.sqlgen import blob_statements

PREFIX = b"REPLACE INTO `d`.`t` (`a`) VALUES "
# rendered rows: a tuple's text may hold commas, parentheses and quotes, never NUL
rows_st = st.lists(st.binary(min_size=1, max_size=300).map(lambda b: b"(" + b.replace(b"\0", b"\\0") + b")"),
                   min_size=1, max_size=200)


@settings(max_examples=300, deadline=None)
@given(rows=rows_st, limit=st.integers(min_value=1, max_value=3000))
def test_statements_hold_every_row_once_in_order_cut_at_row_boundaries(rows, limit):
    statements = blob_statements(PREFIX, b"\0".join(rows), limit)
    i = 0
    for stmt in statements:
        assert stmt.startswith(PREFIX)
        body = stmt[len(PREFIX):]
        group = []
        while b",".join(group) != body:  # the next rows, whole, make up exactly this statement
            assert i < len(rows) and len(b",".join(group)) < len(body), (body, group)
            group.append(rows[i])
            i += 1
        assert len(stmt) <= max(limit, len(PREFIX) + len(group[0])) or len(group) == 1
    assert i == len(rows)
