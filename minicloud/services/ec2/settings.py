"""EC2's settings, from ``MINICLOUD_EC2_*`` environment variables read once when the provider is built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Ec2Settings:
    max_instances: int = 20  # the max-instances quota of an account in a region (vCPU limits aside)
    terminated_retention: float = 3600.0  # seconds a terminated instance stays visible
    public_ip_pool: str = "127.100.0.0/16"
    max_elastic_ips: int = 5
    credentials_ttl: float = 3600.0  # instance profile credentials; rotated 5 minutes before expiry

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Ec2Settings:
        def number(name: str, default: float) -> float:
            raw = environ.get(f"MINICLOUD_EC2_{name}")
            return float(raw) if raw else default
        return cls(max_instances=int(number("MAX_INSTANCES", cls.max_instances)),
                   terminated_retention=number("TERMINATED_RETENTION", cls.terminated_retention),
                   public_ip_pool=environ.get("MINICLOUD_EC2_PUBLIC_IP_POOL") or cls.public_ip_pool,
                   max_elastic_ips=int(number("MAX_ELASTIC_IPS", cls.max_elastic_ips)),
                   credentials_ttl=number("CREDENTIALS_TTL", cls.credentials_ttl))
