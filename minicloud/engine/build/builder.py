"""The classic builder's executor: one step per instruction, each making an image (a layer for
RUN, COPY and ADD; configuration only for the rest), reused from the cache when the same parent
and instruction made one before. RUN runs in a container of the engine (the default bridge
network unless the build asks for another), COPY and ADD write into an overlay of the parent in
a chrooted child process; both become layers through the commit machinery.

Output follows dockerd's stream: ``Step n/m : ...``, `` ---> Using cache``, `` ---> Running in
<id>``, the step's output, ``Removing intermediate container <id>``, `` ---> <image>``,
``Successfully built`` and ``Successfully tagged``; failures end it with ``errorDetail``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import posixpath
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minicloud.engine.build.cache import BuildCache
from minicloud.engine.build.config import METADATA, StageConfig, apply, command_args
from minicloud.engine.build.context import content_hash, find_sources
from minicloud.engine.build.dockerfile import Dockerfile, DockerfileError, Instruction, expand, expand_words, parse
from minicloud.engine.build.errors import BuildError
from minicloud.engine.build.files import put_files, release
from minicloud.engine.build.network import BuildNetwork, proxy_environment
from minicloud.engine.containers import logs as logfile
from minicloud.engine.containers.model import DOCKER
from minicloud.engine.errors import EngineError, InvalidArgument, NotImplementedYet
from minicloud.engine.images.commit import History, adopt_snapshot, derive_image, store_layer
from minicloud.engine.images.reference import Reference, looks_like_id
from minicloud.engine.images.reference import parse as parse_reference
from minicloud.engine.images.registry import Credentials
from minicloud.engine.images.store import Image, Layer
from minicloud.engine.snapshots.mounts import mount, unmount

if TYPE_CHECKING:
    from minicloud.engine.service import Engine

Emit = Callable[[dict[str, Any]], None]
BUILD_NAMESPACE = "build"  # RUN containers on the build network (a network namespace path, refused to the API)
PREDEFINED_ARGS = frozenset({"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                             "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"})


@dataclass(slots=True)
class BuildOptions:
    tags: list[Reference] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    remove: bool = True  # --rm: intermediate containers of successful steps
    force_remove: bool = False  # --force-rm: also after a failure
    quiet: bool = False
    pull: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    network_mode: str = ""
    credentials: dict[str, Credentials] = field(default_factory=dict)  # by registry host
    limits: dict[str, int] = field(default_factory=dict)  # HostConfig limits of RUN containers (Memory, ...)


@dataclass(slots=True)
class Stage:
    name: str
    index: int
    image: Image | None
    cfg: StageConfig
    args: dict[str, str] = field(default_factory=dict)  # ARG values in scope


@dataclass(slots=True)
class _Plan:
    meta: list[Instruction]
    stages: list[tuple[Instruction, list[Instruction]]]


def plan(dockerfile: Dockerfile, target: str = "") -> _Plan:
    """Split into the ARGs before the first FROM and the stages; stop at ``target``."""
    meta: list[Instruction] = []
    stages: list[tuple[Instruction, list[Instruction]]] = []
    for ins in dockerfile.instructions:
        if ins.keyword == "FROM":
            stages.append((ins, []))
        elif stages:
            stages[-1][1].append(ins)
        elif ins.keyword == "ARG":
            meta.append(ins)
        else:
            raise DockerfileError("no build stage in current context", ins.line)
    if not stages:
        raise InvalidArgument("the Dockerfile (Dockerfile) cannot be empty" if not dockerfile.instructions
                              else "no build stage in current context")
    if target:
        names = [_stage_name(ins) for ins, _ in stages]
        if target.lower() not in names:
            raise InvalidArgument(f"failed to reach build target {target} in Dockerfile")
        stages = stages[:names.index(target.lower()) + 1]
    return _Plan(meta, stages)


def _stage_name(ins: Instruction) -> str:
    words = ins.rest.split()
    return words[2].lower() if len(words) == 3 and words[1].upper() == "AS" else ""


class Builder:
    def __init__(self, engine: Engine, context: Path, options: BuildOptions, emit: Emit) -> None:
        self.engine = engine
        self.context = context
        self.options = options
        self.emit = emit
        self.cache = BuildCache(engine.root / "build")
        self.work = engine.root / "build" / "mnt"
        self.stages: list[Stage] = []
        self.step = 0
        self.total = 0
        self.used_args: set[str] = set()
        self.escape = "\\"
        self._meta: dict[str, str] = {}  # the ARGs before the first FROM, with their values
        self.network: BuildNetwork | None = None  # made at the first RUN that needs it

    def say(self, text: str) -> None:
        if not self.options.quiet:
            self.emit({"stream": text})

    # -- the build ------------------------------------------------------------------------------
    async def build(self, dockerfile: Dockerfile) -> Image:
        try:
            return await self._build(dockerfile)
        finally:
            if self.network is not None:
                await self.network.close()

    async def _build(self, dockerfile: Dockerfile) -> Image:
        self.escape = dockerfile.escape
        for warning in dockerfile.warnings:
            self.say(warning + "\n")
        steps = plan(dockerfile, self.options.target)
        self.total = sum(1 + len(body) for _, body in steps.stages)
        meta = self._meta_args(steps.meta)
        for index, (from_ins, body) in enumerate(steps.stages):
            stage = await self._from(from_ins, index, meta)
            for ins in body:
                await self._instruction(stage, ins, counted=True)
            self.stages.append(stage)
        final = self.stages[-1]
        if self.options.labels:
            final.cfg.config["Labels"] = {**(final.cfg.config.get("Labels") or {}), **self.options.labels}
            await self._commit(final, "LABEL " + json.dumps(self.options.labels, sort_keys=True), None)
        if final.image is None:
            await self._commit(final, "FROM scratch", None)
        assert final.image is not None
        return await self._finish(final.image)

    async def _finish(self, image: Image) -> Image:
        unused = sorted(set(self.options.build_args) - self.used_args - PREDEFINED_ARGS)
        if unused:
            self.say(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        for tag in self.options.tags:
            await asyncio.to_thread(self.engine.images.tag, image, tag)
            self.engine.events.publish("image", "tag", image.id, {"name": tag.familiar()})
        self.emit({"aux": {"ID": image.id}})
        if self.options.quiet:
            self.emit({"stream": image.id + "\n"})
            return image
        self.say(f"Successfully built {image.id[7:19]}\n")
        for tag in self.options.tags:
            self.say(f"Successfully tagged {tag.familiar()}\n")
        return image

    def _meta_args(self, instructions: list[Instruction]) -> dict[str, str]:
        values: dict[str, str] = {}
        for ins in instructions:
            for name, value in self._arg_values(ins, values, {}):
                if value is not None:
                    values[name] = value
        return values

    def _arg_values(self, ins: Instruction, env: dict[str, str],
                    inherited: dict[str, str]) -> list[tuple[str, str | None]]:
        result: list[tuple[str, str | None]] = []
        for word in ins.rest.split():
            name, sep, default = word.partition("=")
            if not name:
                raise DockerfileError("ARG names can not be blank", ins.line)
            value: str | None = None
            if self.options.build_args.get(name) is not None:
                value = self.options.build_args[name]
                self.used_args.add(name)
            elif sep:
                value = expand(default, env, self.escape)
            elif name in inherited:
                value = inherited[name]
            result.append((name, value))
        return result

    async def _instruction(self, stage: Stage, ins: Instruction, counted: bool) -> None:
        if counted:
            self.step += 1
            self.say(f"Step {self.step}/{self.total} : {ins.original}\n")
        try:
            if ins.keyword == "RUN":
                await self._run(stage, ins)
            elif ins.keyword in ("COPY", "ADD"):
                await self._copy(stage, ins)
            elif ins.keyword == "ARG":
                for name, value in self._arg_values(ins, self._env(stage), self._meta):
                    if value is not None:
                        stage.args[name] = value
                await self._commit(stage, f"ARG {ins.rest}", None)
            elif ins.keyword in METADATA:
                text = apply(ins, stage.cfg, self._env(stage))
                await self._commit(stage, text, None)
            else:
                raise DockerfileError(f"{ins.keyword} is not allowed here", ins.line)
        except DockerfileError as exc:
            raise BuildError(f"dockerfile parse error line {ins.line}: {exc.detail}") from None

    def _env(self, stage: Stage) -> dict[str, str]:
        return {**stage.args, **stage.cfg.env()}

    # -- FROM -----------------------------------------------------------------------------------
    async def _from(self, ins: Instruction, index: int, meta: dict[str, str]) -> Stage:
        self._meta = meta
        self.step += 1
        self.say(f"Step {self.step}/{self.total} : {ins.original}\n")
        words = expand_words(ins.rest, meta, self.escape)
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
            raise BuildError(f"dockerfile parse error line {ins.line}: FROM requires either one or three arguments")
        platform = ins.flags.get("platform", "")
        if platform and platform not in ("linux/amd64", "linux"):
            raise BuildError(f"no match for platform {platform}: only linux/amd64 images are available")
        name = words[0]
        image: Image | None = None
        if name.lower() != "scratch":
            earlier = self._stage(name)
            image = earlier.image if earlier is not None else await self._base_image(name)
        config: dict[str, Any] = {}
        if image is not None:
            config = copy.deepcopy(self.engine.images.config(image).get("config") or {})
            self.say(f" ---> {image.id[7:19]}\n")
        stage = Stage(words[2].lower() if len(words) == 3 else "", index, image, StageConfig(config, self.escape))
        triggers = config.pop("OnBuild", None) or []
        if triggers:
            self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            for trigger in triggers:
                for trigger_ins in parse(trigger).instructions:
                    await self._instruction(stage, trigger_ins, counted=False)
        return stage

    def _stage(self, name: str) -> Stage | None:
        for stage in self.stages:
            if stage.name and stage.name == name.lower():
                return stage
        if name.isdigit() and int(name) < len(self.stages):
            return self.stages[int(name)]
        return None

    async def _base_image(self, name: str) -> Image:
        try:
            ref = parse_reference(name)
        except InvalidArgument as exc:
            raise BuildError(str(exc)) from None
        image = self.engine.images.lookup(name)
        if image is not None and (not self.options.pull or looks_like_id(name)):
            return image
        try:
            return await self.engine.puller.pull(ref, self.options.credentials.get(ref.domain), self.emit)
        except EngineError as exc:
            raise BuildError(f"pull access denied for {ref.familiar_repository}, repository does not exist or "
                             f"may require 'docker login': {exc}" if exc.status == 404 else str(exc)) from None

    # -- steps that make images -----------------------------------------------------------------
    async def _commit(self, stage: Stage, text: str, layer: Layer | None, cache_key: str | None = None,
                      created_by: str | None = None) -> None:
        """Record a step's image (from the cache when possible)."""
        key = cache_key or f"#(nop) {text}"
        parent_id = stage.image.id if stage.image is not None else ""
        if layer is None and await self._cached(stage, key):
            return
        history = History(created_by or f"/bin/sh -c #(nop)  {text}", author=stage.cfg.author or "",
                          empty_layer=layer is None)
        image = await asyncio.to_thread(derive_image, self.engine.content, self.engine.images, stage.image,
                                        stage.cfg.config, layer, history)
        if layer is not None:
            await self.engine.unpacker.unpack([lay.digest for lay in image.layers], image.diff_ids)
        await asyncio.to_thread(self.cache.record, parent_id, key, image.id)
        stage.image = image
        self.say(f" ---> {image.id[7:19]}\n")

    async def _cached(self, stage: Stage, key: str) -> bool:
        if self.options.no_cache:
            return False
        found = await asyncio.to_thread(self.cache.lookup, stage.image.id if stage.image is not None else "", key)
        image = self.engine.images.lookup(found) if found else None
        if image is None:
            return False
        stage.image = image
        self.say(f" ---> Using cache\n ---> {image.id[7:19]}\n")
        return True

    async def _ensure_image(self, stage: Stage) -> Image:
        if stage.image is None:  # FROM scratch: an empty image to start a container from
            await self._commit(stage, "FROM scratch", None)
        assert stage.image is not None
        return stage.image

    # -- RUN ------------------------------------------------------------------------------------
    async def _run(self, stage: Stage, ins: Instruction) -> None:
        args = command_args(ins, stage.cfg)
        if not args:
            raise BuildError(f"dockerfile parse error line {ins.line}: RUN requires at least one argument")
        env = stage.cfg.env()
        build_env = [f"{k}={v}" for k, v in stage.args.items() if k not in env]
        created_by = (f"|{len(build_env)} {' '.join(build_env)} " if build_env else "") + " ".join(args)
        if await self._cached(stage, created_by):
            return
        parent = await self._ensure_image(stage)
        layer = await self._run_container(stage, parent, args, build_env)
        await self._commit(stage, "", layer, cache_key=created_by, created_by=created_by)

    async def _network(self) -> tuple[str, str, list[str]]:
        """(network mode, engine namespace, extra environment) of RUN containers: the build network
        with its mirror proxy, unless the build asked for a network (``--network``)."""
        if self.options.network_mode not in ("", "default"):
            return self.options.network_mode, DOCKER, []
        if self.network is None:
            network = BuildNetwork(self.engine.networks.netns_dir)
            await network.start()
            self.network = network
        proxies = [f"{k}={self.options.build_args.get(k) or v}"
                   for k, _, v in (e.partition("=") for e in proxy_environment())]
        return self.network.network_mode, BUILD_NAMESPACE, proxies

    async def _run_container(self, stage: Stage, parent: Image, args: list[str], build_env: list[str]) -> Layer:
        containers = self.engine.containers
        config = stage.cfg.config
        mode, namespace, proxies = await self._network()
        body = {"Image": parent.id, "Cmd": args, "Entrypoint": [""],
                "Env": [*(config.get("Env") or []), *build_env, *proxies], "WorkingDir": config.get("WorkingDir") or "",
                "User": config.get("User") or "", "HostConfig": {"NetworkMode": mode, **self.options.limits}}
        container = await containers.create(body, None, namespace=namespace)
        self.say(f" ---> Running in {container.id[:12]}\n")
        handle = containers.handle(container)
        exits = handle.exits
        waiting = containers.waiter(container.id, "next-exit", namespace=namespace)
        failed, interrupted = True, False
        try:
            try:
                await containers.start(container.id, namespace=namespace)
            except EngineError as exc:
                raise BuildError(str(exc), container.state.exit_code or 1) from None
            path = containers.files(container).log
            async for entry in logfile.follow(path, 0, lambda: handle.exits == exits and not handle.removed,
                                              handle.nap):
                self.say(entry.data.decode(errors="replace"))
            await waiting
            await handle.cleaned()  # its rootfs unmounted: the upper directory is read and may become a layer
            code = container.state.exit_code
            if code != 0:
                raise BuildError(f"The command '{' '.join(args)}' returned a non-zero code: {code}", code)
            layer = await asyncio.to_thread(store_layer, self.engine.content,
                                            self.engine.snapshots.fs_dir(container.id))
            if self.options.remove:  # the container goes: its upper directory becomes the layer's snapshot
                await asyncio.to_thread(adopt_snapshot, self.engine.snapshots, container.id, parent.diff_ids, layer)
            failed = False
            return layer
        except asyncio.CancelledError:  # the client went away: the step's container goes too
            interrupted = True
            raise
        finally:
            waiting.close()  # when it was never awaited (a failed start, an interruption)
            hidden = namespace != DOCKER  # nobody could remove it later: it goes now
            if (self.options.remove and not failed) or self.options.force_remove or interrupted or hidden:
                if not failed:
                    self.say(f"Removing intermediate container {container.id[:12]}\n")
                await containers.remove(container.id, force=True, volumes=True, namespace=namespace)

    # -- COPY and ADD ---------------------------------------------------------------------------
    async def _copy(self, stage: Stage, ins: Instruction) -> None:
        env = self._env(stage)
        words = [expand(w, env, self.escape) for w in ins.json_args] if ins.json_args is not None \
            else expand_words(ins.rest, env, self.escape)
        *sources, dest = words
        if ins.keyword == "ADD" and any("://" in s for s in sources):
            raise NotImplementedYet("ADD from a URL is not available in minicloud's engine: fetch the file in a "
                                    "RUN step, or put it in the build context and COPY it")
        if "from" in ins.flags and ins.keyword == "ADD":
            raise BuildError(f"dockerfile parse error line {ins.line}: unknown flag: from")
        if not dest.startswith("/"):
            dest = posixpath.join(stage.cfg.config.get("WorkingDir") or "/", dest) + ("/" if dest.endswith("/")
                                                                                     else "")
        source = await self._source_root(ins.flags.get("from", ""))
        try:
            await self._copy_from(stage, ins, source, sources, dest)
        finally:
            if source != self.context:
                await asyncio.to_thread(release, source)

    async def _copy_from(self, stage: Stage, ins: Instruction, root: Path, sources: list[str], dest: str) -> None:
        matched: list[Path] = []
        for pattern in sources:
            found = await asyncio.to_thread(find_sources, root, pattern)
            if not found:
                raise BuildError(f"{ins.keyword} failed: file not found in build context or excluded by "
                                 f".dockerignore: stat {pattern}: file does not exist")
            matched += found
        if len(matched) > 1 and not dest.endswith("/"):
            raise BuildError(f"When using {ins.keyword} with more than one source file, the destination must be a "
                             "directory and end with a /")
        digest = await asyncio.to_thread(content_hash, matched, root)
        kind = "dir" if len(matched) == 1 and matched[0].is_dir() else "file" if len(matched) == 1 else "multi"
        flags = "".join(f" --{k}={v}" for k, v in sorted(ins.flags.items()) if k != "from")
        text = f"{ins.keyword}{flags} {kind}:{digest} in {dest} "
        if await self._cached(stage, f"#(nop) {text}"):
            return
        parent = stage.image
        layer = await self._write_layer(parent, matched, dest, ins)
        await self._commit(stage, text, layer, cache_key=f"#(nop) {text}")

    async def _source_root(self, name: str) -> Path:
        """The context, or a read-only mount of a stage's or an image's files (``--from``)."""
        if not name:
            return self.context
        stage = self._stage(name)
        image = stage.image if stage is not None else await self._base_image(name)
        target = self.work / f"from-{uuid.uuid4().hex}"
        target.mkdir(parents=True)
        if image is None or not image.layers:
            return target
        chain = await self.engine.unpacker.unpack([layer.digest for layer in image.layers], image.diff_ids)
        assert chain is not None
        for m in self.engine.snapshots.mounts(chain):
            await asyncio.to_thread(mount, m, target)
        return target

    async def _write_layer(self, parent: Image | None, matched: list[Path], dest: str, ins: Instruction) -> Layer:
        key = f"build-{uuid.uuid4().hex}"
        chain = await self.engine.unpacker.unpack([layer.digest for layer in parent.layers], parent.diff_ids) \
            if parent is not None else None
        mounts = await asyncio.to_thread(self.engine.snapshots.prepare, key, chain)
        target = self.work / key
        target.mkdir(parents=True)
        try:
            for m in mounts:
                await asyncio.to_thread(mount, m, target)
            try:
                await asyncio.to_thread(put_files, target, matched, dest, ins)
            finally:
                await asyncio.to_thread(unmount, target)
            layer = await asyncio.to_thread(store_layer, self.engine.content, self.engine.snapshots.fs_dir(key))
            await asyncio.to_thread(adopt_snapshot, self.engine.snapshots, key,
                                    parent.diff_ids if parent is not None else [], layer)
            return layer
        finally:
            target.rmdir()
            if self.engine.snapshots.exists(key):
                await asyncio.to_thread(self.engine.snapshots.remove, key)
