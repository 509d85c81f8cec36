"""The instance boot script as PID 1 of a PID namespace, chrooted into a small busybox root
filesystem (plus dash and its libraries, so both shells it must run on are tried): user data once,
keys for the default user, console lines, signals and exit codes, zombies reaped.

Runs as root (unshare, mount, chroot); everything is made under the test's temporary directory and
the namespaces end with their PID 1."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from minicloud.services.ec2.guest import (
    GUEST_MOUNT,
    POWEROFF_EXIT_CODE,
    REBOOT_EXIT_CODE,
    SEED_MOUNT,
    Seed,
    seed_dir,
    write_seed,
)
from minicloud.services.ec2.guest.seed import GUEST_FILES

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
DASH = shutil.which("dash") or "/bin/dash"
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not Path(BUSYBOX).exists() or not shutil.which("unshare"),
                                reason="the boot script tests need root, unshare and busybox-static")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMinicloudTestKeyForTheBootScriptxxxxxxxxxxx test@host"


def make_rootfs(root: Path) -> None:
    for directory in ("bin", "etc", "root", "tmp", "var", "usr/bin", "proc", "dev", "home/admin", "lib64",
                      "lib/x86_64-linux-gnu", "run/minicloud/guest", "run/minicloud/seed"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if not (root / "bin" / applet).exists():
            (root / "bin" / applet).symlink_to("busybox")
    shutil.copy(DASH, root / "bin" / "dash")
    for library in ("/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"):
        shutil.copy(library, root / library.lstrip("/"))
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nadmin:x:1000:1000::/home/admin:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nadmin:x:1000:\n")
    os.chown(root / "home" / "admin", 1000, 1000)
    os.chmod(root / "tmp", 0o1777)


class Instance:
    """One boot of the root filesystem: ``unshare`` runs a mount-namespace helper that execs the
    boot script as the PID namespace's init."""

    def __init__(self, root: Path, instance_dir: Path, shell: str) -> None:
        self.root, self.instance_dir, self.shell = root, instance_dir, shell
        self.console = instance_dir / "console.log"
        self.process: subprocess.Popen[bytes] | None = None

    def boot(self) -> None:
        r = str(self.root)
        devices = " && ".join(f"touch {r}/dev/{d} && mount --bind /dev/{d} {r}/dev/{d}"
                              for d in ("null", "zero", "urandom", "random"))
        setup = (f"mount -t proc proc {r}/proc && mount -t tmpfs -o mode=755 tmpfs {r}/dev && {devices} && "
                 f"mount --bind -o ro {GUEST_FILES} {r}{GUEST_MOUNT} && "
                 f"mount --bind -o ro {seed_dir(self.instance_dir)} {r}{SEED_MOUNT} && "
                 f"exec chroot {r} {self.shell} {GUEST_MOUNT}/boot.sh")
        self.offset = self.console.stat().st_size if self.console.exists() else 0
        with open(self.console, "ab") as console:
            self.process = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--mount", "--propagation", "private", "--uts", "--net",
                 "/bin/sh", "-c", setup],
                stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                # Signals as an OCI runtime leaves them (crun and runc reset them): a test run under
                # nohup must not leave SIGHUP ignored for the guest's PID 1, which then could not trap
                # `reboot`'s SIGHUP (POSIX: a signal ignored on entry cannot be trapped by a shell).
                preexec_fn=_default_signals)

    def init_pid(self) -> int:
        """The host PID of the namespace's init (unshare's child, once it runs the boot script)."""
        assert self.process is not None
        for _ in range(500):
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            with contextlib.suppress(OSError, IndexError, ValueError):
                pid = int(children.read_text().split()[0])
                if "boot.sh" in Path(f"/proc/{pid}/cmdline").read_text():
                    return pid
            time.sleep(0.01)
        raise AssertionError("the instance's init did not start")

    def log(self) -> str:
        """This boot's console output."""
        with open(self.console, "rb") as console:
            console.seek(self.offset)
            return console.read().decode(errors="replace")

    def wait_for(self, text: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on the console:\n{self.log()}")
            time.sleep(0.02)

    def exit_code(self, timeout: float = 10) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.init_pid(), signal.SIGKILL)
            self.process.wait(10)


