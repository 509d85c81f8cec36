"""Routing metadata read from the head of a model's document matches the whole model's."""

from __future__ import annotations

import pytest

from minicloud.aws.protocol.models import load_service_model, service_info

# every service minicloud serves (minicloud.services.registry), and a few with other shapes of metadata
SERVICES = ["iam", "sts", "organizations", "ecr", "s3", "ec2", "lambda", "logs", "kms",
            "rds", "elbv2", "autoscaling", "cloudwatch", "dynamodb", "sqs", "apigateway"]


@pytest.mark.parametrize("name", SERVICES)
def test_service_info_matches_the_whole_model(name: str) -> None:
    info = service_info(name)
    model = load_service_model(name)
    assert info.signing_name == (model.signing_name or model.endpoint_prefix)
    assert info.protocol == model.protocol
    assert info.api_version == model.api_version
    assert info.target_prefix == model.metadata.get("targetPrefix")
    assert info.service_id == model.service_id
