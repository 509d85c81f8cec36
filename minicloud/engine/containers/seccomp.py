"""Docker's default seccomp profile, generated here: an allow-list of system calls (everything
else fails with EPERM), with the calls that need a capability allowed only when the container
has it (``mount``, ``unshare``, ``setns``... with CAP_SYS_ADMIN; ``reboot`` with CAP_SYS_BOOT;
``ptrace`` is allowed, as Docker allows it on kernels from 4.8, where it cannot bypass the filter),
``clone`` refused the namespace flags without CAP_SYS_ADMIN, ``clone3`` answered ENOSYS so that
the C library falls back to ``clone``, ``personality`` limited to the harmless personas and
``socket`` refused AF_VSOCK.

Profiles are written in Docker's format (``names``/``action``/``args``/``includes``/``excludes``,
also what ``--security-opt seccomp=<file>`` sends) and converted to the OCI runtime spec's
``linux.seccomp`` for the container's capability set. Names that the host's libseccomp does not
know are skipped by runc.

The x32 sub-architecture is listed only when the kernel has the x32 ABI (Docker lists it always):
without it no x32 program runs and an x32 system call fails anyway, and each architecture costs
runc milliseconds of CPU compiling the filter at every start.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Iterable
from typing import Any

from minicloud.engine.errors import InvalidArgument

EPERM = 1
ENOSYS = 38
ARCHITECTURES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
CLONE_NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
AF_VSOCK = 40
PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)  # PER_LINUX, PER_LINUX32, UNAME26 variants, query

_ALLOWED_NAMES = """
accept accept4 access adjtimex alarm arch_prctl bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1
epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2
fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat
fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait
futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid
getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom
getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1
inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set
io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32
lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise
map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall
mmap mmap2 modify_ldt mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64
mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe
pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv
recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall
rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam sched_get_priority_max
sched_get_priority_min sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity
sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid
setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid
setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid
setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn
socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs
sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill
truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice
wait4 waitid waitpid write writev
kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace
"""
_ALLOWED = tuple(_ALLOWED_NAMES.split())

# System calls allowed only to containers with the capability that guards them in the kernel.
# (The last line of the list above is ptrace and its kin: Docker allows them on kernels from 4.8.)
_BY_CAPABILITY: dict[str, tuple[str, ...]] = {
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
    "CAP_SYS_ADMIN": ("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
                      "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open",
                      "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount",
                      "umount2", "unshare"),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_CHROOT": ("chroot",),
    "CAP_SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64"),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
}


def default_profile() -> dict[str, Any]:
    """Docker's default profile, in Docker's profile format."""
    rules: list[dict[str, Any]] = [{"names": list(_ALLOWED), "action": "SCMP_ACT_ALLOW"}]
    rules += [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]} for persona in PERSONAS]
    rules.append({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]})
    rules.append({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                  "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS,
                  "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    for capability, names in _BY_CAPABILITY.items():
        rules.append({"names": list(names), "action": "SCMP_ACT_ALLOW", "includes": {"caps": [capability]}})
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": EPERM, "syscalls": rules}


def _applies(rule: dict[str, Any], capabilities: set[str]) -> bool:
    includes = rule.get("includes") or {}
    excludes = rule.get("excludes") or {}
    if any(cap not in capabilities for cap in includes.get("caps") or []):
        return False
    if any(cap in capabilities for cap in excludes.get("caps") or []):
        return False
    arches = includes.get("arches") or []
    return not arches or "amd64" in arches or "x86_64" in arches


def to_oci(profile: dict[str, Any], capabilities: Iterable[str]) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` for a Docker-format ``profile`` and the container's capabilities."""
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise InvalidArgument("Error response from daemon: invalid seccomp profile: it has no defaultAction")
    caps = set(capabilities)
    syscalls = []
    for rule in profile.get("syscalls") or []:
        if not isinstance(rule, dict) or not _applies(rule, caps):
            continue
        names = list(rule.get("names") or ([rule["name"]] if rule.get("name") else []))
        if not names:
            continue
        entry: dict[str, Any] = {"names": names, "action": rule.get("action") or "SCMP_ACT_ALLOW"}
        if rule.get("args"):
            entry["args"] = [{"index": int(a["index"]), "value": int(a.get("value") or 0),
                              "valueTwo": int(a.get("valueTwo") or 0), "op": a["op"]} for a in rule["args"]]
        if rule.get("errnoRet") is not None:
            entry["errnoRet"] = int(rule["errnoRet"])
        syscalls.append(entry)
    seccomp: dict[str, Any] = {"defaultAction": profile["defaultAction"], "syscalls": syscalls,
                               "architectures": _architectures(profile)}
    if profile.get("defaultErrnoRet") is not None:
        seccomp["defaultErrnoRet"] = int(profile["defaultErrnoRet"])
    return seccomp


def _architectures(profile: dict[str, Any]) -> list[str]:
    """``architectures``, or the x86-64 entry of Docker's ``archMap`` with its sub-architectures
    (x32 only where the kernel has it)."""
    if profile.get("architectures"):
        return [str(a) for a in profile["architectures"]]
    found = list(ARCHITECTURES)
    for entry in profile.get("archMap") or []:
        if isinstance(entry, dict) and entry.get("architecture") == "SCMP_ARCH_X86_64":
            found = [entry["architecture"], *(entry.get("subArchitectures") or [])]
            break
    return found if kernel_has_x32() else [arch for arch in found if arch != "SCMP_ARCH_X32"]


X32_SYSCALL_BIT = 0x40000000
SYS_GETPID = 39  # the same number in the x86-64 and x32 tables


@functools.cache
def kernel_has_x32() -> bool:
    """Whether the kernel runs x32 system calls: x32's getpid answers our pid, else ENOSYS."""
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.syscall(ctypes.c_long(X32_SYSCALL_BIT | SYS_GETPID)) == os.getpid())
