"""Docker's default seccomp profile as generated, converted for a capability set, and the security
options of a container (--security-opt, --privileged) applied to its runtime spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from minicloud.engine.containers.seccomp import CLONE_NAMESPACE_FLAGS, default_profile, kernel_has_x32, to_oci
from minicloud.engine.containers.spec import (
    DEFAULT_CAPABILITIES,
    BundleSpec,
    ProcessSpec,
    apply_security,
    build,
    security_options,
)
from minicloud.engine.errors import InvalidArgument


def allowed(seccomp: dict[str, Any]) -> set[str]:
    return {name for rule in seccomp["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
            for name in rule["names"]}


def test_default_profile_for_docker_capabilities() -> None:
    seccomp = to_oci(default_profile(), DEFAULT_CAPABILITIES)
    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO" and seccomp["defaultErrnoRet"] == 1
    assert "SCMP_ARCH_X86_64" in seccomp["architectures"] and "SCMP_ARCH_X86" in seccomp["architectures"]
    assert ("SCMP_ARCH_X32" in seccomp["architectures"]) == kernel_has_x32()
    names = allowed(seccomp)
    assert {"read", "write", "execve", "openat", "clone3"} - names == {"clone3"}
    assert "chroot" in names  # CAP_SYS_CHROOT is in Docker's set
    assert "ptrace" in names  # as Docker on kernels from 4.8
    for blocked in ("mount", "unshare", "setns", "reboot", "keyctl", "add_key", "init_module", "bpf", "userfaultfd"):
        assert blocked not in names
    (clone,) = [r for r in seccomp["syscalls"] if r["names"] == ["clone"]]
    assert clone["args"] == [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]
    (clone3,) = [r for r in seccomp["syscalls"] if r["names"] == ["clone3"]]
    assert clone3["action"] == "SCMP_ACT_ERRNO" and clone3["errnoRet"] == 38


def test_capabilities_open_their_system_calls() -> None:
    seccomp = to_oci(default_profile(), [*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN", "CAP_SYS_BOOT"])
    names = allowed(seccomp)
    assert {"mount", "unshare", "setns", "clone", "reboot"} <= names
    assert not [r for r in seccomp["syscalls"] if r["names"] == ["clone3"] and r["action"] != "SCMP_ACT_ALLOW"]


def spec_doc(tmp_path: Path) -> dict[str, Any]:
    return build(BundleSpec(container_id="c1", rootfs=tmp_path, hostname="h",
                            process=ProcessSpec(args=["sh"], env=[])))


def test_security_options_on_the_spec(tmp_path: Path) -> None:
    doc = spec_doc(tmp_path)
    apply_security(doc, {})
    assert doc["process"]["noNewPrivileges"] is False and "seccomp" in doc["linux"]
    doc = spec_doc(tmp_path)
    apply_security(doc, {"SecurityOpt": ["no-new-privileges", "seccomp=unconfined"]})
    assert doc["process"]["noNewPrivileges"] is True and "seccomp" not in doc["linux"]
    custom = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    doc = spec_doc(tmp_path)
    apply_security(doc, {"SecurityOpt": [f"seccomp={json.dumps(custom)}"]})
    assert doc["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ALLOW"
    assert doc["linux"]["seccomp"]["syscalls"] == [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]


def test_privileged_lifts_the_confinement(tmp_path: Path) -> None:
    doc = spec_doc(tmp_path)
    apply_security(doc, {"Privileged": True})
    linux = doc["linux"]
    assert "seccomp" not in linux and linux["maskedPaths"] == [] and linux["readonlyPaths"] == []
    assert "CAP_SYS_ADMIN" in doc["process"]["capabilities"]["effective"]
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert all(d["path"] not in ("/dev/null", "/dev/ptmx") for d in linux["devices"])
    sysfs = next(m for m in doc["mounts"] if m["destination"] == "/sys")
    assert "ro" not in sysfs["options"]


@pytest.mark.parametrize("option", ["seccomp=not-json", "no-new-privileges=maybe", "apparmor=docker-default",
                                    "bogus"])
def test_bad_security_options_are_refused(option: str) -> None:
    with pytest.raises(InvalidArgument):
        security_options({"SecurityOpt": [option]})
