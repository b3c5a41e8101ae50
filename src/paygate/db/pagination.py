"""Stripe-style cursor pagination over ``(created, id)``, newest first.

``starting_after=X`` returns objects older than X; ``ending_before=X`` returns the page just newer than X (still
listed newest first). ``created`` filters accept an integer or ``{gt, gte, lt, lte}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator
from sqlalchemy import ColumnElement, Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.kit.errors import ResourceMissing
from paygate.kit.params import Expand, Params, _int

__all__ = ["CreatedFilter", "ListParams", "list_page"]

Int = Annotated[int, BeforeValidator(_int)]


class CreatedFilter(Params):
    gt: Int | None = None
    gte: Int | None = None
    lt: Int | None = None
    lte: Int | None = None


def _created(value: Any) -> Any:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return {"gte": value, "lte": value}
    return value


# What ``created`` accepts, as documented: a Unix timestamp (exactly that second) or a range.
_CREATED_SCHEMA = {
    "anyOf": [{"type": "integer"}, CreatedFilter.model_json_schema(), {"type": "null"}],
    "default": None,
}


class ListParams(Params):
    limit: Annotated[Int, Field(ge=1, le=100)] = 10
    starting_after: str | None = None
    ending_before: str | None = None
    created: Annotated[CreatedFilter | None, BeforeValidator(_created), WithJsonSchema(_CREATED_SCHEMA)] = None
    expand: Expand | None = None

    @model_validator(mode="after")
    def _one_cursor(self) -> ListParams:
        if self.starting_after and self.ending_before:
            raise ValueError("You may only specify one of these parameters: starting_after, ending_before.")
        return self


def _created_clauses(table: Table, created: CreatedFilter | None) -> list[ColumnElement[bool]]:
    if created is None:
        return []
    c = table.c.created
    out: list[ColumnElement[bool]] = []
    if created.gt is not None:
        out.append(c > created.gt)
    if created.gte is not None:
        out.append(c >= created.gte)
    if created.lt is not None:
        out.append(c < created.lt)
    if created.lte is not None:
        out.append(c <= created.lte)
    return out


async def list_page(
    conn: AsyncConnection,
    table: Table,
    *,
    scope: Sequence[ColumnElement[bool]],
    params: ListParams,
    url: str,
    kind: str,
    serialize: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """One page of ``table`` rows matching ``scope`` (which must include the merchant/mode filter)."""
    where = [*scope, *_created_clauses(table, params.created)]
    cursor_id = params.starting_after or params.ending_before
    newer = params.ending_before is not None
    if cursor_id:
        anchor = (
            await conn.execute(select(table.c.created, table.c.id).where(*scope, table.c.id == cursor_id))
        ).first()
        if anchor is None:
            raise ResourceMissing(kind, cursor_id, param="ending_before" if newer else "starting_after")
        ac, aid = anchor
        if newer:
            where.append(or_(table.c.created > ac, and_(table.c.created == ac, table.c.id > aid)))
        else:
            where.append(or_(table.c.created < ac, and_(table.c.created == ac, table.c.id < aid)))
    order = (table.c.created.asc(), table.c.id.asc()) if newer else (table.c.created.desc(), table.c.id.desc())
    rows = [
        dict(r)
        for r in (await conn.execute(select(table).where(*where).order_by(*order).limit(params.limit + 1))).mappings()
    ]
    has_more = len(rows) > params.limit
    rows = rows[: params.limit]
    if newer:
        rows.reverse()
    return {"object": "list", "data": [serialize(r) for r in rows], "has_more": has_more, "url": url}
