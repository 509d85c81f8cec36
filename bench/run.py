"""Benchmarks of minicloud side by side with its peers.

    .venv/bin/python bench/run.py                      # every area
    .venv/bin/python bench/run.py foundation           # one area
    .venv/bin/python bench/run.py foundation --rounds 1 --duration 3
    .venv/bin/python bench/run.py --list

Options after the area name go to that area (``bench/run.py foundation --help``). Each area is a
module ``bench/<area>.py`` with ``main(argv: Sequence[str]) -> int``; register new ones in AREAS.
"""

from __future__ import annotations

import importlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make ``bench`` and ``minicloud`` importable
    sys.path.insert(0, str(REPO))

# area name -> (module, one-line description)
AREAS: dict[str, tuple[str, str]] = {
    "foundation": ("bench.foundation",
                   "signed sts:GetCallerIdentity + iam:ListUsers: latency, req/s @32, RSS; moto, MiniStack"),
    "engine": ("bench.engine", "docker run --rm busybox true latency; Debian's dockerd, raw runc"),
    "ec2": ("bench.ec2", "RunInstances -> running / SSH (1, 20), idle memory; DescribeInstances @500; moto, MiniStack"),
    "registry": ("bench.registry", "1 GiB blob up/down, manifest req/s @32, skopeo copy; CNCF distribution 2.8"),
    "s3": ("bench.s3", "4 KiB PUT/GET ops/s @16, 1 GiB multipart PUT/GET MB/s, 10k listing, RSS; moto, MiniStack, "
                       "SeaweedFS, nginx"),
    "lambda": ("bench.lambda_", "Lambda cold first invoke, warm p50/p99, invocations/s @8 through boto3; MiniStack"),
}


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the areas' finally blocks, which stop their servers


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if args and args[0] == "--list":
        for name, (_, desc) in AREAS.items():
            print(f"{name:12} {desc}")
        return 0
    areas: list[str] = []
    while args and not args[0].startswith("-"):
        name = args.pop(0)
        if name not in AREAS:
            print(f"unknown area {name!r}; known: {', '.join(AREAS)}", file=sys.stderr)
            return 2
        areas.append(name)
    if not areas:
        areas = list(AREAS)
        if args:
            print("options need an area name first, e.g. bench/run.py foundation --rounds 1", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    status = 0
    for name in areas:
        module = importlib.import_module(AREAS[name][0])
        status = max(status, int(module.main(args)))
    return status


if __name__ == "__main__":
    sys.exit(main())
