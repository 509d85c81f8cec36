"""Hot statements without the per-execution cost of SQLAlchemy's Connection.execute.

A ``Prepared`` statement (a select, or an insert/update/delete, with or without RETURNING) is
compiled once per dialect (SQL text, the order of its parameters, the
type processors of its parameters and columns) and then run straight on the connection's DBAPI
cursor: the same SQL and the same values as SQLAlchemy would produce, for a fraction of the
Python work (an empty IAM listing went from ~60 us of statement execution to a few us). Use it
for the few statements on a request's hot path; everything else stays plain SQLAlchemy.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa


class HasMapping(Protocol):
    """A result row by column name: SQLAlchemy's ``Row`` and ``PreparedRow`` both are."""

    @property
    def _mapping(self) -> Mapping[Any, Any]: ...


class PreparedRow:
    """A row as ``Row`` is read here: ``row.name`` and ``row._mapping["name"]``."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"PreparedRow({self._mapping!r})"


Processor = Callable[[Any], Any] | None


def _is_datetime(type_: Any) -> bool:
    """A DateTime column, or a decorator over one (``UtcDateTime``)."""
    return isinstance(getattr(type_, "impl", type_), sa.DateTime)


def _remember_last(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` answering again from its last call when given the same datetime (the same time
    and zone object): a burst of writes stamps one second after another with the same time."""
    last: tuple[Any, Any] = (None, None)

    def remembered(value: Any) -> Any:
        nonlocal last
        seen, text = last
        if seen is not None and value == seen and type(value) is type(seen) and value.tzinfo is seen.tzinfo:
            return text
        text = process(value)
        last = (value, text)
        return text

    return remembered


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    positional: bool
    order: tuple[str, ...]  # parameter names in the order the SQL takes them (positional styles)
    binds: Mapping[str, Processor]
    literals: dict[str, Any]  # values the statement itself carries (e.g. the 1 of substr(x, 1, n))
    columns: tuple[str, ...]
    results: tuple[Processor, ...]
    fetch: Callable[[Mapping[str, Any]], Any] | None  # the positional values at once (no literals)
    processing: tuple[tuple[int, Callable[[Any], Any]], ...]  # (place, processor) of the values to convert


class Prepared:
    def __init__(self, statement: sa.Select[Any] | sa.Insert | sa.Update | sa.Delete) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: sa.Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            # Each type as the dialect adapts it (SQLite's DATETIME parses text, for one).
            binds: dict[str, Processor] = {}
            for name, bind in compiled.binds.items():
                process = bind.type.dialect_impl(dialect).bind_processor(dialect)
                binds[name] = _remember_last(process) if process is not None and _is_datetime(bind.type) else process
            selected = list(self.statement.exported_columns)  # a DML statement's: its RETURNING
            columns = tuple(str(c.key) for c in selected)
            results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in selected)
            literals = {name: bind.value for name, bind in compiled.binds.items()
                        if bind.value is not None and not bind.required}
            order = tuple(compiled.positiontup or ())
            fetch: Callable[[Mapping[str, Any]], Any] | None = None
            if compiled.positional and not literals and order:
                getter = operator.itemgetter(*order)
                fetch = getter if len(order) > 1 else (lambda values: (getter(values),))
            processing = tuple((i, convert) for i, name in enumerate(order)
                               if (convert := binds.get(name)) is not None)
            found = _Compiled(compiled.string, bool(compiled.positional), order,
                              binds, literals, columns, results, fetch, processing)
            self._by_dialect[dialect.name] = found
        return found

    def _params(self, c: _Compiled, values: Mapping[str, Any]) -> Any:
        if c.positional:
            if c.fetch is not None:  # every value from ``values`` (KeyError for a missing one, as below)
                out = list(c.fetch(values))
                for i, process in c.processing:
                    value = out[i]
                    if value is not None:
                        out[i] = process(value)
                return tuple(out)
            literals, binds = c.literals, c.binds
            out = []
            for name in c.order:
                value = values[name] if name in values else literals[name]
                convert = binds.get(name)
                out.append(convert(value) if convert is not None and value is not None else value)
            return tuple(out)
        processed = {}
        for name, value in (c.literals | dict(values)).items():
            convert = c.binds.get(name)
            processed[name] = convert(value) if convert is not None and value is not None else value
        return processed

    def run(self, conn: sa.Connection, values: Mapping[str, Any]) -> int:
        """Execute a statement that returns no rows; the number of rows it changed."""
        c = self._compiled(conn.dialect)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(c.sql, self._params(c, values))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def rows(self, conn: sa.Connection, values: Mapping[str, Any]) -> list[PreparedRow]:
        c = self._compiled(conn.dialect)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(c.sql, self._params(c, values))
            fetched = cursor.fetchall()
        finally:
            cursor.close()
        out = []
        for raw in fetched:
            mapping = {}
            for name, process, value in zip(c.columns, c.results, raw, strict=True):
                mapping[name] = process(value) if process is not None else value
            out.append(PreparedRow(mapping))
        return out
