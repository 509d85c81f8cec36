"""AWS-managed policies: ``arn:aws:iam::aws:policy/...``, the same in every account, read-only.

A handful of the most used ones, with AWS's documents (for ``ReadOnlyAccess``, whose real document
lists several hundred services, the statements for the services minicloud offers). They live in
code rather than in a table: they cannot be changed, and attachments refer to them by ARN.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

AWS_POLICY_PREFIX = "arn:aws:iam::aws:policy"


@dataclass(frozen=True, slots=True)
class AwsManagedPolicy:
    name: str
    path: str
    policy_id: str
    description: str
    version_id: str
    created_at: datetime
    updated_at: datetime
    document: str

    @property
    def arn(self) -> str:
        return f"{AWS_POLICY_PREFIX}{self.path}{self.name}"


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=4)


def _allow(actions: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": "*", **extra}


def _at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


_READ_ONLY_ACTIONS = [
    "autoscaling:Describe*", "autoscaling:GetPredictiveScalingForecast",
    "ce:Describe*", "ce:Get*", "ce:List*",
    "cloudwatch:Describe*", "cloudwatch:Get*", "cloudwatch:List*",
    "ec2:Describe*", "ec2:Get*", "ec2:SearchLocalGatewayRoutes", "ec2:SearchTransitGatewayRoutes",
    "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:DescribeImageScanFindings",
    "ecr:DescribeImages", "ecr:DescribeRepositories", "ecr:GetAuthorizationToken",
    "ecr:GetDownloadUrlForLayer", "ecr:GetLifecyclePolicy", "ecr:GetLifecyclePolicyPreview",
    "ecr:GetRepositoryPolicy", "ecr:ListImages", "ecr:ListTagsForResource",
    "elasticloadbalancing:Describe*",
    "iam:Generate*", "iam:Get*", "iam:List*", "iam:Simulate*",
    "lambda:Get*", "lambda:List*",
    "logs:Describe*", "logs:FilterLogEvents", "logs:Get*", "logs:ListTagsForResource",
    "logs:ListTagsLogGroup", "logs:StartQuery", "logs:StopQuery", "logs:TestMetricFilter",
    "rds:Describe*", "rds:List*",
    "s3:DescribeJob", "s3:Get*", "s3:List*",
    "sts:GetAccessKeyInfo", "sts:GetCallerIdentity", "sts:GetSessionToken",
]

POLICIES: tuple[AwsManagedPolicy, ...] = (
    AwsManagedPolicy(
        "AdministratorAccess", "/", "ANPAIWMBCKSKIEE64ZLYK",
        "Provides full access to AWS services and resources.", "v1",
        _at(2015, 2, 6, 18, 39), _at(2015, 2, 6, 18, 39), _doc(_allow("*"))),
    AwsManagedPolicy(
        "PowerUserAccess", "/", "ANPAJYRXTHIB4FOVS3ZXS",
        "Provides full access to AWS services and resources, but does not allow management of "
        "Users and groups.", "v5",
        _at(2015, 2, 6, 18, 39), _at(2023, 7, 6, 22, 4),
        _doc({"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
             _allow(["account:GetAccountInformation", "account:GetPrimaryEmail", "account:ListRegions",
                     "iam:CreateServiceLinkedRole", "iam:DeleteServiceLinkedRole", "iam:ListRoles",
                     "organizations:DescribeOrganization"]))),
    AwsManagedPolicy(
        "ReadOnlyAccess", "/", "ANPAILL3HVNFSB6DCOWYQ",
        "Provides read-only access to AWS services and resources.", "v112",
        _at(2015, 2, 6, 18, 39), _at(2024, 6, 1, 0, 0),
        _doc({"Sid": "ReadOnlyActions", **_allow(_READ_ONLY_ACTIONS)})),
    AwsManagedPolicy(
        "IAMFullAccess", "/", "ANPAI7XKCFMBPM3QQRRVQ",
        "Provides full access to IAM via the AWS Management Console.", "v2",
        _at(2015, 2, 6, 18, 40), _at(2019, 6, 21, 19, 40),
        _doc(_allow(["iam:*", "organizations:DescribeAccount", "organizations:DescribeOrganization",
                     "organizations:DescribeOrganizationalUnit", "organizations:DescribePolicy",
                     "organizations:ListChildren", "organizations:ListParents",
                     "organizations:ListPoliciesForTarget", "organizations:ListRoots",
                     "organizations:ListPolicies", "organizations:ListTargetsForPolicy"]))),
    AwsManagedPolicy(
        "IAMReadOnlyAccess", "/", "ANPAJKSO7NDY4T57MWDSQ",
        "Provides read only access to IAM via the AWS Management Console.", "v4",
        _at(2015, 2, 6, 18, 40), _at(2018, 1, 25, 19, 11),
        _doc(_allow(["iam:GenerateCredentialReport", "iam:GenerateServiceLastAccessedDetails",
                     "iam:Get*", "iam:List*", "iam:SimulateCustomPolicy",
                     "iam:SimulatePrincipalPolicy"]))),
    AwsManagedPolicy(
        "AmazonS3FullAccess", "/", "ANPAIFIR6V6BVTRAHWINE",
        "Provides full access to all buckets via the AWS Management Console.", "v2",
        _at(2015, 2, 6, 18, 40), _at(2021, 9, 27, 20, 16),
        _doc(_allow(["s3:*", "s3-object-lambda:*"]))),
    AwsManagedPolicy(
        "AmazonS3ReadOnlyAccess", "/", "ANPAIZTJ4DXE7G6AGAE6M",
        "Provides read only access to all buckets via the AWS Management Console.", "v3",
        _at(2015, 2, 6, 18, 40), _at(2023, 8, 10, 21, 31),
        _doc(_allow(["s3:Get*", "s3:List*", "s3:Describe*", "s3-object-lambda:Get*",
                     "s3-object-lambda:List*"]))),
    AwsManagedPolicy(
        "AmazonEC2FullAccess", "/", "ANPAI3VAJF5ZCRZ7MCQE6",
        "Provides full access to Amazon EC2 via the AWS Management Console.", "v5",
        _at(2015, 2, 6, 18, 40), _at(2018, 11, 27, 2, 16),
        _doc({"Action": "ec2:*", "Effect": "Allow", "Resource": "*"},
             _allow("elasticloadbalancing:*"), _allow("cloudwatch:*"), _allow("autoscaling:*"),
             _allow("iam:CreateServiceLinkedRole", Condition={"StringEquals": {"iam:AWSServiceName": [
                 "autoscaling.amazonaws.com", "ec2scheduled.amazonaws.com",
                 "elasticloadbalancing.amazonaws.com", "spot.amazonaws.com", "spotfleet.amazonaws.com",
                 "transitgateway.amazonaws.com"]}}))),
    AwsManagedPolicy(
        "AmazonEC2ReadOnlyAccess", "/", "ANPAIGDT4SV4GSETWTBZK",
        "Provides read only access to Amazon EC2 via the AWS Management Console.", "v3",
        _at(2015, 2, 6, 18, 40), _at(2018, 11, 27, 2, 18),
        _doc(_allow("ec2:Describe*"), _allow("elasticloadbalancing:Describe*"),
             _allow(["cloudwatch:ListMetrics", "cloudwatch:GetMetricStatistics", "cloudwatch:Describe*"]),
             _allow("autoscaling:Describe*"))),
    AwsManagedPolicy(
        "AmazonEC2ContainerRegistryReadOnly", "/", "ANPAIFYZPA37OOHVIH7KQ",
        "Provides read-only access to Amazon EC2 Container Registry repositories.", "v2",
        _at(2015, 12, 21, 17, 4), _at(2019, 12, 5, 19, 56),
        _doc(_allow(["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability",
                     "ecr:GetDownloadUrlForLayer", "ecr:GetRepositoryPolicy", "ecr:DescribeRepositories",
                     "ecr:ListImages", "ecr:DescribeImages", "ecr:BatchGetImage",
                     "ecr:GetLifecyclePolicy", "ecr:GetLifecyclePolicyPreview",
                     "ecr:ListTagsForResource", "ecr:DescribeImageScanFindings"]))),
    AwsManagedPolicy(
        "AWSLambdaBasicExecutionRole", "/service-role/", "ANPAJNCQGXC42545SKXIK",
        "Provides write permissions to CloudWatch Logs.", "v1",
        _at(2015, 4, 9, 15, 3), _at(2015, 4, 9, 15, 3),
        _doc(_allow(["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]))),
)

BY_ARN: dict[str, AwsManagedPolicy] = {p.arn: p for p in POLICIES}


def is_aws_managed(arn: str) -> bool:
    return arn.startswith(AWS_POLICY_PREFIX + "/")


def get(arn: str) -> AwsManagedPolicy | None:
    return BY_ARN.get(arn)
