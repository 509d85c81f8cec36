"""An AMI's description claims only what is true (review finding: it named a snap- id that no API
knows, an 8 GiB size and a gp3 volume that do not exist)."""

from __future__ import annotations

from datetime import UTC, datetime

from minicloud.services.ec2.images import image_doc


def test_the_root_device_mapping_claims_no_snapshot_size_or_volume_type() -> None:
    doc = image_doc("ami-0123456789abcdef0", "n", "repo:tag", "repo:tag", "111122223333", datetime.now(UTC),
                    public_image=False)
    assert doc["BlockDeviceMappings"] == [{"DeviceName": "/dev/xvda",
                                           "Ebs": {"DeleteOnTermination": True, "Encrypted": False}}]
    assert doc["RootDeviceName"] == "/dev/xvda" and doc["Hypervisor"] == "xen"  # what AWS reports for Nitro too
