"""docs/scaling.md's plan for Citus, checked against the schema the migrations build: every
table has its place; every primary key, unique and exclusion constraint of a distributed table
can be distributed by practitioner; no foreign key goes where Citus forbids it, unless the plan
names it as kept as a plain column. A new constraint or table that breaks the plan fails here."""

import re
from pathlib import Path

import pytest
from django.db import connection

from tests.cli import suite_engine

pytestmark = pytest.mark.skipif(
    suite_engine() != "postgresql", reason="reads PostgreSQL's catalogue: the PostgreSQL half"
)

PLAN = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"
PLACE = re.compile(r"^\| `(\w+)` \| (distributed|reference|coordinator) \|(.*)\|$")
PLAIN = re.compile(r"^\| `(\w+)\.(\w+)` \| `(\w+)` \|$")
# Rows of these tables belong to one practitioner: a column referring to one determines the
# distribution column (with the distributed tables themselves).
OWNED_BY_ONE_PRACTITIONER = {"directory_practitionerrole", "directory_practitioner"}


def plan() -> tuple[dict[str, tuple[str, str, str | None]], dict[tuple[str, str], str]]:
    places, plain = {}, {}
    for line in PLAN.read_text(encoding="utf-8").splitlines():
        if match := PLACE.match(line):
            table, kind, column = match.groups()
            found = re.match(r"`(\w+)`(?:, from `(\w+)`)?", column.strip())
            places[table] = (kind, *(found.groups() if found else (None, None)))
        elif match := PLAIN.match(line):
            plain[(match[1], match[2])] = match[3]
    return places, plain


def rows(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def tables() -> set[str]:
    return {name for (name,) in rows("select tablename from pg_tables where schemaname = 'public'")}


def foreign_keys() -> list[tuple[str, str, str]]:
    return rows(
        "select c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text "
        "from pg_constraint c join pg_attribute a "
        "on a.attrelid = c.conrelid and a.attnum = c.conkey[1] "
        "where c.contype = 'f' and c.connamespace = 'public'::regnamespace"
    )


def references() -> list[tuple[str, str, str]]:
    """Every column that refers to another table's row, as the models declare it: the
    foreign keys above, and those the database checks otherwise (a slot's role and visit type,
    by triggers on PostgreSQL) or not at all (the copies of a role's practitioner)."""
    from django.apps import apps

    return [
        (model._meta.db_table, field.column, field.related_model._meta.db_table)
        for model in apps.get_models(include_auto_created=True)
        for field in model._meta.concrete_fields
        if field.many_to_one
    ]


def unique_keys() -> list[tuple[str, str, list[str]]]:
    """Primary keys, unique constraints and unique indexes (their columns), and exclusion
    constraints (the columns they compare with =)."""
    keys = [
        (table, name, list(columns))
        for table, name, columns in rows(
            "select i.indrelid::regclass::text, i.indexrelid::regclass::text, "
            "array(select a.attname from unnest(i.indkey) k "
            "join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k) "
            "from pg_index i join pg_class c on c.oid = i.indrelid "
            "where c.relnamespace = 'public'::regnamespace and i.indisunique"
        )
    ]
    for table, name, definition in rows(
        "select conrelid::regclass::text, conname, pg_get_constraintdef(oid) from pg_constraint "
        "where contype = 'x' and connamespace = 'public'::regnamespace"
    ):
        keys.append((table, name, re.findall(r"(\w+) WITH =", definition)))
    return keys


def test_every_table_has_its_place_on_citus(db):
    places, _plain = plan()
    unplaced = sorted(tables() - set(places))
    assert not unplaced, f"docs/scaling.md places no table named {unplaced}: say where it lives"
    gone = sorted(set(places) - tables())
    assert not gone, f"docs/scaling.md places tables that no longer exist: {gone}"


def test_distributed_tables_have_their_practitioner(db):
    places, _plain = plan()
    columns = {
        (table, column)
        for table, column in rows(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = 'public'"
        )
    }
    fks = {(table, column): target for table, column, target in references()}
    for table, (kind, column, source) in places.items():
        if kind != "distributed":
            continue
        assert column == "practitioner_id", f"{table}: distributed by practitioner"
        if source is None:
            assert (table, column) in columns, f"{table} has no {column}"
        else:
            # A column to add, filled from a parent row that is distributed the same way.
            parent = fks.get((table, source))
            assert parent and places[parent][0] == "distributed", f"{table}.{source}"


def test_unique_and_exclusion_constraints_can_be_distributed(db):
    places, _plain = plan()
    distributed = {t for t, (kind, _c, _s) in places.items() if kind == "distributed"}
    owned = OWNED_BY_ONE_PRACTITIONER | distributed
    determining: dict[str, set[str]] = {table: {"practitioner_id"} for table in distributed}
    for table, column, target in references():
        if table in distributed and target in owned:
            determining[table].add(column)
    refused = [
        f"{name} on {table} ({', '.join(columns)})"
        for table, name, columns in unique_keys()
        if table in distributed
        and columns not in (["id"], ["public_id"])
        and not determining[table] & set(columns)
    ]
    assert not refused, (
        "Citus distributes a table by practitioner only if each of its unique or exclusion "
        f"constraints names the practitioner (or a row owned by one): {refused}"
    )


def test_foreign_keys_go_where_citus_allows(db):
    places, plain = plan()
    refused = []
    for table, column, target in foreign_keys():
        source_kind, target_kind = places[table][0], places[target][0]
        allowed = {
            "distributed": {"distributed", "reference"},
            "reference": {"reference"},
            "coordinator": {"coordinator", "reference"},
        }[source_kind]
        if target_kind == "distributed" and source_kind == "distributed":
            allowed_here = True  # co-located: the key gains practitioner_id on both sides
        else:
            allowed_here = target_kind in allowed or plain.get((table, column)) == target
        if not allowed_here:
            refused.append(f"{table}.{column} ({source_kind}) -> {target} ({target_kind})")
    assert not refused, f"foreign keys Citus would refuse, not in docs/scaling.md: {refused}"
