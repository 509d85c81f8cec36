"""IAM's policy size quotas, in characters as counted by :func:`policy_size` (white space excluded).

IAM user guide, "IAM and AWS STS quotas": managed policy 6,144; role trust policy 2,048 by default
(adjustable to 4,096); the sum of a user's inline policies 2,048, a group's 5,120, a role's 10,240.
AWS STS session policies (inline Policy parameter): 2,048.
"""

MANAGED_POLICY_MAX = 6144
ROLE_TRUST_POLICY_MAX = 2048
ROLE_TRUST_POLICY_MAX_ADJUSTED = 4096
INLINE_USER_POLICIES_MAX = 2048
INLINE_GROUP_POLICIES_MAX = 5120
INLINE_ROLE_POLICIES_MAX = 10240
SESSION_POLICY_MAX = 2048
