"""EC2's error codes (all HTTP 400 unless noted), one class per code as EC2 answers them."""

from __future__ import annotations

from typing import Any

from minicloud.aws.errors import ClientError, InvalidParameterCombination, InvalidParameterValue, MissingParameter

__all__ = ["InvalidParameterCombination", "InvalidParameterValue", "MissingParameter"]


class InvalidVpcIDNotFound(ClientError):
    code = "InvalidVpcID.NotFound"


class InvalidVpcRange(ClientError):
    code = "InvalidVpc.Range"


class InvalidSubnetIDNotFound(ClientError):
    code = "InvalidSubnetID.NotFound"


class InvalidSubnetRange(ClientError):
    code = "InvalidSubnet.Range"


class InvalidSubnetConflict(ClientError):
    code = "InvalidSubnet.Conflict"


class InvalidRouteTableIDNotFound(ClientError):
    code = "InvalidRouteTableID.NotFound"


class InvalidRouteNotFound(ClientError):
    code = "InvalidRoute.NotFound"


class RouteAlreadyExists(ClientError):
    code = "RouteAlreadyExists"


class InvalidAssociationIDNotFound(ClientError):
    code = "InvalidAssociationID.NotFound"


class InvalidInternetGatewayIDNotFound(ClientError):
    code = "InvalidInternetGatewayID.NotFound"


class ResourceAlreadyAssociated(ClientError):
    code = "Resource.AlreadyAssociated"


class GatewayNotAttached(ClientError):
    code = "Gateway.NotAttached"


class DependencyViolation(ClientError):
    code = "DependencyViolation"


class InvalidGroupNotFound(ClientError):
    code = "InvalidGroup.NotFound"


class InvalidGroupIdMalformed(ClientError):
    code = "InvalidGroupId.Malformed"


class InvalidGroupDuplicate(ClientError):
    code = "InvalidGroup.Duplicate"


class InvalidGroupReserved(ClientError):
    code = "InvalidGroup.Reserved"


class CannotDelete(ClientError):
    code = "CannotDelete"


class InvalidPermissionDuplicate(ClientError):
    code = "InvalidPermission.Duplicate"


class InvalidPermissionNotFound(ClientError):
    code = "InvalidPermission.NotFound"


class InvalidPermissionMalformed(ClientError):
    code = "InvalidPermission.Malformed"


class InvalidKeyPairNotFound(ClientError):
    code = "InvalidKeyPair.NotFound"


class InvalidKeyPairDuplicate(ClientError):
    code = "InvalidKeyPair.Duplicate"


class InvalidKeyPairFormat(ClientError):
    code = "InvalidKeyPair.Format"


class InvalidAMIIDNotFound(ClientError):
    code = "InvalidAMIID.NotFound"


class InvalidAMIIDMalformed(ClientError):
    code = "InvalidAMIID.Malformed"


class InvalidAMINameDuplicate(ClientError):
    code = "InvalidAMIName.Duplicate"


class InvalidInstanceIDNotFound(ClientError):
    code = "InvalidInstanceID.NotFound"


class InvalidInstanceIDMalformed(ClientError):
    code = "InvalidInstanceID.Malformed"


class IncorrectInstanceState(ClientError):
    code = "IncorrectInstanceState"


class InstanceLimitExceeded(ClientError):
    code = "InstanceLimitExceeded"


class OperationNotPermitted(ClientError):
    code = "OperationNotPermitted"


class InvalidIPAddressInUse(ClientError):
    code = "InvalidIPAddress.InUse"


class InvalidInstanceType(ClientError):
    code = "InvalidInstanceType"


class InvalidAllocationIDNotFound(ClientError):
    code = "InvalidAllocationID.NotFound"


class InvalidAddressNotFound(ClientError):
    code = "InvalidAddress.NotFound"


class AddressLimitExceeded(ClientError):
    code = "AddressLimitExceeded"


class InvalidIDError(ClientError):
    code = "InvalidID"


class InvalidParameter(ClientError):
    code = "InvalidParameter"


class UnsupportedOperation(ClientError):
    code = "UnsupportedOperation"


class InvalidRegion(ClientError):
    code = "InvalidRegion"


class InvalidZoneNotFound(ClientError):
    code = "InvalidZone.NotFound"


class InvalidNetworkAclIDNotFound(ClientError):
    code = "InvalidNetworkAclID.NotFound"


class InvalidSecurityGroupRuleIdNotFound(ClientError):
    code = "InvalidSecurityGroupRuleId.NotFound"


class InsufficientAddressCapacity(ClientError):
    code = "InsufficientAddressCapacity"


class InvalidBlockDeviceMapping(ClientError):
    code = "InvalidBlockDeviceMapping"


class InsufficientInstanceCapacity(ClientError):
    code = "InsufficientInstanceCapacity"
    status = 500
    sender_fault = False


class UnauthorizedOperation(ClientError):
    """EC2's access denied: "You are not authorized to perform this operation." then IAM's reason
    and an encoded authorization failure message (``iam.failure_messages``: sts:DecodeAuthorizationMessage)."""

    code = "UnauthorizedOperation"
    status = 403
    encodes_failure = True
    PREFIX = "You are not authorized to perform this operation."

    def __init__(self, message: str = "", **fields: Any) -> None:
        if not message.startswith(self.PREFIX):
            message = f"{self.PREFIX} {message}".rstrip()
        super().__init__(message, **fields)


class InvalidNetworkInterfaceIDNotFound(ClientError):
    code = "InvalidNetworkInterfaceID.NotFound"


class InvalidDhcpOptionIDNotFound(ClientError):
    code = "InvalidDhcpOptionID.NotFound"
