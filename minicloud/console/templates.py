"""Jinja2 rendering of the console's pages (autoescaped; templates ship in ``templates/``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from minicloud.console.http import PREFIX, url

TEMPLATES = Path(__file__).with_name("templates")


def human_size(value: Any) -> str:
    if value is None or value == "":
        return "—"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - unreachable


def timestamp(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "—" if value is None else str(value)


def pretty_json(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    return json.dumps(value, indent=2, sort_keys=False, default=str)


class Templates:
    def __init__(self) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=jinja2.select_autoescape(["html"]),
            trim_blocks=True, lstrip_blocks=True,
        )
        self.env.globals.update(u=url, base_url=PREFIX)
        self.env.filters.update(size=human_size, ts=timestamp, pretty_json=pretty_json)

    def render(self, name: str, common: dict[str, Any], values: dict[str, Any], *, block: str | None = None) -> str:
        template = self.env.get_template(name)
        variables = {**common, **values}
        if block is not None and block not in template.blocks:
            block = "live"
        if block is not None and block in template.blocks:
            # A block alone runs none of its template's top-level imports: give it the macros.
            variables["m"] = self.env.get_template("macros.html").make_module(variables)
            context = template.new_context(variables)
            return "".join(template.blocks[block](context))
        return template.render(variables)
