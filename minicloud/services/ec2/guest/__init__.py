"""What runs inside an EC2 instance, and the AMIs it runs from.

An instance is a container on minicloud's engine (namespace ``ec2``) whose PID 1 is a small POSIX
shell script, ``files/boot.sh`` (dash on Debian, busybox's sh on busybox), bind-mounted read-only
at /run/minicloud/guest with the instance's seed at /run/minicloud/seed. There is no systemd and
no kernel: boot is a few hundred milliseconds.

At every boot the script sets the hostname (when the engine has not already), adds the seed's
public keys to ~admin/.ssh/authorized_keys (mode 600, owned by admin; root's when the image has no
admin), makes missing SSH host keys (ed25519, ecdsa), prints cloud-init's console lines (``Cloud-init
v. ... running``, the ``-----BEGIN SSH HOST KEY FINGERPRINTS-----`` block and the host keys), and
starts ``/usr/sbin/sshd -D -e``, which it restarts if it dies. At the first boot of an instance
(a marker under /var/lib/cloud/instances/<id>/sem in its root filesystem, so stop/start does not
repeat it) it runs the user data when it starts with ``#!``, its output on the console and in
/var/log/cloud-init-output.log; ``#cloud-config`` gets a console line saying it is not supported.
A root filesystem that was another instance's (an image made from it) gets new host keys and runs
its own user data.

The console (GetConsoleOutput) is the container's log. PID 1 reaps orphans, and ends when told:
SIGTERM (stop) -> exit 0; ``poweroff``/``halt``/``shutdown -h`` inside -> exit 130;
``reboot``/``shutdown -r`` -> exit 129 (the codes reboot(2) gives a PID namespace's init; see
``seed.REBOOT_EXIT_CODE``). Those commands are shims in /usr/local/sbin (written at boot when
missing) that signal PID 1 (root only, as the real ones).

The controller's part: ``write_seed(dir, Seed(...))`` before each start, a WorkloadSpec with
``command=boot_command()``, ``entrypoint=[]``, ``binds=guest_binds(dir)`` and ``hostname=seed.hostname``.
"""

from minicloud.services.ec2.guest.amis import AMI_RECIPES, AMIS, DEBIAN_AMI, DEFAULT_USER, Ami
from minicloud.services.ec2.guest.seed import (
    BOOT_SCRIPT,
    GUEST_MOUNT,
    POWEROFF_EXIT_CODE,
    REBOOT_EXIT_CODE,
    SEED_MOUNT,
    STOPPED_EXIT_CODE,
    Seed,
    boot_command,
    guest_binds,
    seed_dir,
    unpacked_user_data,
    write_seed,
)

__all__ = [
    "AMIS", "AMI_RECIPES", "BOOT_SCRIPT", "DEBIAN_AMI", "DEFAULT_USER", "GUEST_MOUNT", "POWEROFF_EXIT_CODE",
    "REBOOT_EXIT_CODE", "SEED_MOUNT", "STOPPED_EXIT_CODE", "Ami", "Seed", "boot_command", "guest_binds", "seed_dir",
    "unpacked_user_data", "write_seed",
]
