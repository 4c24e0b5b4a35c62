"""Settings for one running cloud, from the command line and the environment."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 4566
ACCOUNT_ID = "000000000000"


def default_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


@dataclass
class Config:
    state_dir: Path = field(default_factory=lambda: Path(".unkai"))
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    region: str = field(default_factory=default_region)
    account_id: str = ACCOUNT_ID
    ephemeral: bool = False
    # When both are set, every request's signature is verified against them.
    access_key: str | None = None
    secret_key: str | None = None
    template: Path | None = None
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    stack_name: str | None = None  # default: samconfig.toml's, else the template directory's name
    tf_vars: dict[str, str] = field(default_factory=dict)  # -var NAME=VALUE for a Terraform root module
    tf_var_files: list[Path] = field(default_factory=list)  # -var-file FILE
    # Host names besides loopback, *.localhost and AWS's that may reach unkai (``--allow-host``),
    # and foreign browser origins allowed to call the AWS APIs (``--allow-origin``): docs/security.md.
    allow_hosts: list[str] = field(default_factory=list)
    allow_origins: list[str] = field(default_factory=list)
    # With credentials configured, unkai's own endpoints need it (or a signed request).
    control_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    activity: str = "normal"  # what the terminal prints of the event feed: off, quiet, normal, verbose
    enforce_iam: str = ""  # "on": deny as IAM would; "log": only report; "": off
    # ``--debug``: functions (names or logical ids) whose workers run under debugpy, from this port up
    debug: list[str] = field(default_factory=list)
    debug_port: int = 5678
    debug_wait: bool = True

    @property
    def endpoint(self) -> str:
        """The URL clients on this machine use to reach us."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def verify_signatures(self) -> bool:
        return bool(self.access_key and self.secret_key)
