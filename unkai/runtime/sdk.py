"""The AWS SDK a function's interpreter imports, as AWS's runtime images ship their own boto3.

unkai's own boto3 (linked by ``zygote.sdk_dir``) serves every interpreter it can run on.
An older interpreter (``python3.9`` with an urllib3 that needs 3.10) gets the newest boto3
that supports it instead: ``pip install --target`` with that interpreter, once per machine
(``$UNKAI_CACHE_DIR`` or ``~/.cache/unkai``, like requirements under the state directory),
then reused by every state directory and restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import sys
from pathlib import Path

log = logging.getLogger(__name__)

PIP_TIMEOUT = 600.0
_DONE = ".unkai-installed"
_locks: dict[str, asyncio.Lock] = {}


def cache_root() -> Path:
    return Path(os.environ.get("UNKAI_CACHE_DIR") or Path.home() / ".cache" / "unkai") / "sdk"


def _oldest_python() -> tuple[int, int]:
    """The oldest Python every package of unkai's own SDK declares it runs on (their Requires-Python)."""
    import importlib.metadata
    import re

    oldest = (3, 0)
    for dist in ("boto3", "botocore", "s3transfer", "urllib3", "jmespath"):
        try:
            spec = importlib.metadata.metadata(dist).get("Requires-Python") or ""
        except importlib.metadata.PackageNotFoundError:
            continue
        for major, minor in re.findall(r">=\s*(\d+)\.(\d+)", spec):
            oldest = max(oldest, (int(major), int(minor)))
    return oldest


async def _imports(executable: str, sdk: Path) -> bool:
    """Whether ``executable`` can run unkai's own SDK (by its version against the SDK's Requires-Python)."""
    from unkai.runtime.interpreters import version_of

    version = await asyncio.get_running_loop().run_in_executor(None, version_of, executable)
    return version is not None and version >= _oldest_python()


async def sdk_for(executable: str, own: Path) -> Path:
    """The SDK directory for functions run by ``executable``: unkai's own when it imports there, else one
    installed for that interpreter (cached). Raises OSError when it cannot be installed."""
    if os.path.realpath(executable) == os.path.realpath(sys.executable) or await _imports(executable, own):
        return own
    lock = _locks.setdefault(executable, asyncio.Lock())
    async with lock:
        digest = hashlib.sha256(os.path.realpath(executable).encode()).hexdigest()[:12]
        target = cache_root() / f"{Path(executable).name}-{digest}-pip"  # boto3 and pip, as AWS's image has
        if (target / _DONE).exists():
            return target
        work = target.with_name(target.name + f".partial-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        log.warning("installing boto3 for %s (its own AWS SDK, as AWS's runtime has) into %s", executable, target)
        proc = await asyncio.create_subprocess_exec(
            executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
            "--target", str(work), "boto3", "pip", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL, env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")})
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), PIP_TIMEOUT)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            out = b"timed out"
        if proc.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            tail = " ".join(out.decode(errors="replace").split()[-40:])
            raise OSError(f"could not install boto3 for {executable}: {tail}")
        (work / _DONE).write_text(executable + "\n")
        shutil.rmtree(target, ignore_errors=True)
        try:
            work.rename(target)
        except OSError:  # another unkai got there first
            shutil.rmtree(work, ignore_errors=True)
        return target
