"""The ``unkai`` command."""

from __future__ import annotations

import json
import shlex
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import click

from unkai import __version__
from unkai.cli_client import COMMANDS, Server, endpoint_option, json_option, state_option
from unkai.config import DEFAULT_PORT, Config, default_region


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="unkai")
def main() -> None:
    """unkai: a local AWS serverless cloud for SAM templates and Python handlers."""


class _GreedyOption(click.Option):
    """An option that, like SAM CLI's ``--parameter-overrides``, also takes the KEY=VALUE words after its
    first value (``--parameter-overrides A=1 B=2``), up to the next option or a word without ``=``."""

    def add_to_parser(self, parser: Any, ctx: click.Context) -> Any:
        result = super().add_to_parser(parser, ctx)
        for name in self.opts:
            option = parser._long_opt.get(name) or parser._short_opt.get(name)
            if option is None:
                continue
            previous = option.process

            def process(value: Any, state: Any, previous: Any = previous) -> None:
                words = [value]
                while state.rargs and "=" in state.rargs[0] and not state.rargs[0].startswith("-"):
                    words.append(state.rargs.pop(0))
                # one word is one K=V (quoted when it has spaces); a word may also quote its value itself
                previous(" ".join(w if len(words) == 1 or not any(c.isspace() for c in w) or "'" in w or '"' in w
                                  else shlex.quote(w) for w in words), state)

            option.process = process
            break
        return result


overrides_option = click.option(
    "--parameter-overrides", cls=_GreedyOption, multiple=True, metavar="KEY=VALUE",
    help="Template parameter values, as SAM CLI takes them: several after one flag, repeated, space-separated "
         "in one, or ParameterKey=K,ParameterValue=V.")
stack_name_option = click.option("--stack-name", default=None,
                                 help="The stack's name [default: samconfig.toml's, else the template's directory].")


def _set_config_env(ctx: click.Context, param: Any, value: str | None) -> str | None:
    if value is None and "unkai.template.samconfig" not in sys.modules:
        return value  # its default already; importing it (and the template loader) costs start-up time
    from unkai.template import samconfig

    samconfig.ENVIRONMENT = value or "default"
    return value


config_env_option = click.option("--config-env", default=None, metavar="NAME", callback=_set_config_env,
                                 expose_value=False, is_eager=True,
                                 help="The samconfig.toml environment to read, as in SAM CLI [default: default].")


def _check_config_env(template: Path | None) -> None:
    """Fail early, naming the file, when --config-env names an environment the config lacks."""
    if template is None:
        return
    from unkai.template import samconfig

    if samconfig.ENVIRONMENT == "default":
        return
    try:
        samconfig.read(template)
    except samconfig.MissingEnvironment as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


def _overrides(chunks: tuple[str, ...]) -> dict[str, str]:
    if not chunks:
        return {}  # without importing samconfig and the template loader (start-up time)
    from unkai.template.samconfig import BadOverride, parse_overrides

    try:
        return parse_overrides(chunks)
    except BadOverride as exc:
        raise click.BadParameter(str(exc), param_hint="--parameter-overrides") from None


def _tf_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{pair!r}: a variable is given as NAME=VALUE", param_hint="-var")
        out[name.strip()] = value
    return out


