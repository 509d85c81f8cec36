"""The OCI registry (ECR's data plane): the Distribution API over the blob store."""
