"""Helpers for the examples' end-to-end tests: start an example's template on a known
port, read its stack outputs (URLs that Python calls as they are), and run its README's
commands as a reader would."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from template_helpers import wait_for as eventually  # noqa: F401  (re-exported for the tests)
from unkai.testing import UnkaiServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def start_example(state_dir: Path, name: str, **parameters: str) -> UnkaiServer:
    """``unkai up examples/NAME`` with parameter overrides; ``{endpoint}`` in a value is
    replaced by the server's own address."""
    port = UnkaiServer.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    args = [str(EXAMPLES / name)]
    for key, value in parameters.items():
        args += ["--parameter-overrides", f"{key}={value.format(endpoint=endpoint)}"]
    return UnkaiServer(state_dir, *args, port=port).start(timeout=120)


def outputs(server: UnkaiServer, stack: str) -> dict[str, str]:
    described = server.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE", server.output()
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def browser_url(server: UnkaiServer, key: str) -> str:
    """The ``*.localhost`` form ``unkai up`` prints under output ``key`` for browsers."""
    m = re.search(rf"^\s*{key}\s+\S+\n\s+(\S+)\s+\(in a browser\)$", server.output(), re.M)
    assert m, server.output()
    return m.group(1)


def request(url: str, method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def json_body(raw: bytes) -> Any:
    return json.loads(raw.decode("utf-8"))


def readme_commands(example: str, containing: str) -> list[str]:
    """The shell lines of the fenced ``sh`` block of ``examples/EXAMPLE/README.md`` that
    contains ``containing``, comments and ``> `` input lines kept apart (backslash
    continuations joined): the commands a reader copies."""
    text = (EXAMPLES / example / "README.md").read_text()
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        if containing in block:
            return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    raise AssertionError(f"no sh block with {containing!r} in examples/{example}/README.md")


def reader_steps(example: str, containing: str, pause_after: tuple[str, ...] = ()) -> list[list[str]]:
    """The commands of the README block containing ``containing`` without the lines that
    start, stop or install things (the test runs the server), split after each line that
    starts with one of ``pause_after``: where the reader acts (follows a link) or waits.
    Each later step begins with the ``eval`` lines before it: the reader's shell keeps them."""
    steps: list[list[str]] = [[]]
    kept: list[str] = []
    for line in readme_commands(example, containing):
        if line.startswith(("unkai up", "unkai stop", "pip install")):
            continue
        steps[-1].append(line)
        if line.startswith("eval "):
            kept.append(line)
        if line.startswith(pause_after):
            steps.append(list(kept))
    return [step for step in steps if step != kept]


def follow_verification(server: UnkaiServer, address: str) -> None:
    """Open the link of the SES verification mail to ``address``, as its reader does."""
    (mail,) = server.wait_for_mail(to=address, subject="Email Address Verification Request")
    link = re.search(r"http://\S+/_unkai/ses/verify\?\S+", mail["text"]).group(0)
    assert request(link)[0] == 200


def run_readme_websockets_line(example: str, server: UnkaiServer, api_id: str, url: str) -> None:
    """The README's ``python -m websockets`` line with the API id and this server's port filled
    in (it must be ``url``, the output unkai prints), typed into as the README says: the sender
    receives its own notice."""
    import subprocess
    import sys

    lines = readme_commands(example, "python -m websockets")
    command = next(line for line in lines if line.startswith("python -m websockets"))
    typed = next(line for line in lines if line.startswith("> ")).removeprefix("> ")
    port = server.endpoint.rsplit(":", 1)[1]
    argv = re.sub(r"<api[-_]id>", api_id, command).replace(":4566/", f":{port}/").split()
    assert argv[-1] == url
    proc = subprocess.Popen([sys.executable, *argv[1:]], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        proc.stdin.write(typed + "\n")
        proc.stdin.flush()
        received = ""
        for line in proc.stdout:
            received += line
            if "hello" in line and "from" in line:
                break
        assert json.loads(received[received.index("{"):].splitlines()[0])["message"] == "hello", received
    finally:
        proc.kill()
        proc.wait()


def run_readme(lines: list[str], server: UnkaiServer, cwd: Path, home: Path) -> Any:
    """Run README lines in bash as a reader would, in a clean shell whose only hint of the
    server is ``UNKAI_ENDPOINT`` (no AWS config, region or credentials); stops at the
    first failing line."""
    import os
    import subprocess
    import sys

    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(home),
           "UNKAI_ENDPOINT": server.endpoint, "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
    script = "set -e\n" + "\n".join(lines) + "\n"
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
