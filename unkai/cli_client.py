"""The ``unkai`` commands that talk to a running server: finding it, and ``status``,
``stop``, ``reset``, ``invoke`` and ``env``.

Every client command finds the server the same way, in this order: ``--endpoint-url``,
``UNKAI_ENDPOINT``, the ``server.json`` that ``unkai up`` writes in its state directory
(``--state-dir``, default ``./.unkai``), then ``http://127.0.0.1:4566``; and every error
names the endpoint it asked and how it was chosen, so a command never answers quietly
from someone else's server.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from unkai.config import DEFAULT_PORT, default_region
from unkai.localurls import browser_form

endpoint_option = click.option("--endpoint-url", default=None,
                               help="A running unkai [default: UNKAI_ENDPOINT, else the one of --state-dir].")
state_option = click.option("--state-dir", default=".unkai", show_default=True, type=click.Path(path_type=Path))
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def find_endpoint(endpoint: str | None, state_dir: Path) -> tuple[str, str]:
    """The server's URL and how it was found (for error messages)."""
    if endpoint:
        return endpoint.rstrip("/"), "--endpoint-url"
    if os.environ.get("UNKAI_ENDPOINT"):
        return os.environ["UNKAI_ENDPOINT"].rstrip("/"), "UNKAI_ENDPOINT"
    from unkai.server import read_server_file

    info = read_server_file(state_dir)
    if info and "endpoint" in info:
        return info["endpoint"], f"{state_dir}/server.json"
    return f"http://127.0.0.1:{DEFAULT_PORT}", f"the default (no unkai running on the state directory {state_dir})"


class Server:
    """A running unkai, as the CLI reaches it."""

    def __init__(self, endpoint: str | None, state_dir: Path) -> None:
        from unkai.server import read_server_file

        self.state_dir = state_dir
        self.url, self.source = find_endpoint(endpoint, state_dir)
        # With credentials configured, unkai's own endpoints want the control token it wrote
        # to its (owner-only) server file.
        self.token = os.environ.get("UNKAI_TOKEN") or (read_server_file(state_dir) or {}).get("token")

    def fail(self, message: str) -> None:
        click.echo(f"Error: {message} (unkai at {self.url}, from {self.source})", err=True)
        sys.exit(1)

    def request(self, path: str, method: str = "GET", timeout: float = 30) -> Any:
        headers = {"x-unkai-token": self.token} if self.token else {}
        import urllib.error  # here, not at import: `unkai up` needs no HTTP client (start-up time)
        import urllib.request

        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("message") or str(exc)
            except ValueError:
                message = str(exc)
            self.fail(message)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            self.fail(f"cannot reach unkai ({reason}). Is `unkai up` running?")

    def client(self, service: str, region: str | None = None) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(service, endpoint_url=self.url, region_name=region or self.region(),
                            aws_access_key_id="test", aws_secret_access_key="test",
                            config=Config(retries={"max_attempts": 1}, read_timeout=900))

    def region(self) -> str:
        return self.request("/_unkai/health").get("region") or default_region()


@click.command()
@endpoint_option
@state_option
@json_option
def status(endpoint_url: str | None, state_dir: Path, as_json: bool) -> None:
    """What runs, where, which stack, and the work still pending."""
    server = Server(endpoint_url, state_dir)
    health = server.request("/_unkai/health")
    pending = server.request("/_unkai/drain?timeout=0", "POST")["pending"]
    stacks = []
    try:
        cfn = server.client("cloudformation", health.get("region"))
        for stack in cfn.describe_stacks().get("Stacks", []):
            outs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
            browser = {k: browser_form(v, health.get("region") or "us-east-1") for k, v in outs.items()}
            stacks.append({"name": stack["StackName"], "status": stack["StackStatus"], "outputs": outs,
                           "browser_forms": {k: v for k, v in browser.items() if v}})
    except Exception as exc:  # the stack is extra information: never fail status for it
        stacks = [{"error": str(exc)}]
    info = {**health, "pending": pending, "stacks": stacks}
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"unkai {health.get('version')} {health.get('status')} at {server.url}  "
               f"(region {health.get('region')}, account {health.get('account')})")
    click.echo(f"  services  {', '.join(health.get('services', []))}")
    for stack in stacks:
        if "error" in stack:
            click.echo(f"  stack     ? ({stack['error']})")
            continue
        click.echo(f"  stack     {stack['name']} ({stack['status']})")
        for key, value in stack["outputs"].items():
            click.echo(f"    {key}  {value}")
            if key in stack["browser_forms"]:
                click.echo(f"    {' ' * len(key)}  {stack['browser_forms'][key]}   (in a browser)")
    if not stacks:
        click.echo("  stack     none (start one with `unkai up TEMPLATE`)")
    if pending:
        click.echo("  pending   " + ", ".join(f"{k}: {v}" for k, v in sorted(pending.items())))
    else:
        click.echo("  pending   nothing")


