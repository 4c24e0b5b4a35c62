"""Which Python runs a function: the one its Runtime names when this machine has it
(on PATH, pyenv or uv-managed), else unkai's own, with a one-time warning."""

from __future__ import annotations

import functools
import glob
import logging
import os
import shutil
import subprocess
import sys

log = logging.getLogger("unkai.lambda")

_warned: set[str] = set()

# Python runtimes AWS has deprecated: (deprecation, block function create, block function update), as AWS's
# Lambda runtimes table gives them (None: the table gives no date). AWS still invokes such functions.
DEPRECATED = {
    "python2.7": ("2021-07-15", None, None),
    "python3.6": ("2022-07-18", None, None),
    "python3.7": ("2023-12-04", None, None),
    "python3.8": ("2024-10-14", None, None),
    "python3.9": ("2025-12-15", "2027-02-01", "2027-03-03"),
}


def deprecation_notice(runtime: str) -> str | None:
    """One line naming AWS's deprecation (and block) dates of a deprecated runtime, else None."""
    dates = DEPRECATED.get(runtime)
    if dates is None:
        return None
    deprecated, create, update = dates
    blocks = "".join([f"; AWS blocks creating functions on it from {create}" if create else "",
                      f" and updating them from {update}" if update else ""])
    return f"Runtime {runtime} was deprecated by AWS on {deprecated}{blocks}; unkai still runs it, as AWS still " \
           "invokes such functions. Move to a supported runtime (python3.12 or later)."


@functools.lru_cache(maxsize=None)
def version_of(executable: str) -> tuple[int, int] | None:
    """(major, minor) of a Python executable, or None when it does not run."""
    try:
        out = subprocess.run([executable, "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    major, _, minor = out.stdout.strip().partition(".")
    return int(major), int(minor)


def _candidates(version: str) -> list[str]:
    found = []
    exe = f"python{version}"
    home = os.path.expanduser("~")
    pyenv = os.environ.get("PYENV_ROOT") or os.path.join(home, ".pyenv")
    found += sorted(glob.glob(os.path.join(pyenv, "versions", f"{version}.*", "bin", exe)), reverse=True)
    uv = os.environ.get("UV_PYTHON_INSTALL_DIR") or os.path.join(home, ".local", "share", "uv", "python")
    found += sorted(glob.glob(os.path.join(uv, f"cpython-{version}.*", "bin", exe)), reverse=True)
    on_path = shutil.which(exe)
    if on_path:
        found.append(on_path)
    return found


@functools.lru_cache(maxsize=None)
def interpreter_for(runtime: str) -> str:
    """The executable for a Lambda Runtime such as ``python3.12``."""
    notice = deprecation_notice(runtime)
    if notice:
        log.warning(notice)
    version = runtime.removeprefix("python")
    own = "%d.%d" % sys.version_info[:2]
    if version == own or not runtime.startswith("python"):
        return sys.executable
    want = tuple(int(p) for p in version.split(".")[:2]) if version.replace(".", "").isdigit() else None
    for candidate in _candidates(version):
        if want and version_of(candidate) == want:
            return candidate
    if runtime not in _warned:
        _warned.add(runtime)
        log.warning("Runtime %s is not installed on this machine; running its functions on unkai's "
                    "Python %s instead.", runtime, own)
    return sys.executable
