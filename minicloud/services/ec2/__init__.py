"""Amazon EC2 and VPC: the API (ec2 protocol), its metadata tables, and the controller that turns
instances into containers on minicloud's engine inside VPC network namespaces (``minicloud.vpcnet``).

    provider.py        Ec2Provider: every operation, composed from one mixin per resource family
    store.py           resources as JSON documents in ``ec2_resources`` (AWS's own shapes)
    filters.py         Filter.N.Name/Value matching (wildcards, tag:KEY, tag-key, tag-value)
    controller.py      InstanceController: pending -> running, stop, start, reboot, terminate
    metadata.py        what the instance metadata service (imds.py) asks about an instance
"""
