"""``minicloud images bootstrap``: the command's glue (credentials, endpoint, progress, summary)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from minicloud.config import Config
from minicloud.images.bootstrap import Outcome, bootstrap
from minicloud.images.layers import LayerError
from minicloud.images.push import PushError
from minicloud.images.recipes import RecipeError
from minicloud.images.rootfs import RootfsError


class CredentialsMissing(RuntimeError):
    pass


def root_keys(config: Config) -> tuple[str, str]:
    """The management account's root keys: MINICLOUD_ROOT_* when set, else the data dir's
    ``credentials.json`` (written by ``minicloud up``)."""
    if config.root_access_key_id and config.root_secret_access_key:
        return config.root_access_key_id, config.root_secret_access_key
    path = config.data_dir / "credentials.json"
    try:
        doc = json.loads(path.read_text())
        return str(doc["access_key_id"]), str(doc["secret_access_key"])
    except (OSError, ValueError, KeyError, TypeError):
        raise CredentialsMissing(
            f"no root credentials: {path} is missing or unreadable (start `minicloud up` with this data dir "
            f"first, or set MINICLOUD_ROOT_ACCESS_KEY_ID and MINICLOUD_ROOT_SECRET_ACCESS_KEY)") from None


def default_endpoint(config: Config) -> str:
    host = "127.0.0.1" if config.host in ("0.0.0.0", "", "::") else config.host
    return f"http://{host}:{config.port}"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def summary(outcomes: list[Outcome], seconds: float) -> str:
    lines = []
    for o in outcomes:
        state = f"built in {o.build.seconds:.1f} s" if o.build.built else "cached"
        more = f" (+{len(o.references) - 1} tags)" if len(o.references) > 1 else ""
        lines.append(f"  {o.recipe.name:<12} {o.reference}{more}: {state}; "
                     f"{o.push.uploaded} blobs uploaded ({_mb(o.push.uploaded_bytes)}), {o.push.mounted} mounted, "
                     f"{o.push.present} present, {o.push.manifests_put} tags updated")
    built = sum(o.build.built for o in outcomes)
    uploaded = sum(o.push.uploaded for o in outcomes)
    uploaded_bytes = sum(o.push.uploaded_bytes for o in outcomes)
    lines.append(f"{len(outcomes)} images: {built} built, {uploaded} blobs uploaded ({_mb(uploaded_bytes)}) "
                 f"in {seconds:.1f} s")
    return "\n".join(lines)


def run_bootstrap(config: Config, names: list[str], endpoint: str | None, cache_dir: Path | None) -> int:
    try:
        keys = root_keys(config)
    except CredentialsMissing as exc:
        print(f"minicloud: {exc}", file=sys.stderr)
        return 2
    target = endpoint or default_endpoint(config)
    print(f"images bootstrap: {', '.join(names) if names else 'all library images'} -> {target}", flush=True)
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"  {message}", flush=True)

    try:
        outcomes = asyncio.run(bootstrap(target, keys, names, cache_dir, progress=progress))
    except (RecipeError, RootfsError, PushError, LayerError, OSError) as exc:
        print(f"minicloud: images bootstrap failed: {exc}", file=sys.stderr)
        return 1
    print(summary(outcomes, time.monotonic() - started), flush=True)
    return 0
