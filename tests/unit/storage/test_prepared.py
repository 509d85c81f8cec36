"""Prepared selects give exactly what SQLAlchemy's own execution gives, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from minicloud.storage.metadata.db import Database
from minicloud.storage.metadata.prepared import Prepared
from minicloud.storage.metadata.schema import accounts


def test_same_rows_as_sqlalchemy(metadata_db: Database) -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def seed(conn: sa.Connection) -> None:
        for i in range(5):
            conn.execute(accounts.insert().values(
                account_id=f"{i:012d}", name=f"name_{i}%", email=f"a{i}@example.com", status="ACTIVE",
                management=i == 0, created_at=created))

    metadata_db.write_sync(seed)
    name = sa.bindparam("name")
    statement = (sa.select(accounts)
                 .where(sa.func.substr(accounts.c.name, 1, sa.func.length(name)) == name,
                        accounts.c.created_at <= sa.bindparam("before"))
                 .order_by(accounts.c.account_id.desc()).limit(sa.bindparam("limit")))
    prepared = Prepared(statement)
    binds = {"name": "name_", "before": created, "limit": 3}

    def both(conn: sa.Connection) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        expected = [dict(r._mapping) for r in conn.execute(statement, binds)]
        got = [dict(r._mapping) for r in prepared.rows(conn, binds)]
        return expected, got

    expected, got = metadata_db.read_sync(both)
    assert got == expected
    assert [r["account_id"] for r in got] == ["000000000004", "000000000003", "000000000002"]
    assert got[0]["created_at"] == created and got[0]["created_at"].tzinfo is not None
    # A second run (compiled once per dialect) and a prefix with LIKE's wildcards taken literally.
    again = metadata_db.read_sync(lambda conn: prepared.rows(conn, {"name": "name_1%", "before": created,
                                                                     "limit": 10}))
    assert [r.account_id for r in again] == ["000000000001"]
    assert metadata_db.read_sync(lambda conn: prepared.rows(conn, {"name": "name_1_", "before": created,
                                                                    "limit": 10})) == []


def test_datetime_binds_as_sqlalchemy_binds_them_in_any_order(metadata_db: Database) -> None:
    """The last datetime's text is reused only for the same time in the same zone object."""
    statement = sa.select(accounts.c.account_id).where(accounts.c.created_at == sa.bindparam("at"))
    prepared = Prepared(statement)
    utc = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    plus_two = utc.astimezone(timezone(timedelta(hours=2)))  # the same instant, another zone
    dialect = metadata_db.engine.dialect
    compiled = prepared._compiled(dialect)
    expected = accounts.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert expected is not None

    def bound(value: object) -> object:
        params = prepared._params(compiled, {"at": value})
        return params[0] if compiled.positional else params["at"]

    for value in (utc, utc, plus_two, utc, utc.replace(second=6), plus_two):
        assert bound(value) == expected(value)
    with pytest.raises(ValueError):  # a naive datetime is refused, remembered or not
        bound(utc.replace(tzinfo=None))
    assert bound(None) is None


def test_plain_datetime_keeps_its_zone_fields() -> None:
    """A DateTime without the UTC decorator formats the value's own fields: equal instants in two
    zones are different text, never the remembered one."""
    table = sa.Table("t", sa.MetaData(), sa.Column("at", sa.DateTime(timezone=True)))
    prepared = Prepared(sa.select(table.c.at).where(table.c.at == sa.bindparam("at")))
    dialect = sa.create_engine("sqlite://").dialect
    compiled = prepared._compiled(dialect)
    utc = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    plus_two = utc.astimezone(timezone(timedelta(hours=2)))
    assert prepared._params(compiled, {"at": utc}) == ("2026-01-02 03:04:05.000000",)
    assert prepared._params(compiled, {"at": plus_two}) == ("2026-01-02 05:04:05.000000",)
