"""Regions and availability zones, as configured."""

from __future__ import annotations

from dataclasses import dataclass

from minicloud.config import Config


@dataclass(frozen=True, slots=True)
class Zone:
    name: str
    zone_id: str
    region: str


class Topology:
    def __init__(self, config: Config) -> None:
        self._zones: dict[str, tuple[Zone, ...]] = {}
        for region in config.regions:
            prefix = "".join(part[:3] if i == 0 else part[:1] for i, part in enumerate(region.name.split("-")))
            self._zones[region.name] = tuple(
                Zone(zone, f"{prefix}-az{i + 1}", region.name) for i, zone in enumerate(region.zones)
            )
        self.default_region = config.default_region

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(self._zones)

    def has_region(self, name: str) -> bool:
        return name in self._zones

    def zones(self, region: str) -> tuple[Zone, ...]:
        return self._zones.get(region, ())
