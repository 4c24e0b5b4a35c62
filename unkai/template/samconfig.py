"""SAM CLI's ways of giving a stack its name and parameter values, read as ``sam deploy``
reads them: ``--parameter-overrides`` in every form SAM CLI takes (``K=V`` pairs, several
after one flag or space-separated in one quoted value, shell-quoted values,
``ParameterKey=K,ParameterValue=V``), and ``samconfig.toml`` (or ``.yaml``/``.yml``)
beside the template: ``[default.deploy.parameters]`` over ``[default.global.parameters]``
(``--config-env prod``: ``[prod.deploy.parameters]``...).
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any

from unkai.template import loader

_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
CONFIG_FILES = ("samconfig.toml", "samconfig.yaml", "samconfig.yml")
# The environment (top-level table) read, as SAM CLI's ``--config-env`` picks it: one per process.
ENVIRONMENT = "default"


class MissingEnvironment(ValueError):
    """``--config-env NAME`` names a table that the config file does not have."""


class BadOverride(ValueError):
    """A --parameter-overrides item that is neither K=V nor ParameterKey=K,ParameterValue=V."""


def parse_overrides(chunks: Any) -> dict[str, str]:
    """``["A=1 B='x y'", "ParameterKey=C,ParameterValue=3"]`` (or one string) -> ``{"A": "1", "B": "x y", "C": "3"}``."""
    if isinstance(chunks, str):
        chunks = [chunks]
    found: dict[str, str] = {}
    for chunk in chunks:
        try:
            items = shlex.split(str(chunk))
        except ValueError:
            items = str(chunk).split()
        for item in items:
            if item.startswith("ParameterKey="):
                key, sep, value = item.partition(",ParameterValue=")
                if not sep:
                    raise BadOverride(f"expected ParameterKey=K,ParameterValue=V, got {item!r}")
                found[key.removeprefix("ParameterKey=")] = value
                continue
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise BadOverride(f"expected KEY=VALUE, got {item!r}")
            found[key] = value
    return found


def read(template: Path) -> dict[str, Any]:
    """The environment's (``default``, or ``--config-env``'s) deploy parameters, over its global ones, from the
    config beside the template."""
    folder = loader.find_template(template).resolve().parent
    for name in CONFIG_FILES:
        config = folder / name
        if not config.is_file():
            continue
        try:
            if name.endswith(".toml"):
                import tomllib

                data = tomllib.loads(config.read_text())
            else:
                import yaml

                data = yaml.safe_load(config.read_text()) or {}
        except (OSError, ValueError, ImportError) as exc:
            print(f"unkai: ignoring {config}: {exc}", file=sys.stderr, flush=True)
            return {}
        env = data.get(ENVIRONMENT) if isinstance(data, dict) else None
        if not isinstance(env, dict):
            if ENVIRONMENT != "default":
                raise MissingEnvironment(f"the environment {ENVIRONMENT!r} (--config-env) is not in {config}")
            return {}
        found: dict[str, Any] = {}
        for section in ("global", "deploy"):
            params = (env.get(section) or {}).get("parameters") if isinstance(env.get(section), dict) else None
            if isinstance(params, dict):
                found.update(params)
        return found
    return {}


def overrides(template: Path) -> dict[str, str]:
    """The config's ``parameter_overrides`` (a string of K=V pairs, or a list of them)."""
    raw = read(template).get("parameter_overrides") or []
    try:
        return parse_overrides(raw if isinstance(raw, str) else [shlex.quote(str(x)) for x in raw])
    except BadOverride as exc:
        print(f"unkai: ignoring samconfig parameter_overrides: {exc}", file=sys.stderr, flush=True)
        return {}


def default_stack_name(template: Path) -> str:
    """The config's stack_name if there is one, else the template directory's name."""
    name = read(template).get("stack_name")
    if isinstance(name, str) and _STACK_NAME.match(name):
        return name
    path = loader.find_template(template).resolve()
    name = re.sub(r"[^A-Za-z0-9-]+", "-", path.parent.name).strip("-")
    if not name or not name[0].isalpha():
        name = "unkai-" + name if name else "unkai"
    return name[:128]
