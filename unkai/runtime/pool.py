"""Execution environments per function version: reused warm, created on demand up to a
cap, recycled when the function's configuration or code changes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unkai.runtime.environment import Environment, EnvironmentSpec, LogSink, Outcome, WorkerExited
from unkai.runtime.interpreters import interpreter_for
from unkai.runtime.zygote import Zygote, ZygoteDied, sdk_dir

log = logging.getLogger("unkai.lambda")

# Environments per function version when no reserved concurrency says otherwise: AWS
# would scale out much further; on one machine more processes than cores buys nothing.
DEFAULT_MAX_ENVIRONMENTS = 8


class Pool:
    """The environments of one function version with one configuration."""

    def __init__(self, spec: EnvironmentSpec, limit: int) -> None:
        self.spec = spec
        self.limit = limit
        self.idle: list[Environment] = []
        self.count = 0  # idle + busy + starting
        self.freed = asyncio.Event()
        self.retired = False

    def retire(self, graceful: bool = True) -> None:
        """This configuration is gone: no environment of it is reused."""
        self.retired = True
        self.drop_idle(graceful)

    def drop_idle(self, graceful: bool = True) -> None:
        for env in self.idle:
            env.kill(graceful)
        self.count -= len(self.idle)
        self.idle.clear()


class Runtime:
    def __init__(self, state_dir: Path, sink: LogSink, now_ms: Callable[[], int]) -> None:
        self.root = state_dir / "lambda" / "runtime"
        self.tmp_root = str(self.root / "tmp")
        self.hidden = str(state_dir.resolve())  # what no worker may read: every function's state
        self.sink = sink
        self.now_ms = now_ms
        self._sdk: str | None = None
        self.zygotes: dict[str, Zygote] = {}
        self.pools: dict[str, Pool] = {}  # by qualified function ARN
        self.busy = 0
        self._settling: set[asyncio.Task] = set()

    @property
    def sdk(self) -> str:
        if self._sdk is None:
            self._sdk = str(sdk_dir(self.root))
        return self._sdk

    def zygote_for(self, runtime: str) -> Zygote:
        exe = interpreter_for(runtime)
        zygote = self.zygotes.get(exe)
        if zygote is None:
            zygote = self.zygotes[exe] = Zygote(exe, Path(self.sdk))
        return zygote

    async def warm(self, runtime: str) -> None:
        """Start the fork server for ``runtime`` ahead of the first invocation."""
        try:
            await self.zygote_for(runtime).ensure()
        except (ZygoteDied, OSError) as exc:
            log.warning("could not start the %s fork server: %s", runtime, exc)

    def _pool(self, key: str, spec: EnvironmentSpec, limit: int) -> Pool:
        pool = self.pools.get(key)
        if pool is not None and pool.spec.fingerprint != spec.fingerprint:
            pool.retire()
            pool = None
        if pool is None:
            pool = self.pools[key] = Pool(spec, limit)
        pool.limit = limit
        return pool

    def recycle(self, key_prefix: str) -> None:
        """Drop the warm environments of a function (all versions under ``key_prefix``)."""
        for key in [k for k in self.pools if k == key_prefix or k.startswith(key_prefix + ":")]:
            self.pools.pop(key).retire()

    async def invoke(self, key: str, spec: EnvironmentSpec, request_id: str, payload: bytes, invoked_arn: str,
                     client_context: Any = None, limit: int | None = None, tenant_id: str | None = None,
                     stream: Callable[[str, Any], None] | None = None) -> Outcome:
        pool = self._pool(key, spec, limit or DEFAULT_MAX_ENVIRONMENTS)
        env, cold = await self._acquire(pool)
        self.busy += 1
        settling = False
        try:
            outcome = await env.invoke(request_id, payload, invoked_arn, client_context, cold=cold,
                                       tenant_id=tenant_id, stream=stream)
            if env.api is not None and env.api.extensions:
                # the caller has its answer; the environment is free once its extensions are done too
                settling = True
                task = asyncio.get_running_loop().create_task(self._settle(pool, env))
                self._settling.add(task)
                task.add_done_callback(self._settling.discard)
        except asyncio.CancelledError:  # the worker may still be running it: never hand it the next event
            env.kill(graceful=False)
            raise
        finally:
            if not settling:
                self.busy -= 1
                self._release(pool, env)
        return outcome

    async def _settle(self, pool: Pool, env: Environment) -> None:
        try:
            await env.settle()
        finally:
            self.busy -= 1
            self._release(pool, env)

    async def _acquire(self, pool: Pool) -> tuple[Environment, bool]:
        while True:
            while pool.idle:
                env = pool.idle.pop()
                if env.dead:
                    pool.count -= 1
                    continue
                if env.code_changed():
                    env.kill()
                    pool.count -= 1
                    pool.drop_idle()  # they all loaded the same files
                    continue
                return env, False
            if pool.count < pool.limit:
                pool.count += 1
                env = Environment(pool.spec, self.zygote_for(pool.spec.runtime), self.tmp_root, self.sdk,
                                  self.sink, self.now_ms, hide=self.hidden)
                try:
                    await env.start()
                except (WorkerExited, ZygoteDied, OSError):
                    env.dead = True
                    env.init_error = {"errorType": "Runtime.ExitError",
                                      "errorMessage": "Error: Runtime exited without providing a reason"}
                return env, True
            pool.freed.clear()
            await pool.freed.wait()

    def _release(self, pool: Pool, env: Environment) -> None:
        if env.dead or env.init_error is not None or pool.retired:
            if not env.dead:
                env.kill()
            pool.count -= 1
        else:
            pool.idle.append(env)
        pool.freed.set()

    def environments(self) -> int:
        return sum(p.count for p in self.pools.values())

    def close(self) -> None:
        for pool in self.pools.values():
            pool.retire(graceful=False)
        self.pools.clear()
        for zygote in self.zygotes.values():
            zygote.close()
        self.zygotes.clear()

