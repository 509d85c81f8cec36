"""Which services minicloud serves: one provider per AWS service."""

from __future__ import annotations

from minicloud.aws.provider import Provider
from minicloud.runtime import Runtime


def build_providers(runtime: Runtime) -> list[Provider]:
    from minicloud.services.ec2.provider import Ec2Provider
    from minicloud.services.ecr.provider import EcrProvider
    from minicloud.services.iam.provider import IamProvider
    from minicloud.services.kms.provider import KmsProvider
    from minicloud.services.lambda_.provider import LambdaProvider
    from minicloud.services.logs.provider import LogsProvider
    from minicloud.services.organizations.provider import OrganizationsProvider
    from minicloud.services.s3.provider import S3Provider
    from minicloud.services.sts.provider import StsProvider

    return [IamProvider(runtime), StsProvider(runtime), OrganizationsProvider(runtime), EcrProvider(runtime),
            S3Provider(runtime), Ec2Provider(runtime), LambdaProvider(runtime), LogsProvider(runtime),
            KmsProvider(runtime)]
