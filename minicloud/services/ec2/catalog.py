"""The instance types minicloud offers: vCPUs and memory as AWS lists them; they become the
instance container's cgroup limits (memory hard limit, CPU quota capped at the host's CPUs)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int
    burstable: bool
    free_tier: bool = False
    network: str = "Up to 5 Gigabit"

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib << 20

    @property
    def nano_cpus(self) -> int:
        return min(self.vcpus, os.cpu_count() or 1) * 10**9

    def info(self) -> dict[str, Any]:
        """DescribeInstanceTypes' InstanceTypeInfo."""
        threads = 1 if self.vcpus == 1 else 2
        return {
            "InstanceType": self.name, "CurrentGeneration": not self.name.startswith("t2."),
            "FreeTierEligible": self.free_tier, "SupportedUsageClasses": ["on-demand"],
            "SupportedRootDeviceTypes": ["ebs"], "SupportedVirtualizationTypes": ["hvm"],
            "BareMetal": False, "Hypervisor": "nitro" if not self.name.startswith("t2.") else "xen",
            "ProcessorInfo": {"SupportedArchitectures": ["x86_64"], "SustainedClockSpeedInGhz": 2.5},
            "VCpuInfo": {"DefaultVCpus": self.vcpus, "DefaultCores": max(1, self.vcpus // threads),
                         "DefaultThreadsPerCore": threads},
            "MemoryInfo": {"SizeInMiB": self.memory_mib},
            "InstanceStorageSupported": False,
            "EbsInfo": {"EbsOptimizedSupport": "default", "EncryptionSupport": "supported",
                        "NvmeSupport": "required"},
            "NetworkInfo": {"NetworkPerformance": self.network, "MaximumNetworkInterfaces": 3,
                            "Ipv4AddressesPerInterface": 6, "Ipv6Supported": False, "EnaSupport": "required"},
            "PlacementGroupInfo": {"SupportedStrategies": ["partition", "spread"]},
            "HibernationSupported": False, "BurstablePerformanceSupported": self.burstable,
            "DedicatedHostsSupported": False, "AutoRecoverySupported": True,
            "SupportedBootModes": ["legacy-bios", "uefi"],
        }


INSTANCE_TYPES: dict[str, InstanceType] = {t.name: t for t in (
    InstanceType("t2.micro", 1, 1024, True, free_tier=True, network="Low to Moderate"),
    InstanceType("t3.nano", 2, 512, True),
    InstanceType("t3.micro", 2, 1024, True, free_tier=True),
    InstanceType("t3.small", 2, 2048, True),
    InstanceType("t3.medium", 2, 4096, True),
    InstanceType("t3.large", 2, 8192, True),
    InstanceType("t3.xlarge", 4, 16384, True),
    InstanceType("t3.2xlarge", 8, 32768, True),
    InstanceType("m5.large", 2, 8192, False, network="Up to 10 Gigabit"),
    InstanceType("m5.xlarge", 4, 16384, False, network="Up to 10 Gigabit"),
    InstanceType("c5.large", 2, 4096, False, network="Up to 10 Gigabit"),
)}

# AWS's default when RunInstances names no InstanceType is m1.small, which minicloud does not offer.
FALLBACK_INSTANCE_TYPE = "t3.micro"
