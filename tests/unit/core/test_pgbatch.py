"""How queued PostgreSQL writes are grouped into statements (paygate.db.pgbatch), checked on the SQL text."""

from __future__ import annotations

from paygate.db.pgbatch import Write, _groups, _returning_last, combinable, combine, multi_row


def _w(table: str, *, updates: bool = False, serial: bool = False, sql: str | None = None) -> Write:
    text = sql or (f"UPDATE {table} SET a=$1 WHERE id=$2" if updates else f"INSERT INTO {table} (a, b) VALUES ($1, $2)")
    return Write(text, [1, 2], table, updates, serial, combinable(text))


def _shape(batch: list[Write]) -> list[list[str]]:
    return [[w.table for w in group] for group in _groups(batch)]


def test_inserts_into_different_tables_and_one_update_each_go_as_one_statement() -> None:
    batch = [_w("intents"), _w("events"), _w("events"), _w("attempts", updates=True), _w("keys", updates=True)]
    assert _shape(batch) == [["intents", "events", "events", "attempts", "keys"]]


def test_a_second_write_to_an_updated_table_starts_a_new_statement() -> None:
    assert _shape([_w("intents", updates=True), _w("events"), _w("intents", updates=True)]) == [
        ["intents", "events"],
        ["intents"],
    ]
    assert _shape([_w("intents"), _w("intents", updates=True)]) == [["intents"], ["intents"]]


def test_inserts_into_a_numbered_table_are_never_siblings() -> None:
    assert _shape([_w("postings", serial=True), _w("events"), _w("postings", serial=True)]) == [
        ["postings", "events"],
        ["postings"],
    ]


def test_a_statement_with_quotes_or_its_own_with_goes_alone() -> None:
    quoted = _w("events", sql="UPDATE events SET s='x' WHERE id=$1")
    assert _shape([_w("a"), quoted, _w("b")]) == [["a"], ["events"], ["b"]]
    nested = _w("events", sql="WITH x AS (SELECT 1) INSERT INTO events SELECT $1, $2")
    assert _shape([_w("a"), nested]) == [["a"], ["events"]]


def test_parts_become_ctes_before_the_last_with_placeholders_renumbered() -> None:
    sql, args = combine([_w("a"), Write("UPDATE b SET x=$2 WHERE id=$1 OR id=$1", ["i", "x"], "b", True)])
    assert sql == "WITH w0 AS (INSERT INTO a (a, b) VALUES ($1, $2)) UPDATE b SET x=$4 WHERE id=$3 OR id=$3"
    assert args == [1, 2, "i", "x"]


def test_rows_of_one_insert_become_one_multi_row_insert_in_order() -> None:
    one = multi_row("INSERT INTO p (a, b) VALUES ($1::VARCHAR, $2)", "p", 2, [["x", 1], ["y", 2], ["z", 3]])
    assert one is not None
    assert one.sql == "INSERT INTO p (a, b) VALUES ($1::VARCHAR, $2), ($3::VARCHAR, $4), ($5::VARCHAR, $6)"
    assert one.args == ["x", 1, "y", 2, "z", 3]
    assert multi_row("INSERT INTO p (a) VALUES ($1) ON CONFLICT DO NOTHING", "p", 1, [[1], [2]]) is None
    assert multi_row("INSERT INTO p (a) VALUES ($1) RETURNING p.id", "p", 1, [[1], [2]]) is None


def test_a_repeated_shape_gets_the_same_text_with_its_own_arguments() -> None:
    shape = [_w("a"), _w("b", updates=True)]
    again = [Write(w.sql, [7, 8], w.table, w.updates) for w in shape]
    first, second = combine(shape), combine(again)
    assert first[0] == second[0]
    assert (first[1], second[1]) == ([1, 2, 1, 2], [7, 8, 7, 8])


def _returning(table: str) -> Write:
    text = f"INSERT INTO {table} (a, b) VALUES ($1, $2) RETURNING id"
    return Write(text, [1, 2], table, False, True, combinable(text), on_row=lambda row: None)


def test_a_returning_write_becomes_the_main_statement_of_its_group() -> None:
    group = _returning_last([_w("a"), _returning("keys"), _w("b")])
    assert [w.table for w in group] == ["a", "b", "keys"]
    sql, args = combine(group)
    assert sql.startswith("WITH w0 AS (INSERT INTO a") and sql.endswith(
        "INSERT INTO keys (a, b) VALUES ($5, $6) RETURNING id"
    )
    assert args == [1, 2, 1, 2, 1, 2]


def test_two_returning_writes_are_never_siblings() -> None:
    assert _shape([_returning("keys"), _w("a"), _returning("other")]) == [["keys", "a"], ["other"]]
