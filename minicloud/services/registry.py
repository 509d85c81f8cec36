"""Which services minicloud serves: one provider per AWS service."""

from __future__ import annotations

from minicloud.aws.provider import Provider
from minicloud.runtime import Runtime


def build_providers(runtime: Runtime) -> list[Provider]:
    from minicloud.services.sts.provider import StsProvider

    return [StsProvider(runtime)]