def _default_signals() -> None:
    for number in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(number, signal.SIG_DFL)


@pytest.fixture(params=["sh", "dash"])
def boot(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Seed], Instance]]:
    root = tmp_path / "rootfs"
    make_rootfs(root)
    instances: list[Instance] = []

    def start(seed: Seed) -> Instance:
        write_seed(tmp_path / "instance", seed)
        instance = Instance(root, tmp_path / "instance", f"/bin/{request.param}")
        instance.boot()
        instances.append(instance)
        return instance

    yield start
    for instance in instances:
        instance.kill()


def seed(user_data: bytes | None, keys: tuple[str, ...] = (KEY,), instance_id: str = "i-0abc") -> Seed:
    return Seed(instance_id=instance_id, hostname="ip-10-0-1-5.ec2.internal", user_data=user_data, public_keys=keys)


def test_user_data_runs_once_and_stop_exits_cleanly(boot: Callable[[Seed], Instance], tmp_path: Path) -> None:
    user_data = b"#!/bin/sh\necho \"user data ran as $(id -u) in $(pwd)\"\ndate >> /root/ran\n"
    first = boot(seed(user_data))
    first.wait_for("Cloud-init v. ")
    first.wait_for("finished at")
    log = first.log()
    assert "user data ran as 0 in /" in log
    assert "running 'init'" in log and "running 'modules:final'" in log
    os.kill(first.init_pid(), signal.SIGTERM)
    assert first.exit_code() == 0
    assert "minicloud-init: stopped" in first.log()
    root = tmp_path / "rootfs"
    assert (root / "root" / "ran").read_text().count("\n") == 1
    assert "user data ran" in (root / "var" / "log" / "cloud-init-output.log").read_text()
    # authorized_keys for admin: the key, once, mode 600, owned by admin
    keys = root / "home" / "admin" / ".ssh" / "authorized_keys"
    assert keys.read_text() == KEY + "\n"
    assert keys.stat().st_mode & 0o777 == 0o600 and keys.stat().st_uid == 1000
    assert (root / "home" / "admin" / ".ssh").stat().st_mode & 0o777 == 0o700

    second = boot(seed(user_data))  # a start after a stop: no second run, keys not duplicated
    second.wait_for("finished at")
    os.kill(second.init_pid(), signal.SIGTERM)
    assert second.exit_code() == 0
    assert (root / "root" / "ran").read_text().count("\n") == 1
    assert keys.read_text() == KEY + "\n"
    assert "user data ran as" not in second.log()

    third = boot(seed(user_data, instance_id="i-0new"))  # an image of it, launched as another instance
    third.wait_for("finished at")
    os.kill(third.init_pid(), signal.SIGTERM)
    assert third.exit_code() == 0
    assert (root / "root" / "ran").read_text().count("\n") == 2


def test_poweroff_inside_ends_pid_1(boot: Callable[[Seed], Instance], tmp_path: Path) -> None:
    instance = boot(seed(b"#!/bin/sh\necho about to power off\npoweroff\n"))
    assert instance.exit_code() == POWEROFF_EXIT_CODE
    assert "about to power off" in instance.log() and "powered off" in instance.log()


@pytest.mark.parametrize("command", ["/usr/local/sbin/reboot", "/usr/local/sbin/shutdown -r now"])
def test_reboot_inside_asks_for_a_restart(boot: Callable[[Seed], Instance], command: str) -> None:
    # busybox's sh runs its own reboot applet before any PATH lookup (it signals SIGTERM: a stop),
    # so the shim is named by its path here; dash (the Debian AMI's sh) finds it on PATH.
    instance = boot(seed(f"#!/bin/sh\n{command}\n".encode()))
    assert instance.exit_code() == REBOOT_EXIT_CODE
    assert "rebooting" in instance.log()


