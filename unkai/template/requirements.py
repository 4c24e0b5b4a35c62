"""A function's (or layer's) ``requirements.txt``, installed as ``sam build`` would:
pip into a target directory, with the interpreter matching the Runtime when one is
installed. Each install is cached under the state directory by the hash of the
requirements and the interpreter, so it reruns only when they change."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PIP_TIMEOUT = 600.0
_DONE = ".unkai-installed"


@dataclass
class Installed:
    path: Path | None  # the directory to put on sys.path; None when there is nothing to install
    error: str | None = None
    fresh: bool = False  # installed now rather than found in the cache


def find_interpreter(runtime: str | None) -> str | None:
    """A Python matching a Lambda Runtime (python3.12): on PATH, pyenv's or uv's; None if none is installed."""
    m = re.fullmatch(r"python(\d+)\.(\d+)", runtime or "")
    if not m:
        return None
    version = f"{m.group(1)}.{m.group(2)}"
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    found = shutil.which(f"python{version}")
    if found and "/shims/" not in found:  # a pyenv shim fails unless that version is selected
        return found
    home = Path.home()
    roots = [Path(os.environ.get("PYENV_ROOT", home / ".pyenv")) / "versions",
             Path(os.environ.get("UV_PYTHON_INSTALL_DIR", home / ".local/share/uv/python"))]
    for root in roots:
        for candidate in sorted(root.glob(f"*{version}*/bin/python{version}"), reverse=True):
            if os.access(candidate, os.X_OK):
                return str(candidate)
    return None


async def install(code_dir: Path, runtime: str | None, cache_dir: Path,
                  announce: Callable[[str], None] = lambda _: None) -> Installed:
    """Install ``code_dir/requirements.txt`` into a directory under ``cache_dir`` (unless cached)."""
    requirements = code_dir / "requirements.txt"
    if not requirements.is_file():
        return Installed(None)
    python = find_interpreter(runtime) or sys.executable
    digest = hashlib.sha256(requirements.read_bytes() + b"\0" + python.encode()).hexdigest()[:16]
    target = cache_dir / digest
    if (target / _DONE).exists():
        return Installed(target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = cache_dir / f"{digest}.partial"
    announce(f"installing {requirements} with {python}")
    shutil.rmtree(work, ignore_errors=True)
    proc = await asyncio.create_subprocess_exec(
        python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
        "--target", str(work), "-r", str(requirements),
        cwd=str(code_dir), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PIP_NO_WARN_SCRIPT_LOCATION": "1"},
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), PIP_TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        shutil.rmtree(work, ignore_errors=True)
        return Installed(None, f"pip install -r {requirements} did not finish in {PIP_TIMEOUT:.0f} s")
    if proc.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.strip()]
        detail = "\n    ".join(lines[-8:]) or f"pip exited with {proc.returncode}"
        return Installed(None, f"pip install -r {requirements} failed:\n    {detail}")
    (work / _DONE).write_text(python + "\n")
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    for old in cache_dir.iterdir():  # earlier installs of this function
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return Installed(target, fresh=True)
