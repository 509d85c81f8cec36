"""AWS Organizations error codes (all 400, JSON protocol)."""

from __future__ import annotations

from minicloud.aws.errors import ClientError


class AccessDeniedException(ClientError):
    code = "AccessDeniedException"


class AccountNotFoundException(ClientError):
    code = "AccountNotFoundException"


class CreateAccountStatusNotFoundException(ClientError):
    code = "CreateAccountStatusNotFoundException"


class AlreadyInOrganizationException(ClientError):
    code = "AlreadyInOrganizationException"


class InvalidInputException(ClientError):
    code = "InvalidInputException"
