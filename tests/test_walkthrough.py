"""docs/devloop.md, "your own template in five minutes", followed as written: its
template and handler in an empty folder, `unkai up` with no argument, the second shell's
commands in a clean shell (no AWS config, region or credentials), `unkai invoke` with a
generated event, and its pytest files run with `python -m pytest`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "devloop.md"


def files_of_the_doc() -> dict[str, str]:
    """Code blocks that open with ``# NAME`` comments, split into those files."""
    files: dict[str, str] = {}
    for block in re.findall(r"```(?:yaml|python)\n(.*?)```", DOC.read_text(), re.S):
        name = None
        for line in block.splitlines(keepends=True):
            m = re.fullmatch(r"# ([\w/.]+\.(?:yaml|py))\n", line)
            if m:
                name = m.group(1)
                files[name] = ""
            elif name:
                files[name] += line
    return files


def shell_block(containing: str) -> str:
    block = next(b for b in re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S) if containing in b)
    return block.replace("\\\n", " ")


def clean_env(home: Path) -> dict[str, str]:
    return {"PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(home),
            "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("five-minutes")
    files = files_of_the_doc()
    assert {"template.yaml", "src/app.py", "conftest.py", "test_worker.py"} <= set(files), files
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    log = open(root / "up.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "unkai", "up", "--port", "0"], cwd=root, stdout=log,
                            stderr=subprocess.STDOUT, env=dict(clean_env(root), PYTHONUNBUFFERED="1"))
    deadline = time.monotonic() + 120
    while "Ctrl-C to stop" not in (root / "up.log").read_text():
        assert proc.poll() is None and time.monotonic() < deadline, (root / "up.log").read_text()
        time.sleep(0.05)
    try:
        yield root
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(15)
        log.close()


def test_the_second_shell_triggers_the_function_and_the_first_shows_it(folder):
    assert "unkai: using template.yaml" in (folder / "up.log").read_text()
    done = subprocess.run(["bash", "-ec", shell_block("aws sqs send-message")], cwd=folder, capture_output=True,
                          text=True, timeout=120, env=clean_env(folder))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stack     " in done.stdout and "MessageId" in done.stdout
    deadline = time.monotonic() + 60
    while not re.search(r"λ \S+Worker\S* ← sqs \S+Jobs\S+ .* ok", (folder / "up.log").read_text()):
        assert time.monotonic() < deadline, (folder / "up.log").read_text()
        time.sleep(0.1)


def test_invoke_with_a_generated_event(folder):
    command = re.search(r"`(unkai events generate sqs [^`]+)`", DOC.read_text()).group(1)
    done = subprocess.run(["bash", "-ec", command], cwd=folder, capture_output=True, text=True, timeout=120,
                          env=clean_env(folder))
    assert done.returncode == 0 and "working on 2" in done.stderr, done.stdout + done.stderr


def test_the_pytest_files_of_the_walkthrough_pass(folder):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist",
                           "-p", "no:cacheprovider"], cwd=folder, capture_output=True, text=True, timeout=300,
                          env=clean_env(folder))
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr
