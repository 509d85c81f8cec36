"""The parent of a ``docker exec -t`` process: ``python -I -S exec_parent.py <pid file> <runc exec -d ...>``.

Standard library only, so that it starts quickly. The engine runs a terminal exec with
``runc exec -d --console-socket`` and receives the container's terminal itself (as containerd's
shim does): runc in the foreground would put a second terminal between the process and us and
clear ONLCR on the container's one only after the process has started. A process that reads its
terminal's settings first (a shell does, before its first prompt) then restores ONLCR, and every
newline comes out as ``\\r\\r\\n``. A detached process still needs a parent that waits for it:

1. becomes a child subreaper, so the process is re-parented to it when runc exits;
2. runs the runc command line it is given and reports ``{"pid": N}`` or ``{"error": "..."}`` as
   one line on stdout, which it then closes;
3. waits for the process and exits with its status (128 + the signal's number when it was
   killed, as runc in the foreground reports it).
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36


def report(doc: dict[str, object]) -> None:
    os.write(1, (json.dumps(doc) + "\n").encode())
    os.close(1)


def wait_for(pid: int) -> int:
    while True:
        try:
            child, status = os.waitpid(-1, 0)
        except ChildProcessError:  # not ours after all: nothing left to wait for
            return 255
        if child == pid:
            return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def main(argv: list[str]) -> int:
    pid_file, runc = argv[0], argv[1:]
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "cannot become a child subreaper")
        result = subprocess.run(runc, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, check=False)
        if result.returncode != 0:
            report({"error": result.stderr.decode(errors="replace").strip() or "runc exec failed",
                    "code": result.returncode})
            return result.returncode
        with open(pid_file) as f:
            pid = int(f.read().strip())
    except Exception as exc:
        report({"error": f"exec failed: {exc}", "code": 255})
        return 255
    report({"pid": pid})
    return wait_for(pid)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
