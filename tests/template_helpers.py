"""Helpers for template tests: a tiny wheel built on the spot, and waiting for a file
watcher's reaction."""

from __future__ import annotations

import base64
import time
from pathlib import Path


def make_wheel(directory: Path, name: str = "tinypkg", version: str = "1.0", value: int = 42) -> Path:
    """A tiny pure-Python wheel, so installs need no network."""
    import hashlib
    import zipfile

    files = {f"{name}/__init__.py": f"VALUE = {value}\n",
             f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                                  "Tag: py3-none-any\n"}
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},"
        f"{len(text.encode())}\n" for path, text in files.items())
    files[f"{name}-{version}.dist-info/RECORD"] = record + f"{name}-{version}.dist-info/RECORD,,\n"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def wait_for(predicate, timeout: float = 20.0):
    """Poll for an effect of a file edit (a real file watcher's reaction; bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)
