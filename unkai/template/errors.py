"""The template error, on its own: the server catches it without importing the template
loader (and YAML) on a start with no template."""

from __future__ import annotations

from pathlib import Path


class TemplateError(Exception):
    """A problem with the template, located: file, line and the resource (or section) concerned."""

    def __init__(self, message: str, file: str | Path | None = None, line: int | None = None,
                 where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = str(file) if file else None
        self.line = line
        self.where = where

    def __str__(self) -> str:
        loc = ""
        if self.file:
            loc = self.file + (f":{self.line}" if self.line else "") + ": "
        elif self.line:
            loc = f"line {self.line}: "
        return f"{loc}{self.where + ': ' if self.where else ''}{self.message}"
