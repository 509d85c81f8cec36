"""Amazon ECR: the control plane of minicloud's registry (the same repositories as /v2/)."""