@main.command()
@click.argument("template", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port for every API (0: any free port).")
@click.option("--state-dir", default=".unkai", show_default=True, type=click.Path(path_type=Path),
              help="Where state is kept between runs.")
@click.option("--ephemeral", is_flag=True, help="Keep state in a throwaway directory, deleted on exit.")
@click.option("--region", default=None, help="Region of the stack [default: AWS_REGION, AWS_DEFAULT_REGION or us-east-1].")
@click.option("--access-key", envvar="UNKAI_ACCESS_KEY", default=None,
              help="With --secret-key: verify every request's signature against these credentials.")
@click.option("--secret-key", envvar="UNKAI_SECRET_KEY", default=None,
              help="@FILE reads it from FILE, - asks for it (a literal value shows in `ps`; "
                   "UNKAI_SECRET_KEY works too).")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Also answer to this Host name (*.example.com for a whole domain); repeatable.")
@click.option("--allow-origin", "allow_origins", multiple=True, metavar="ORIGIN",
              help="Let browser pages from this origin (http://example.com:8080) call the AWS APIs; repeatable.")
@click.option("--enforce-iam", "enforce_iam", is_flag=False, flag_value="on", default=None,
              type=click.Choice(["on", "log", "off"]),
              help="Evaluate every request against its caller's IAM policies and deny as AWS would "
                   "(--enforce-iam=log: only log what would be denied).")
@click.option("--ses-production", is_flag=True, default=False,
              help="SES out of the sandbox in every region, as if production access were granted.")
@click.option("--smtp-port", type=int, default=None, help="Serve SES's SMTP interface on this port (0: any free one).")
@click.option("--mqtt-port", type=int, default=None,
              help="Serve AWS IoT's MQTT broker (TLS, client certificates) on this port (0: any free one).")
@overrides_option
@stack_name_option
@config_env_option
@click.option("-t", "--template-file", "template_file", default=None, type=click.Path(exists=True, path_type=Path),
              help="The template, as SAM CLI names it (same as TEMPLATE).")
@click.option("--no-template", is_flag=True, help="Serve the AWS APIs alone, even where ./template.yaml exists.")
@click.option("-var", "--var", "tf_vars", multiple=True, metavar="NAME=VALUE",
              help="A Terraform root module's input variable, as terraform's -var; repeatable.")
@click.option("-var-file", "--var-file", "tf_var_files", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="A .tfvars file for a Terraform root module, as terraform's -var-file; repeatable.")
@click.option("--debug", "debug", multiple=True, metavar="FUNCTION[,FUNCTION]",
              help="Run these functions (names or logical ids) under debugpy for your IDE to attach (docs/debugging.md).")
@click.option("--debug-port", default=5678, show_default=True, type=int,
              help="The first --debug function's port; the next ones follow.")
@click.option("--debug-no-wait", is_flag=True, help="Do not wait for a debugger at a debugged function's first invocation.")
@click.option("-q", "--quiet", is_flag=True, help="Print only failures of what happens (not every invocation).")
@click.option("-v", "--verbose", is_flag=True, help="Print everything that happens, with handlers' stack traces.")
def up(template: Path | None, host: str, port: int, state_dir: Path, ephemeral: bool, region: str | None,
       access_key: str | None, secret_key: str | None, allow_hosts: tuple[str, ...], allow_origins: tuple[str, ...],
       enforce_iam: str | None, ses_production: bool, smtp_port: int | None, mqtt_port: int | None,
       parameter_overrides: tuple[str, ...], stack_name: str | None, template_file: Path | None, no_template: bool,
       tf_vars: tuple[str, ...], tf_var_files: tuple[Path, ...], debug: tuple[str, ...], debug_port: int,
       debug_no_wait: bool, quiet: bool, verbose: bool) -> None:
    """Start the cloud; with TEMPLATE (a SAM template or its directory), run that stack too.
    A directory of .tf files is applied as a Terraform root module (docs/terraform.md).

    While it runs, one line per thing that happens (invocations, API requests, retries,
    dead-letter moves) is printed; failures in red with where the handler raised.
    Without TEMPLATE, ./template.yaml (or samconfig.toml's template_file) is used if there is one,
    else the Terraform root module in this directory (its .tf files)."""
    import os

    from unkai.server import AlreadyRunning, CannotListen, run

    if ses_production:  # SES reads these (unkai/services/ses/identities.py, receiving.py)
        os.environ["UNKAI_SES_PRODUCTION"] = "1"
    if smtp_port is not None:
        os.environ["UNKAI_SMTP_PORT"] = str(smtp_port)
    if mqtt_port is not None:  # IoT's broker reads it (unkai/services/iot/broker.py)
        os.environ["UNKAI_IOT_MQTT_PORT"] = str(mqtt_port)
    template = template or template_file
    if template is None and not no_template:
        template = _template_here()
        if template is not None:
            click.echo(f"unkai: using {template} (found in this directory; --no-template to serve the APIs alone)")
    _check_config_env(template)

    debugged = [name.strip() for chunk in debug for name in chunk.split(",") if name.strip()]
    if debugged:
        import importlib.util

        if importlib.util.find_spec("debugpy") is None:
            click.echo("Error: --debug needs debugpy: pip install 'unkai[debug]'", err=True)
            sys.exit(1)
    config = Config(
        state_dir=state_dir, host=host, port=port, region=region or default_region(), ephemeral=ephemeral,
        access_key=access_key, secret_key=_secret(secret_key), template=template,
        parameter_overrides=_overrides(parameter_overrides), stack_name=stack_name,
        tf_vars=_tf_vars(tf_vars), tf_var_files=list(tf_var_files),
        allow_hosts=list(allow_hosts), allow_origins=list(allow_origins),
        activity="verbose" if verbose else "quiet" if quiet else "normal",
        enforce_iam="" if enforce_iam in (None, "off") else enforce_iam,
        debug=debugged, debug_port=debug_port, debug_wait=not debug_no_wait,
    )
    try:
        run(config)
    except (AlreadyRunning, CannotListen) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


def _template_here() -> Path | None:
    """The template `sam` would use here: samconfig's template_file, else ./template.yaml."""
    here = Path.cwd()
    configs: tuple[str, ...] = ()
    if any(here.glob("samconfig.*")):  # else samconfig (the template loader, YAML) is not imported: start-up time
        from unkai.template import samconfig

        configs = samconfig.CONFIG_FILES
    for name in configs:
        if (here / name).is_file():
            try:
                params = samconfig.read(here / name)
            except samconfig.MissingEnvironment:  # reported once the template is known
                params = {}
            found = params.get("template_file") or params.get("template")
            if isinstance(found, str) and (here / found).is_file():
                return Path(found)
    for name in ("template.yaml", "template.yml", "template.json"):
        if (here / name).is_file():
            return Path(name)
    if not any(here.glob("*.tf")):  # else the HCL reader is not imported (start-up time)
        return None
    from unkai.terraform.config import is_root_module

    if is_root_module(here):  # where `terraform apply` would run: the .tf files here
        return Path(".")
    return None


@main.command()
@click.argument("template", required=False, default=".", type=click.Path(exists=True, path_type=Path))
@click.option("--region", default=None, help="Region to check against [default: AWS_REGION, AWS_DEFAULT_REGION or us-east-1].")
@overrides_option
@stack_name_option
@config_env_option
def validate(template: Path, region: str | None, parameter_overrides: tuple[str, ...], stack_name: str | None) -> None:
    """Check TEMPLATE (a SAM template or its directory) as `unkai up` would, without starting anything."""
    from unkai.template.check import validate as check
    from unkai.template.loader import TemplateError

    _check_config_env(template)
    from unkai.terraform.config import is_root_module

    if is_root_module(template):  # a directory of .tf files (docs/terraform.md)
        from unkai.terraform.check import validate as check_terraform
        from unkai.terraform.hcl import HclError

        try:
            lines = check_terraform(template)
        except HclError as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
        for line in lines:
            click.echo(line)
        return
    try:
        lines = check(template, region or default_region(), _overrides(parameter_overrides), stack_name)
    except TemplateError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    for line in lines:
        click.echo(line)


def _secret(value: str | None) -> str | None:
    """``--secret-key``: ``@FILE`` reads the key from a file, ``-`` prompts for it, so it never
    has to appear on a command line (where `ps` shows it to every user)."""
    if value == "-":
        return click.prompt("Secret access key", hide_input=True)
    if value and value.startswith("@"):
        try:
            return Path(value[1:]).expanduser().read_text().strip()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {value[1:]}: {exc.strerror}", param_hint="--secret-key")
    return value


_control_token: dict[str, str] = {}


def _endpoint(endpoint: str | None, state_dir: Path) -> str:
    """The server as every client command finds it (``cli_client.find_endpoint``: --endpoint-url,
    UNKAI_ENDPOINT, the state directory's server.json, the default port), remembered for errors."""
    import os

    from unkai.cli_client import find_endpoint
    from unkai.server import read_server_file

    info = read_server_file(state_dir) or {}
    # With credentials configured, unkai's own endpoints want the token it wrote to its (owner-only) server file.
    token = os.environ.get("UNKAI_TOKEN") or info.get("token")
    if token:
        _control_token["token"] = token
    url, source = find_endpoint(endpoint, state_dir)
    _control_token["where"] = f"unkai at {url}, from {source}"
    return url


def _get(url: str, timeout: float = 30) -> Any:
    import urllib.error  # here, not at import: `unkai up` needs no HTTP client (start-up time)
    import urllib.request

    headers = {"x-unkai-token": _control_token["token"]} if "token" in _control_token else {}
    where = _control_token.get("where") or f"unkai at {url.split('/_unkai')[0]}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("message")
        except ValueError:
            message = str(exc)
        click.echo(f"Error: {message} ({where})", err=True)
        sys.exit(1)
    except (urllib.error.URLError, OSError) as exc:
        click.echo(f"Error: cannot reach unkai ({getattr(exc, 'reason', exc)}). Is `unkai up` running? ({where})",
                   err=True)
        sys.exit(1)


@main.group(invoke_without_command=True)
@click.option("--to", default=None, help="Only mail to this address.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new mail as it arrives.")
@endpoint_option
@state_option
@json_option
@click.pass_context
def mail(ctx: click.Context, to: str | None, follow: bool, endpoint_url: str | None, state_dir: Path,
         as_json: bool) -> None:
    """List the email unkai has delivered to its local mailbox (SES and SNS email);
    `unkai mail show ID` prints one in full."""
    ctx.obj = {"endpoint": endpoint_url, "state_dir": state_dir}
    if ctx.invoked_subcommand is not None:
        return
    base = _endpoint(endpoint_url, state_dir) + "/_unkai/mail"
    after = 0
    while True:
        query = {"after": str(after)}
        if to:
            query["to"] = to
        if follow:
            query["wait"] = "20"
        try:
            messages = _get(base + "?" + urllib.parse.urlencode(query), timeout=40)
        except KeyboardInterrupt:
            return
        for msg in messages:
            after = max(after, msg.get("seq", 0))
            if as_json:
                if follow:
                    click.echo(json.dumps(msg, ensure_ascii=False))
            else:
                _print_mail(msg)
        if as_json and not follow:
            click.echo(json.dumps(messages, indent=2, ensure_ascii=False))
        if not follow:
            if not messages and not as_json:
                click.echo("No mail.")
            return


def _print_mail(msg: dict, full: bool = False) -> None:
    from unkai.mail import html_to_text

    click.echo(f"--- {msg['sent_at']}  {msg['id']}" + (f"  ({msg['origin']} {msg['message_id']})"
                                                       if msg.get("message_id") else ""))
    click.echo(f"From:    {msg['from']}")
    click.echo(f"To:      {', '.join(msg['to'])}")
    if msg.get("cc"):
        click.echo(f"Cc:      {', '.join(msg['cc'])}")
    click.echo(f"Subject: {msg['subject']}")
    for att in msg.get("attachments") or []:
        click.echo(f"Attached [{att['index']}]: {att['filename']} ({att['content_type']}, {att['size']} bytes)")
    click.echo("")
    if msg.get("text") is not None:
        click.echo(msg["text"].rstrip())
    elif msg.get("html") is not None:
        click.echo(html_to_text(msg["html"]))
    if full and msg.get("html") is not None and msg.get("text") is not None:
        click.echo("\n--- HTML, as text:")
        click.echo(html_to_text(msg["html"]))
    click.echo("")


@mail.command("show")
@click.argument("mail_id")
@click.option("--raw", is_flag=True, help="Print the raw MIME message (.eml).")
@click.option("--save-attachments", "save_dir", default=None, type=click.Path(path_type=Path),
              help="Save the attachments into this directory.")
@json_option
@click.pass_context
def mail_show(ctx: click.Context, mail_id: str, raw: bool, save_dir: Path | None, as_json: bool) -> None:
    """Print one mail: its headers, text (HTML rendered as text) and attachments.
    MAIL_ID is the mailbox id or the SES message id."""
    import urllib.error
    import urllib.request

    base = _endpoint(ctx.obj["endpoint"], ctx.obj["state_dir"]) + "/_unkai/mail/" + urllib.parse.quote(mail_id)
    if raw:
        try:
            with urllib.request.urlopen(base + ".eml", timeout=30) as resp:
                sys.stdout.buffer.write(resp.read())
        except urllib.error.HTTPError:
            click.echo(f"Error: no such message: {mail_id}", err=True)
            sys.exit(1)
        return
    msg = _get(base)
    if as_json:
        click.echo(json.dumps(msg, indent=2, ensure_ascii=False))
    else:
        _print_mail(msg, full=True)
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
        for att in msg.get("attachments") or []:
            with urllib.request.urlopen(f"{base}/attachments/{att['index']}", timeout=30) as resp:
                target = save_dir / Path(att["filename"]).name
                target.write_bytes(resp.read())
            click.echo(f"saved {target}", err=True)


@main.command()
@click.argument("name", required=False)
@endpoint_option
@state_option
@json_option
def inbox(name: str | None, endpoint_url: str | None, state_dir: Path, as_json: bool) -> None:
    """List what was posted to the webhook inbox NAME (all inboxes without NAME)."""
    server = Server(endpoint_url, state_dir)
    base = server.url
    if not name:
        names = server.request("/_unkai/inbox")
        if as_json:
            click.echo(json.dumps(names, indent=2))
        elif not names:
            click.echo(f"No webhook has been called yet. Point one at {base}/_unkai/inbox/NAME.")
        for entry in names:
            click.echo(f"{entry['name']}\t{entry['count']}")
        return
    entries = server.request("/_unkai/inbox/" + urllib.parse.quote(name))
    if as_json:
        click.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    if not entries:
        click.echo(f"Nothing posted to {base}/_unkai/inbox/{name} yet.")
    for entry in entries:
        click.echo(f"--- {entry['received_at']}  {entry['method']} {entry['path']}"
                   + (f"?{entry['query']}" if entry["query"] else ""))
        if "json" in entry:
            click.echo(json.dumps(entry["json"], indent=2, ensure_ascii=False))
        else:
            click.echo(entry.get("body", "<binary body>"))



@main.command()
@click.argument("function")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines as they are written.")
@click.option("--region", default=None, help="The function's region [default: the server's].")
@endpoint_option
@state_option
def logs(function: str, follow: bool, region: str | None, endpoint_url: str | None, state_dir: Path) -> None:
    """Print the log of FUNCTION (a function name, a template's logical id, or a log group name starting with /)."""
    import time

    server = Server(endpoint_url, state_dir)
    group = function if function.startswith("/") else f"/aws/lambda/{function}"
    query = {"group": group}
    if region:
        query["region"] = region
    after, caught_up = 0, False
    while True:
        wait = 20 if follow and caught_up else 0
        page = server.request("/_unkai/logs?" + urllib.parse.urlencode(dict(query, after=after, wait=wait)), timeout=60)
        for event in page["events"]:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(event["timestamp"] / 1000))
            click.echo(f"{stamp}.{event['timestamp'] % 1000:03d}Z {event['stream']} {event['message'].rstrip()}")
        sys.stdout.flush()
        after = page["next"]
        if not page["events"]:
            if not follow:
                return
            caught_up = True


for _command in COMMANDS:
    main.add_command(_command)

from unkai.tf_endpoints import tf_endpoints  # noqa: E402  (imports cli_client, as the loop above)

main.add_command(tf_endpoints)