@click.command()
@state_option
@click.option("--timeout", default=15.0, show_default=True, help="Seconds to wait for it to stop.")
def stop(state_dir: Path, timeout: float) -> None:
    """Stop the unkai running on the state directory (as Ctrl-C would)."""
    from unkai.server import read_server_file

    info = read_server_file(state_dir)
    if not info or "pid" not in info:
        click.echo(f"No unkai is running on the state directory {state_dir}.")
        return
    pid = int(info["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        click.echo(f"No unkai is running on the state directory {state_dir} (pid {pid} is gone).")
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _running(pid):
            click.echo(f"Stopped unkai (pid {pid}, {info.get('endpoint')}).")
            return
        time.sleep(0.05)
    click.echo(f"Error: unkai (pid {pid}) did not stop within {timeout:g}s", err=True)
    sys.exit(1)


@click.command()
@click.option("--empty", is_flag=True, help="Remove the stack too: no state at all.")
@endpoint_option
@state_option
def reset(empty: bool, endpoint_url: str | None, state_dir: Path) -> None:
    """Put the state back to just after the stack was deployed (items, messages, objects,
    logs, mail gone; resources kept), in milliseconds."""
    server = Server(endpoint_url, state_dir)
    answer = server.request("/_unkai/reset" + ("?empty=1" if empty else ""), "POST")
    what = "to no state at all" if empty else "to the state it had once ready"
    click.echo(f"Reset {server.url} {what} in {answer['ms']:.1f} ms.")


@click.command()
@click.argument("function")
@click.option("--event", "-e", "event_file", default=None, metavar="FILE|-",
              help="The event as JSON, from a file or - for stdin [default: {}].")
@click.option("--region", default=None, help="The function's region [default: the server's].")
@endpoint_option
@state_option
def invoke(function: str, event_file: str | None, region: str | None, endpoint_url: str | None,
           state_dir: Path) -> None:
    """Invoke FUNCTION (its name or the template's logical id) and print what it returned;
    its log goes to stderr. Exits 1 when the function fails."""
    import base64

    if event_file is None:
        payload = b"{}"
    elif event_file == "-":
        payload = sys.stdin.buffer.read()
    else:
        try:
            payload = Path(event_file).read_bytes()
        except OSError as exc:
            raise click.BadParameter(str(exc), param_hint="--event") from None
    try:
        json.loads(payload or b"null")
    except ValueError as exc:
        raise click.BadParameter(f"the event is not JSON: {exc}", param_hint="--event") from None
    server = Server(endpoint_url, state_dir)
    lam = server.client("lambda", region)
    from botocore.exceptions import ClientError

    name = function
    for attempt in range(2):
        try:
            resp = lam.invoke(FunctionName=name, Payload=payload, LogType="Tail")
            break
        except ClientError as exc:
            found = _physical_id(server, function, region) if attempt == 0 and \
                exc.response["Error"]["Code"] == "ResourceNotFoundException" else None
            if found is None:
                server.fail(f"{exc.response['Error']['Code']}: {exc.response['Error']['Message']}")
            name = found
        except Exception as exc:  # cannot connect and the like
            server.fail(str(exc))
    log_text = base64.b64decode(resp.get("LogResult") or "").decode("utf-8", "replace")
    if log_text:
        click.echo(log_text.rstrip(), err=True)
    click.echo(resp["Payload"].read().decode("utf-8", "replace"))
    if resp.get("FunctionError"):
        sys.exit(1)


def _physical_id(server: Server, logical_id: str, region: str | None) -> str | None:
    """The function a stack's logical id names (``unkai invoke MyFunction``)."""
    cfn = server.client("cloudformation", region)
    try:
        for stack in cfn.describe_stacks().get("Stacks", []):
            for res in cfn.describe_stack_resources(StackName=stack["StackName"])["StackResources"]:
                if res["LogicalResourceId"] == logical_id and res["ResourceType"] == "AWS::Lambda::Function":
                    return res["PhysicalResourceId"]
    except Exception:
        return None
    return None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) has stopped too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@click.command()
@click.option("--profile", default=None, metavar="NAME",
              help="Instead of printing, write profile NAME (endpoint_url, region, test keys) to ~/.aws/config "
                   "and ~/.aws/credentials.")
@endpoint_option
@state_option
def env(profile: str | None, endpoint_url: str | None, state_dir: Path) -> None:
    """Point the AWS CLI and SDKs at unkai: `eval "$(unkai env)"`, then `aws sqs list-queues`."""
    url, _ = find_endpoint(endpoint_url, state_dir)
    from unkai.server import read_server_file

    info = read_server_file(state_dir) or {}
    region = info.get("region") or default_region()
    values = {"AWS_ENDPOINT_URL": url, "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
              "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "UNKAI_ENDPOINT": url}
    if profile is None:
        for key, value in values.items():
            click.echo(f"export {key}={value}")
        click.echo("unset AWS_PROFILE AWS_SESSION_TOKEN")
        return
    import configparser

    home = Path(os.environ.get("AWS_CONFIG_FILE") or Path.home() / ".aws" / "config")
    creds = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    _write_ini(home, "default" if profile == "default" else f"profile {profile}",
               {"endpoint_url": url, "region": region, "output": "json"}, configparser)
    _write_ini(creds, profile, {"aws_access_key_id": "test", "aws_secret_access_key": "test"}, configparser)
    click.echo(f"Wrote profile {profile} to {home} and {creds}: `aws --profile {profile} sqs list-queues`, "
               f"or boto3.Session(profile_name={profile!r}).client(...), reach {url}.")


def _write_ini(path: Path, section: str, values: dict[str, str], configparser: Any) -> None:
    parser = configparser.RawConfigParser()
    parser.read(path)
    if not parser.has_section(section):
        parser.add_section(section)
    for key, value in values.items():
        parser.set(section, key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        parser.write(handle)


@click.group()
def events() -> None:
    """Sample events for handlers, as `sam local generate-event` prints them."""


@events.command("generate")
@click.argument("source", required=False)
@click.argument("event", required=False)
@click.option("--region", default=None, help="[default: AWS_REGION, AWS_DEFAULT_REGION or us-east-1]")
@click.option("--body", default=None, help="The message, object or request body.")
@click.option("--bucket", default=None)
@click.option("--key", default=None)
@click.option("--queue-name", "queue", default=None)
@click.option("--topic", default=None)
@click.option("--table", default=None)
@click.option("--method", default=None)
@click.option("--path", default=None)
def generate(source: str | None, event: str | None, **options: Any) -> None:
    """Print SOURCE's sample EVENT (`unkai events generate sqs`, `... s3 put --bucket b --key k`);
    without SOURCE, list them. Pipe it to `unkai invoke FUNCTION --event -`."""
    from unkai.samples import SAMPLES
    from unkai.samples import generate as sample

    if source is None:
        for name, kinds in SAMPLES.items():
            click.echo(f"{name:<12} {', '.join(kinds)}")
        return
    options["region"] = options["region"] or default_region()
    try:
        found = sample(source, event, **{k: v for k, v in options.items() if v is not None})
    except KeyError as exc:
        raise click.UsageError(exc.args[0]) from None
    click.echo(json.dumps(found, indent=2))


@click.command("open")
@click.option("--print", "print_only", is_flag=True, help="Print the dashboard's URL instead of opening it.")
@endpoint_option
@state_option
def open_dashboard(print_only: bool, endpoint_url: str | None, state_dir: Path) -> None:
    """Open the web dashboard of the running unkai in the browser."""
    from urllib.parse import quote

    server = Server(endpoint_url, state_dir)
    server.request("/_unkai/health")  # fails with the usual message when nothing runs there
    # With credentials configured the browser needs the control token: the login URL puts it
    # in a same-site cookie and goes on to the overview.
    url = f"{server.url}/_unkai/ui/login?token={quote(server.token)}" if server.token else f"{server.url}/_unkai/"
    if print_only:
        click.echo(url)
        return
    import webbrowser

    if not webbrowser.open(url):
        click.echo(f"No browser to open here; the dashboard is at {url}")
    else:
        click.echo(f"Opened {server.url}/_unkai/")


COMMANDS = [status, stop, reset, invoke, env, events, open_dashboard]
