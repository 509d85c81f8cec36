"""Access control lists (canned and explicit grants), object ownership controls and the
public access block: what they store and how they take part in authorization.

A stored ACL (bucket or object ``acl`` column) is the JSON list of grants
``[{"Grantee": {...}, "Permission": ...}]``; None means the default: the owner's FULL_CONTROL.
ACL grants add access for anonymous requests (AllUsers), any signed request (AuthenticatedUsers)
and accounts' root users (CanonicalUser); an IAM user still needs its identity policy, and an
explicit deny always wins. ``BucketOwnerEnforced`` turns ACLs off; ``IgnorePublicAcls`` ignores
public grants; ``RestrictPublicBuckets`` keeps a public bucket policy from granting anyone
outside the bucket owner's account.
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa

from minicloud.iam.accounts import list_accounts
from minicloud.iam.identity import Principal, PrincipalKind
from minicloud.services.s3.errors import (
    AccessControlListNotSupported,
    AccessDenied,
    InvalidArgument,
    InvalidRequest,
    MalformedACLError,
    UnresolvableGrantByEmailAddress,
)
from minicloud.services.s3.names import canonical_id, owner
from minicloud.services.s3.store import Bucket

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
PUBLIC_GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS})
PERMISSIONS = ("FULL_CONTROL", "READ", "WRITE", "READ_ACP", "WRITE_ACP")
GRANT_HEADERS = {"GrantFullControl": "FULL_CONTROL", "GrantRead": "READ", "GrantWrite": "WRITE",
                 "GrantReadACP": "READ_ACP", "GrantWriteACP": "WRITE_ACP"}
CANNED = frozenset({"private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
                    "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write"})
# The ACL permission an S3 action needs: (permission, on the object rather than the bucket).
ACTION_PERMISSIONS = {
    "ListBucket": ("READ", False), "ListBucketVersions": ("READ", False),
    "ListBucketMultipartUploads": ("READ", False), "AbortMultipartUpload": ("WRITE", False),
    "ListMultipartUploadParts": ("WRITE", False),
    "PutObject": ("WRITE", False), "DeleteObject": ("WRITE", False), "DeleteObjectVersion": ("WRITE", False),
    "GetBucketAcl": ("READ_ACP", False), "PutBucketAcl": ("WRITE_ACP", False),
    "GetObject": ("READ", True), "GetObjectVersion": ("READ", True),
    "GetObjectAcl": ("READ_ACP", True), "GetObjectVersionAcl": ("READ_ACP", True),
    "PutObjectAcl": ("WRITE_ACP", True), "PutObjectVersionAcl": ("WRITE_ACP", True),
}
_HEADER_GRANTEE = re.compile(r'\s*(id|uri|emailAddress)\s*=\s*"?([^",]*)"?\s*', re.IGNORECASE)


def _user(account_id: str) -> dict[str, str]:
    return {"Type": "CanonicalUser", **owner(account_id)}


def _group(uri: str) -> dict[str, str]:
    return {"Type": "Group", "URI": uri}


def canned_grants(canned: str, owner_account: str, bucket_owner: str) -> list[dict[str, Any]]:
    grants = [{"Grantee": _user(owner_account), "Permission": "FULL_CONTROL"}]
    if canned in ("public-read", "public-read-write"):
        grants.append({"Grantee": _group(ALL_USERS), "Permission": "READ"})
    if canned == "public-read-write":
        grants.append({"Grantee": _group(ALL_USERS), "Permission": "WRITE"})
    if canned == "authenticated-read":
        grants.append({"Grantee": _group(AUTHENTICATED_USERS), "Permission": "READ"})
    if canned in ("bucket-owner-read", "bucket-owner-full-control") and bucket_owner != owner_account:
        permission = "READ" if canned == "bucket-owner-read" else "FULL_CONTROL"
        grants.append({"Grantee": _user(bucket_owner), "Permission": permission})
    if canned == "log-delivery-write":
        grants += [{"Grantee": _group(LOG_DELIVERY), "Permission": "WRITE"},
                   {"Grantee": _group(LOG_DELIVERY), "Permission": "READ_ACP"}]
    # Group grants first, the owner's last (the order s3-tests expects; S3 documents none).
    return [g for g in grants if "URI" in g["Grantee"]] + [g for g in grants if "URI" not in g["Grantee"]]


def known_accounts(conn: sa.Connection) -> dict[str, str]:
    """Every account by its canonical user id and by ``email:<address>`` (grantees of ACLs)."""
    found: dict[str, str] = {}
    for account in list_accounts(conn):
        found[canonical_id(account.account_id)] = account.account_id
        found[f"email:{account.email.lower()}"] = account.account_id
    return found


def _grantee_of(kind: str, value: str, accounts: dict[str, str], *, strict: bool = False) -> dict[str, str]:
    """A grantee as stored; ``strict`` (``accounts`` holds every account): an unknown id is refused."""
    if kind.lower() == "id":
        account = accounts.get(value)
        if strict and account is None:
            raise InvalidArgument("Invalid id", ArgumentName="CanonicalUser/ID", ArgumentValue=value)
        return {"Type": "CanonicalUser", "ID": value, **({"DisplayName": account} if account else {})}
    if kind.lower() == "uri":
        if value not in (ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY):
            raise InvalidArgument("Invalid group uri", ArgumentName="uri", ArgumentValue=value)
        return _group(value)
    account = accounts.get(f"email:{value.lower()}")
    if account is not None:  # S3 keeps an e-mail grantee as the account's canonical user
        return _user(account)
    raise UnresolvableGrantByEmailAddress("The e-mail address you provided does not match any account on record.",
                                          EmailAddress=value)


def with_display_names(grants: list[dict[str, Any]], accounts: dict[str, str]) -> list[dict[str, Any]]:
    """Grants as GetBucketAcl/GetObjectAcl answer them: a canonical user grantee with its DisplayName."""
    shown = []
    for grant in grants:
        grantee = grant.get("Grantee") or {}
        account = accounts.get(str(grantee.get("ID"))) if grantee.get("Type") == "CanonicalUser" else None
        if account is not None and "DisplayName" not in grantee:
            grant = {**grant, "Grantee": {**grantee, "DisplayName": account}}
        shown.append(grant)
    return shown


def header_grants(params: dict[str, Any], accounts: dict[str, str], *,
                  strict: bool = False) -> list[dict[str, Any]] | None:
    """Grants from x-amz-grant-* headers, None when there are none."""
    grants: list[dict[str, Any]] = []
    for member, permission in GRANT_HEADERS.items():
        text = params.get(member)
        if not text:
            continue
        for item in str(text).split(","):
            match = _HEADER_GRANTEE.fullmatch(item)
            if match is None:
                raise InvalidArgument("Invalid grant header", ArgumentName=member, ArgumentValue=str(text))
            grants.append({"Grantee": _grantee_of(match.group(1), match.group(2), accounts, strict=strict),
                           "Permission": permission})
    return grants or None


def body_grants(policy: dict[str, Any], accounts: dict[str, str], *, strict: bool = False) -> list[dict[str, Any]]:
    grants = []
    for grant in policy.get("Grants") or []:
        grantee = grant.get("Grantee") or {}
        permission = grant.get("Permission")
        if permission not in PERMISSIONS:
            raise MalformedACLError("The XML you provided was not well-formed or did not validate against our "
                                    "published schema")
        kind = grantee.get("Type")
        if kind == "CanonicalUser" and grantee.get("ID"):
            entry = _grantee_of("id", str(grantee["ID"]), accounts, strict=strict)
        elif kind == "Group" and grantee.get("URI"):
            entry = _grantee_of("uri", str(grantee["URI"]), accounts)
        elif kind == "AmazonCustomerByEmail" and grantee.get("EmailAddress"):
            entry = _grantee_of("emailAddress", str(grantee["EmailAddress"]), accounts)
        else:
            raise MalformedACLError("The XML you provided was not well-formed or did not validate against our "
                                    "published schema")
        grants.append({"Grantee": entry, "Permission": permission})
    return grants


def ownership(bucket: Bucket) -> str:
    rules = (bucket.config("ownership") or {}).get("Rules") or []
    return str(rules[0].get("ObjectOwnership")) if rules else "ObjectWriter"


def public_access_block(bucket: Bucket) -> dict[str, bool]:
    config = bucket.config("public_access_block") or {}
    return {k: bool(config.get(k)) for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                             "RestrictPublicBuckets")}


def is_public(grants: list[dict[str, Any]]) -> bool:
    return any((g.get("Grantee") or {}).get("URI") in PUBLIC_GROUPS for g in grants)


def is_public_policy(text: str | None) -> bool:
    """A bucket policy that allows everyone (Principal "*") without a condition narrowing it."""
    if not text:
        return False
    statements = json.loads(text).get("Statement")
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow" or statement.get("Condition"):
            continue
        principal = statement.get("Principal")
        values = principal.get("AWS") if isinstance(principal, dict) else principal
        if values == "*" or (isinstance(values, list) and "*" in values):
            return True
    return False


def denials_only(text: str) -> str | None:
    """The policy's Deny statements alone (None when it has none): what still applies to another
    account once RestrictPublicBuckets blocks every cross-account grant of a public policy."""
    document = json.loads(text)
    statements = document.get("Statement")
    denials = [s for s in (statements if isinstance(statements, list) else [statements])
               if isinstance(s, dict) and s.get("Effect") == "Deny"]
    if not denials:
        return None
    kept = {"Statement": denials}
    if "Version" in document:  # (it decides whether ${...} policy variables are substituted)
        kept["Version"] = document["Version"]
    return json.dumps(kept)


def check_acl_allowed(bucket: Bucket, grants: list[dict[str, Any]] | None, canned: str | None, *,
                      on_object: bool = False) -> None:
    """Refuse ACLs the bucket's ownership controls or public access block forbid (BucketOwnerEnforced:
    an ACL write takes no ACL but bucket-owner-full-control; only CreateBucket, ``on_object`` False,
    also takes private)."""
    if ownership(bucket) == "BucketOwnerEnforced" and on_object and canned == "private":
        raise AccessControlListNotSupported("The bucket does not allow ACLs")
    if ownership(bucket) == "BucketOwnerEnforced":
        explicit_owner_only = grants is not None and all(
            g["Permission"] == "FULL_CONTROL" and g["Grantee"].get("ID") == canonical_id(bucket.account_id)
            for g in grants)
        if (canned not in (None, "private", "bucket-owner-full-control")
                or (grants is not None and canned is None and not explicit_owner_only)):
            raise AccessControlListNotSupported("The bucket does not allow ACLs")
    public = canned in ("public-read", "public-read-write", "authenticated-read") or bool(grants and is_public(grants))
    if public and public_access_block(bucket)["BlockPublicAcls"]:
        raise AccessDenied("Access Denied")


def grants_allow(grants: list[dict[str, Any]], principal: Principal, permission: str,
                 ignore_public: bool, identity_allows: bool = False) -> bool:
    """Whether a grant gives ``principal`` the permission. A grant to an account (its canonical id)
    covers the account's root user, and its IAM users and roles when their own policies allow the
    action (``identity_allows``), as S3 evaluates a cross-account ACL grant."""
    anonymous = principal.kind is PrincipalKind.ANONYMOUS
    account_principal = principal.kind is PrincipalKind.ROOT or (identity_allows and not anonymous)
    for grant in grants:
        if grant.get("Permission") not in (permission, "FULL_CONTROL"):
            continue
        grantee = grant.get("Grantee") or {}
        uri = grantee.get("URI")
        if uri == ALL_USERS and not ignore_public:
            return True
        if uri == AUTHENTICATED_USERS and not ignore_public and not anonymous:
            return True
        if (grantee.get("ID") and account_principal
                and grantee["ID"] == canonical_id(principal.account_id)):
            return True
    return False


def stored_grants(text: str | None, owner_account: str) -> list[dict[str, Any]]:
    return json.loads(text) if text else [{"Grantee": _user(owner_account), "Permission": "FULL_CONTROL"}]


def acl_for_write(params: dict[str, Any], bucket: Bucket, owner_account: str, *, on_object: bool = True) -> str | None:
    """The ACL a new object or bucket starts with (x-amz-acl or x-amz-grant-*), as stored."""
    canned = params.get("ACL")
    accounts = {canonical_id(a): a for a in (bucket.account_id, owner_account) if a}
    grants = header_grants(params, accounts)
    if canned is not None and grants is not None:
        raise InvalidRequest("Specifying both Canned ACLs and Header Grants is not allowed")
    if canned is not None and canned not in CANNED:
        raise InvalidArgument("", ArgumentName="x-amz-acl", ArgumentValue=str(canned))
    if canned is None and grants is None:
        return None
    check_acl_allowed(bucket, grants, canned, on_object=on_object)
    if ownership(bucket) == "BucketOwnerEnforced":
        return None
    if grants is None:
        grants = canned_grants(str(canned), owner_account, bucket.account_id)
    return json.dumps(grants)
