"""The AMIs minicloud ships: image recipes (``minicloud.images``) built from Debian's packages.

``debian`` is Debian 12 as Debian's own EC2 AMIs present it, minus the kernel and systemd (an
instance is a container whose PID 1 is the boot script): OpenSSH server with key-only logins, the
user ``admin`` with passwordless sudo, ca-certificates, iproute2, ping, curl and python3-minimal.
Its SSH host keys are not in the image: each instance makes its own at its first boot.
``busybox`` is the library's busybox image as it is: the boot script runs on busybox's sh (no SSH
server; user data and the console work).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

from minicloud.images import File, ImageConfig, Recipe, register
from minicloud.images.library import BUSYBOX

DEFAULT_USER = "admin"
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())

SSHD_CONFIG = b"""\
# minicloud: as on Debian's cloud images, logins by key only.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UseDNS no
# Host keys are made at an instance's first boot (ed25519 and ecdsa: fast to generate).
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
"""

SUDOERS = b"# minicloud: the default user may run anything, without a password (as cloud-init sets it up)\n" \
          b"admin ALL=(ALL) NOPASSWD:ALL\n"

DEBIAN_AMI = Recipe(
    name="ami-debian", repository="minicloud/ami-debian", tags=("bookworm", "12", "latest"), base="debian",
    packages=("openssh-server", "sudo", "ca-certificates", "iproute2", "iputils-ping", "curl", "python3-minimal"),
    files=(File("/etc/ssh/sshd_config.d/50-minicloud.conf", SSHD_CONFIG),
           File("/etc/sudoers.d/90-cloud-init-users", SUDOERS, 0o440)),
    commands=(
        # the default user, in the groups Debian's cloud images give it
        "useradd --create-home --shell /bin/bash --comment 'Debian' "
        "--groups adm,sudo,audio,cdrom,dialout,dip,floppy,video admin && usermod -p '*' admin",
        # every instance makes its own host keys at its first boot
        "rm -f /etc/ssh/ssh_host_*",
        # a container may not set its audit login uid: not a reason to refuse the session
        "sed -i 's/^session\\s\\+required\\s\\+pam_loginuid.so/session optional pam_loginuid.so/' /etc/pam.d/sshd",
        "rm -f /etc/machine-id /var/lib/dbus/machine-id",
    ),
    config=ImageConfig(cmd=("bash",)),  # an instance runs boot_command() instead
    description="Debian 12 (bookworm) EC2 AMI: OpenSSH server, sudo, user admin; no systemd")

# Opt-in (not among AMIS: Debian's awscli adds ~150 MB): `minicloud images bootstrap ami-debian-awscli`.
DEBIAN_AWSCLI_AMI = Recipe(
    name="ami-debian-awscli", repository="minicloud/ami-debian-awscli", tags=("bookworm", "12", "latest"),
    base="ami-debian", packages=("awscli",), config=ImageConfig(cmd=("bash",)),
    description="the debian AMI with Debian's AWS CLI v2 (credentials and region from the metadata service)")


@dataclass(frozen=True, slots=True)
class Ami:
    """One public AMI: its name (what DescribeImages filters on), image recipe and what a user logs in as."""

    name: str
    recipe: Recipe
    description: str
    default_user: str | None  # None: no SSH server in the image

    @property
    def image(self) -> str:
        """The image reference for the engine (pulled from minicloud's registry)."""
        return f"{self.recipe.repository}:{self.recipe.tags[0]}"


AMIS: tuple[Ami, ...] = (
    Ami(f"debian-12-{ARCH}-minicloud", DEBIAN_AMI, "Debian 12 (bookworm) with OpenSSH; log in as admin", DEFAULT_USER),
    Ami("busybox-minicloud", BUSYBOX, "busybox (static) shell, no SSH server: user data and console only", None),
)
AMI_RECIPES: list[Recipe] = [ami.recipe for ami in AMIS]

register(DEBIAN_AMI)
register(DEBIAN_AWSCLI_AMI)
