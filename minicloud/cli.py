"""``minicloud`` command line: ``up``, ``accounts``, ``images``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from minicloud.config import Config, ConfigError, load_config


def _config_from(args: argparse.Namespace) -> Config:
    overrides: dict[str, Any] = {
        "host": getattr(args, "host", None), "port": getattr(args, "port", None),
        "data_dir": getattr(args, "data_dir", None), "metadata_url": getattr(args, "metadata_url", None),
    }
    return load_config(overrides=overrides, config_file=getattr(args, "config", None))


def _open_store(config: Config) -> Any:
    from minicloud.storage.metadata.db import Database

    # Everything minicloud writes (the metadata store holds every secret) is for root's eyes only.
    os.umask(0o077)
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    config.data_dir.chmod(0o700)
    db = Database(config.database_url)
    db.migrate()
    return db


def cmd_up(args: argparse.Namespace) -> int:
    from minicloud.iam.accounts import bootstrap_root
    from minicloud.iam.authorizer import Authorizer
    from minicloud.iam.credentials import CredentialStore
    from minicloud.runtime import Runtime
    from minicloud.server.app import MinicloudApp
    from minicloud.server.protocol import bounded_protocol
    from minicloud.server.workers import PrimarySwitch, S3Workers, worker_count
    from minicloud.storage.blobs import writerproc
    from minicloud.topology import Topology

    config = _config_from(args)
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Forked now, before any thread or event loop exists; they start once the store is migrated.
    os.umask(0o077)  # (what they write is for root's eyes only too: see _open_store)
    count = worker_count(config.s3_workers)
    # One small-blob writer for this process and its S3 workers, hosted by the first worker
    # (storage.blobs.writerproc); without workers, this process starts a writer process on its first copy.
    shared = _shared_writer(count)
    workers = S3Workers.fork(count, lambda channel, index: _serve_s3(config, channel, shared, index))
    if shared is not None and not workers.pids:  # none could be forked: this process starts its own writer
        shared.close_all_but(None)
    elif shared is not None:
        shared.close_all_but(0)
        writerproc.use_channel(shared.clients[0], runs_writes=_writer_commits(config))
    db = _open_store(config)
    env_keys = None
    if config.root_access_key_id and config.root_secret_access_key:
        env_keys = (config.root_access_key_id, config.root_secret_access_key)
    root = db.write_sync(lambda conn: bootstrap_root(conn, config.data_dir / "credentials.json", env_keys))
    runtime = Runtime(config=config, topology=Topology(config), db=db, credentials=CredentialStore(db),
                      authorizer=Authorizer(), root_keys=root)
    app = MinicloudApp(runtime)
    workers.start()
    endpoint = runtime.endpoint_url
    print(
        f"minicloud is starting\n"
        f"  AWS APIs:      {endpoint}\n"
        f"  registry:      {endpoint}/v2/\n"
        f"  health:        {endpoint}/_minicloud/health\n"
        f"  data dir:      {config.data_dir}\n"
        f"  S3 workers:    {len(workers.pids)} (connections that start with a signed S3 read, besides this process)\n"
        f"  regions:       {', '.join(runtime.topology.regions)}\n"
        f"  account:       {root.account_id}\n"
        f"  access key:    {root.access_key_id}\n"
        f"  secret key:    {root.secret_access_key}\n"
        f"\n  export AWS_ACCESS_KEY_ID={root.access_key_id} AWS_SECRET_ACCESS_KEY={root.secret_access_key}"
        f" AWS_DEFAULT_REGION={config.default_region} AWS_ENDPOINT_URL={endpoint}\n",
        flush=True,
    )
    import uvicorn  # (here: the S3 workers, forked above, never run it)

    server = uvicorn.Server(uvicorn.Config(
        app, host=config.host, port=config.port, loop="uvloop", lifespan="on",
        http=bounded_protocol(config.max_header_bytes, PrimarySwitch(workers) if workers.pids else None),
        # A client's address is the connection's: X-Forwarded-For would let any local client pick
        # the aws:SourceIp that bucket and IAM policies test.
        proxy_headers=False,
        access_log=config.access_log, log_level=config.log_level, server_header=False,
        date_header=True, timeout_keep_alive=30,
    ))
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-sends the signal to the handlers that
    # were installed before it: make those no-ops so that a clean stop exits with status 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        server.run()
    finally:
        workers.stop()
        db.close()
    return 0 if server.started else 1


def _shared_writer(count: int) -> Any:
    from minicloud.storage.blobs.writerproc import SharedWriter

    if count <= 0:
        return None
    try:
        return SharedWriter(count + 1)
    except OSError as exc:
        logging.getLogger("minicloud.cli").error("no shared small-blob writer (%s): each S3 process starts its own",
                                                 exc)
        return None


def _writer_commits(config: Config) -> bool:
    """Whether the shared small-blob writer commits S3's object rows with their data: with SQLite,
    on the hosting worker's thread (``storage.blobs.storejobs``)."""
    return config.database_url.startswith("sqlite")


class _HostedWrites:
    """The hosted small-blob writer's way to commit writes: the worker's ``Database.run_here``
    once the worker has opened it (until then each write is left to its server)."""

    def __init__(self) -> None:
        self.db: Any = None

    def __call__(self, batch: Any) -> None:
        if self.db is None:
            for write in batch:
                write.error = RuntimeError("the metadata store is not open yet")
            return
        self.db.run_here(batch)


