"""Model instances from the rows of a hand-written statement, for the few hot paths where
building and compiling a queryset costs more than the query (issue 18): the columns of a model
for a SELECT, and its instance from that part of a row, with the same conversions the ORM
applies (SQLite's dates and booleans, JSON)."""

from functools import cache

from django.db import connections
from django.db.models import Model


def columns(model: type[Model], alias: str) -> str:
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


def width(model: type[Model]) -> int:
    return len(model._meta.concrete_fields)


@cache
def _converters(model: type[Model], database: str) -> list[tuple]:
    connection = connections[database]
    found = []
    for field in model._meta.concrete_fields:
        column = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
        found.append((column, converters))
    return found


@cache
def _names(model: type[Model]) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


def instance(model: type[Model], database: str, values) -> Model | None:
    """The instance whose columns ``values`` are (in ``columns`` order), or None when the
    row had none (a LEFT JOIN that found nothing: its key is NULL)."""
    if values[0] is None:
        return None
    connection = connections[database]
    converted = []
    for value, (column, converters) in zip(values, _converters(model, database), strict=True):
        for converter in converters:
            value = converter(value, column, connection)
        converted.append(value)
    return model.from_db(database, _names(model), converted)


def read_one(database: str, sql: str, params: list, models: list[type[Model]]) -> list | None:
    """One row of ``sql`` (its columns: each model's ``columns`` in turn) as one instance of
    each model (None for a LEFT JOIN that found nothing), or None when there is no row."""
    with connections[database].cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    found, start = [], 0
    for model in models:
        found.append(instance(model, database, row[start : start + width(model)]))
        start += width(model)
    return found
