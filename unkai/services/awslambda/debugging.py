"""``unkai up --debug FUNCTION[,FUNCTION]``: those functions' workers run under debugpy,
the Debug Adapter Protocol server VS Code and PyCharm attach to.

Each named function gets one port, in the order given, from ``--debug-port`` (5678) up.
Its first worker listens there as it starts (that is, at the function's first
invocation) and, unless ``--debug-no-wait``, waits for an IDE to attach before it loads
the handler, so a breakpoint on the handler's first lines is hit. Because one port
serves one process, a debugged function runs one worker at a time (invocations queue),
and its timeout is not enforced: a handler paused at a breakpoint cannot be told from
one that is still working, and the pause is the point.

Workers run on the interpreter their Runtime names, not unkai's: they import debugpy
(a pure-Python package with optional compiled speed-ups) through a directory holding a
link to the debugpy unkai itself has installed, with the speed-ups turned off so it
works on any interpreter version.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


class DebuggerMissing(RuntimeError):
    """``--debug`` without debugpy installed."""


class Debugging:
    """Which functions run under debugpy, and on which port."""

    def __init__(self, names: list[str], base_port: int, wait: bool, state_dir: Path) -> None:
        self.names = [n for n in names if n]
        self.base_port = base_port
        self.wait = wait
        self.state_dir = state_dir
        self._path: str | None = None

    def __bool__(self) -> bool:
        return bool(self.names)

    def port_for(self, function_name: str) -> int:
        """The debug port of a function (its name, or the logical id a template gave it), or 0."""
        for index, name in enumerate(self.names):
            # a template's function without FunctionName is called STACK-LogicalId-SUFFIX
            if function_name == name or re.fullmatch(rf"[A-Za-z0-9-]+-{re.escape(name)}-[A-Za-z0-9]+", function_name):
                return self.base_port + index
        return 0

    def path(self) -> str:
        """A directory that holds only ``debugpy`` (a link to unkai's own), for the worker's sys.path."""
        if self._path is None:
            try:
                import debugpy
            except ImportError as exc:
                raise DebuggerMissing("--debug needs debugpy: pip install 'unkai[debug]'") from exc
            target = Path(debugpy.__file__).resolve().parent
            folder = self.state_dir / "lambda" / "debugpy"
            folder.mkdir(parents=True, exist_ok=True)
            link = folder / "debugpy"
            if not (link.is_symlink() and Path(os.readlink(link)) == target):
                if link.is_symlink() or link.exists():
                    link.unlink()
                link.symlink_to(target, target_is_directory=True)
            self._path = str(folder)
        return self._path

    def banner(self, functions: list[str]) -> list[str]:
        """One line per debugged name; a name that matches none of ``functions`` says so, since
        an IDE would otherwise wait for an invocation that never comes."""
        waits = "waits for your IDE at its first invocation" if self.wait else "does not wait for an IDE"
        lines = []
        for i, name in enumerate(self.names):
            port = self.base_port + i
            matched = [f for f in functions if self.port_for(f) == port]
            note = f"{waits}; docs/debugging.md" if matched else "no function has this name or logical id yet"
            lines.append(f"debug      {name}: debugpy on 127.0.0.1:{port} ({note})")
        return lines