def _serve_s3(config: Config, channel: Any, shared: Any, index: int) -> int:
    """S3 worker ``index`` (``server.workers``): IAM, STS and S3 over the same store, no controllers.
    Its small copies go to the shared writer (``shared``: process 0 is the primary, worker i is
    process i + 1), which the first worker hosts on a thread, committing object rows there too."""
    from dataclasses import replace

    from minicloud.server.workers import serve_s3
    from minicloud.storage.blobs import writerproc

    hosted = _HostedWrites()
    if shared is not None:
        hosting = index == 0
        shared.close_all_but(index + 1, hosting=hosting)
        if hosting:
            shared.host(run_writes=hosted if _writer_commits(config) else None)
        writerproc.use_channel(shared.clients[index + 1], runs_writes=_writer_commits(config))

    async def build() -> Any:
        from minicloud.iam.accounts import bootstrap_root
        from minicloud.iam.authorizer import Authorizer
        from minicloud.iam.credentials import CredentialStore
        from minicloud.runtime import Runtime
        from minicloud.server.app import MinicloudApp
        from minicloud.services.iam.provider import IamProvider
        from minicloud.services.s3.provider import S3Provider
        from minicloud.services.sts.provider import StsProvider
        from minicloud.storage.metadata.db import Database
        from minicloud.topology import Topology

        worker_config = replace(config, controllers=False, engine=False)
        db = hosted.db = Database(worker_config.database_url)
        env_keys = None
        if config.root_access_key_id and config.root_secret_access_key:
            env_keys = (config.root_access_key_id, config.root_secret_access_key)
        root = await db.write(lambda conn: bootstrap_root(conn, config.data_dir / "credentials.json", env_keys))
        runtime = Runtime(config=worker_config, topology=Topology(worker_config), db=db,
                          credentials=CredentialStore(db), authorizer=Authorizer(), root_keys=root)
        iam = IamProvider(runtime)
        app = MinicloudApp(runtime, [iam, StsProvider(runtime), S3Provider(runtime)])
        await iam.start()  # (S3's start-up clean-up is the primary's)
        import gc

        gc.collect()
        gc.freeze()
        return app

    return serve_s3(channel, build, config.max_header_bytes, 30.0)


def cmd_accounts_create(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from minicloud.iam.access_role import create_access_role
    from minicloud.iam.accounts import create_account, email_taken, management_account

    config = _config_from(args)
    db = _open_store(config)
    email = args.email or f"{args.name.lower().replace(' ', '-')}@minicloud.local"

    def create(conn: Any) -> Any:
        if email_taken(conn, email):
            raise SystemExit(f"minicloud: an account with email {email} already exists")
        management = management_account(conn)
        account, keys = create_account(conn, args.name, email)
        if management is not None:  # joins the organization, like Organizations' CreateAccount
            create_access_role(conn, account.account_id, management.account_id,
                               "OrganizationAccountAccessRole", datetime.now(UTC))
        return account, keys

    account, keys = db.write_sync(create)
    print(f"account:     {account.account_id}\nname:        {account.name}\nemail:       {account.email}\n"
          f"access key:  {keys.access_key_id}\nsecret key:  {keys.secret_access_key}")
    db.close()
    return 0


def cmd_accounts_list(args: argparse.Namespace) -> int:
    from minicloud.iam.accounts import list_accounts

    config = _config_from(args)
    db = _open_store(config)
    for account in db.read_sync(list_accounts):
        marker = " (management)" if account.management else ""
        print(f"{account.account_id}  {account.name}  {account.email}  {account.status}{marker}")
    db.close()
    return 0


def cmd_images_bootstrap(args: argparse.Namespace) -> int:
    from minicloud.images.cli import run_bootstrap

    # The services' own recipes join the library's: EC2's AMIs and Lambda's runtimes, by name.
    from minicloud.services.ec2 import guest  # noqa: F401
    from minicloud.services.lambda_ import images  # noqa: F401

    return run_bootstrap(_config_from(args), args.names, args.endpoint, args.cache_dir)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="where minicloud keeps its state (default ./data)")
    parser.add_argument("--metadata-url", help="postgresql://... (default: SQLite in the data dir)")
    parser.add_argument("--config", type=Path, help="a TOML configuration file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minicloud", description="A real cloud on one Linux machine.")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run minicloud in the foreground")
    up.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--port", type=int, help="port for every API (default 4566)")
    _common(up)
    up.set_defaults(func=cmd_up)

    accounts = commands.add_parser("accounts", help="manage accounts").add_subparsers(dest="action", required=True)
    create = accounts.add_parser("create", help="create an account and print its root keys")
    create.add_argument("name")
    create.add_argument("--email")
    _common(create)
    create.set_defaults(func=cmd_accounts_create)
    listing = accounts.add_parser("list", help="list accounts")
    _common(listing)
    listing.set_defaults(func=cmd_accounts_list)

    images = commands.add_parser("images", help="base images").add_subparsers(dest="action", required=True)
    boot = images.add_parser("bootstrap", help="build base images from Debian's packages and push them")
    boot.add_argument("names", nargs="*", metavar="NAME", help="busybox, debian, python, nginx, ..., ami-debian (EC2), "
                      "lambda runtimes (default: all library images)")
    boot.add_argument("--endpoint", help="registry URL (default: the configured host and port)")
    boot.add_argument("--cache-dir", type=Path, help="build cache (default ~/.cache/minicloud/images)")
    _common(boot)
    boot.set_defaults(func=cmd_images_bootstrap)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        print(f"minicloud: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
