"""AWS IAM: the provider, assembled from one mixin per resource.

    users.py  groups.py  roles.py  policies.py  attachments.py  inline.py  access_keys.py
    login_profiles.py  instance_profiles.py  account.py  simulate.py  details.py
    (each mixin builds on the previous one)

When the server starts, the provider installs what every other service relies on: the policy
evaluator on the ``Authorizer`` and the resolver of IAM users' access keys on the
``CredentialStore``. It also writes access keys' last-used times every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from minicloud.iam import store
from minicloud.services.iam.details import DetailsMixin

log = logging.getLogger("minicloud.iam")

USAGE_FLUSH_SECONDS = 5.0


class IamProvider(DetailsMixin):
    _flusher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.runtime.authorizer.set_evaluator(self.evaluator)
        self.runtime.credentials.add_resolver(store.resolve_user_key)
        self._flusher = asyncio.create_task(self._flush_usage_forever(), name="iam-key-usage")

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush_key_usage()

    async def _flush_usage_forever(self) -> None:
        while True:
            await asyncio.sleep(USAGE_FLUSH_SECONDS)
            try:
                await self.flush_key_usage()
            except Exception:
                log.exception("writing access keys' last-used times failed")