def test_the_shims_are_first_on_path(boot: Callable[[Seed], Instance]) -> None:
    instance = boot(seed(b"#!/bin/dash\necho \"found $(command -v poweroff) $(command -v reboot)\"\n"))
    instance.wait_for("found /usr/local/sbin/poweroff /usr/local/sbin/reboot")
    os.kill(instance.init_pid(), signal.SIGTERM)
    assert instance.exit_code() == 0


def test_shutdown_by_a_non_root_user_is_refused(boot: Callable[[Seed], Instance]) -> None:
    instance = boot(seed(b"#!/bin/sh\nsu admin -s /bin/sh -c 'shutdown -h now'; echo \"shutdown said $?\"\n"))
    instance.wait_for("shutdown said 1")
    assert "must be superuser" in instance.log()
    os.kill(instance.init_pid(), signal.SIGTERM)
    assert instance.exit_code() == 0


def test_cloud_config_is_reported_unsupported(boot: Callable[[Seed], Instance]) -> None:
    instance = boot(seed(b"#cloud-config\npackages: [nginx]\n", keys=()))
    instance.wait_for("#cloud-config user data is not supported")
    instance.wait_for("finished at")
    os.kill(instance.init_pid(), signal.SIGTERM)
    assert instance.exit_code() == 0


def test_stop_ends_long_running_user_data_and_orphans_are_reaped(boot: Callable[[Seed], Instance]) -> None:
    script = b"#!/bin/sh\nfor i in 1 2 3 4 5; do sh -c 'sleep 0.05 &'; done\necho orphans made\nsleep 1000\n"
    instance = boot(seed(script))
    instance.wait_for("orphans made")
    time.sleep(0.5)
    init = instance.init_pid()

    def orphans() -> tuple[list[str], list[str]]:
        """init's zombie children, and its orphaned ``sleep 0.05`` children still running."""
        zombies, running = [], []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                    cmdline = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                fields = stat.rsplit(")", 1)[1].split()
                if int(fields[1]) != init:
                    continue
                if fields[0] == "Z":
                    zombies.append(entry.name)
                elif cmdline == b"sleep\x000.05\x00":
                    running.append(entry.name)
        return zombies, running

    deadline = time.monotonic() + 10  # the orphans end after 0.05 s, later on a busy machine; then reaped
    while orphans() != ([], []) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert orphans() == ([], [])
    started = time.monotonic()
    os.kill(init, signal.SIGTERM)
    assert instance.exit_code() == 0
    assert time.monotonic() - started < 6


def test_keepalive_is_restarted_when_it_dies(boot: Callable[[Seed], Instance]) -> None:
    instance = boot(seed(None))
    instance.wait_for("finished at")
    init = instance.init_pid()
    children = Path(f"/proc/{init}/task/{init}/children").read_text().split()
    sleeper = [pid for pid in children if "sleep" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(sleeper) == 1
    os.kill(int(sleeper[0]), signal.SIGKILL)
    instance.wait_for("keepalive exited; restarting")
    os.kill(init, signal.SIGTERM)
    assert instance.exit_code() == 0


def test_no_user_data_still_prints_the_final_line(boot: Callable[[Seed], Instance]) -> None:
    instance = boot(seed(None, keys=()))
    instance.wait_for("Datasource DataSourceNoCloud")
    os.kill(instance.init_pid(), signal.SIGTERM)
    assert instance.exit_code() == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT])
def test_other_stop_signals_stop_it(boot: Callable[[Seed], Instance], sig: signal.Signals) -> None:
    # an image's StopSignal (nginx's is SIGQUIT) reaches PID 1 when the engine stops the instance
    instance = boot(seed(None, keys=()))
    instance.wait_for("finished at")
    os.kill(instance.init_pid(), sig)
    assert instance.exit_code() == 0
    assert "minicloud-init: stopped" in instance.log()
