"""The console's pages, one module per service."""

from __future__ import annotations

from minicloud.console.page import Route


def all_routes() -> list[Route]:
    from minicloud.console.views import account, ec2, ecr, home, iam, lambda_, s3

    return [*home.ROUTES, *account.ROUTES, *iam.ROUTES, *s3.ROUTES, *ecr.ROUTES, *ec2.ROUTES, *lambda_.ROUTES]
