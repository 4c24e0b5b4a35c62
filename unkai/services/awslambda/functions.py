"""Functions as the Lambda API sees them: names and ARNs, configurations, code packages."""

from __future__ import annotations

import base64
import contextvars
import hashlib
import io
import os
import re
import shutil
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unkai.protocol import ServiceError
from unkai.protocol.values import iso8601

# Set by callers that write their own bookkeeping right after an invocation (the event source
# pollers deleting messages or moving a stream's position, asynchronous invocations): the
# invocation's log lines and its ``lambda.invoke`` event (with the metrics CloudWatch counts from
# it) wait for that transaction (``flush_records``) instead of committing one of their own.
DEFER_RECORDS: contextvars.ContextVar[bool] = contextvars.ContextVar("unkai_lambda_defer_records", default=False)

NAME_RE = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:(?P<region>(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):(?P<account>\d{12})"
    r":function:|"
    r"(?P<account2>\d{12}):function:)?(?P<name>[a-zA-Z0-9_-]{1,140})(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]{1,128}))?$"
)
# botocore's NamespacedFunctionName pattern, which AWS quotes in its validation message
NAME_PATTERN = ("(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:)?"
                "(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST(\\.PUBLISHED)?|[a-zA-Z0-9-_]+))?")
PYTHON_RUNTIMES = ("python3.8", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14")
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT = 1024 * 1024
DEFAULTS = {"Timeout": 3, "MemorySize": 128, "Handler": None, "Description": ""}


def not_found(arn: str, what: str = "Function") -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"{what} not found: {arn}", Type="User")


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValueException", message)


@dataclass
class Name:
    name: str
    qualifier: str | None
    region: str | None
    account: str | None


def parse_name(text: str, qualifier: str | None = None) -> Name:
    """A FunctionName parameter: a name, a partial ARN or an ARN, maybe with a qualifier."""
    m = NAME_RE.match(text or "")
    problems = []
    if m is None:
        problems.append(f"Value '{text}' at 'functionName' failed to satisfy constraint: Member must satisfy "
                        f"regular expression pattern: {NAME_PATTERN}")
    if len(text or "") > 256:
        problems.append(f"Value '{text}' at 'functionName' failed to satisfy constraint: Member must have length "
                        "less than or equal to 256")
    if problems:  # AWS counts every constraint the value breaks
        count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected: "
        raise ServiceError("ValidationException", count + "; ".join(problems))
    assert m is not None
    inline = m.group("qualifier")
    if inline and qualifier and inline != qualifier:
        raise invalid("The derived qualifier from the function name does not match the specified qualifier.")
    return Name(m.group("name"), inline or qualifier, m.group("region"), m.group("account") or m.group("account2"))


def function_arn(region: str, account: str, name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def timestamp(epoch: float) -> str:
    """Lambda's LastModified form: 2024-01-31T12:00:00.000+0000."""
    return iso8601(epoch).replace("Z", "+0000")


def check_config(params: dict, creating: bool) -> None:
    timeout = params.get("Timeout")
    if timeout is not None and not 1 <= timeout <= 900:
        raise ServiceError("ValidationException",
                           f"1 validation error detected: Value '{timeout}' at 'timeout' failed to satisfy constraint: "
                           "Member must have value less than or equal to 900" if timeout > 900 else
                           f"1 validation error detected: Value '{timeout}' at 'timeout' failed to satisfy constraint: "
                           "Member must have value greater than or equal to 1")
    memory = params.get("MemorySize")
    if memory is not None and not 128 <= memory <= 10240:
        raise ServiceError("ValidationException",
                           f"1 validation error detected: Value '{memory}' at 'memorySize' failed to satisfy "
                           "constraint: Member must have value " +
                           ("less than or equal to 10240" if memory > 10240 else "greater than or equal to 128"))
    if creating and params.get("PackageType", "Zip") == "Zip" and not (params.get("Runtime") and params.get("Handler")):
        raise invalid("Runtime and Handler are mandatory parameters for functions created with deployment packages.")
    tenancy = params.get("TenancyConfig")
    if tenancy is not None and tenancy.get("TenantIsolationMode") != "PER_TENANT":
        raise ServiceError("ValidationException",
                           f"1 validation error detected: Value '{tenancy.get('TenantIsolationMode')}' at "
                           "'tenancyConfig.tenantIsolationMode' failed to satisfy constraint: Member must satisfy "
                           "enum value set: [PER_TENANT]")
    role = params.get("Role")
    if role is not None and not re.match(r"^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$", role):
        raise ServiceError("ValidationException",
                           f"1 validation error detected: Value '{role}' at 'role' failed to satisfy constraint: "
                           "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?"
                           "[a-zA-Z_0-9+=,.@\\-_/]+")
    env = (params.get("Environment") or {}).get("Variables") or {}
    for key in env:
        if key in RESERVED_ENV:
            raise invalid(f"Lambda was unable to configure your environment variables because the environment "
                          f"variables you have provided contains reserved keys that are currently not supported for "
                          f"modification. Reserved keys used in this request: {key}")
    durable = params.get("DurableConfig")
    if durable:
        for key, field, low, high in (("ExecutionTimeout", "durableConfig.executionTimeout", 1, 31622400),
                                      ("RetentionPeriodInDays", "durableConfig.retentionPeriodInDays", 1, 90)):
            value = durable.get(key)
            if value is not None and not low <= value <= high:
                raise ServiceError("ValidationException", f"1 validation error detected: Value '{value}' at '{field}' "
                                   "failed to satisfy constraint: Member must have value " +
                                   (f"less than or equal to {high}" if value > high else
                                    f"greater than or equal to {low}"))
    size = sum(len(k) + len(v) for k, v in env.items())
    if size > 4096:
        raise invalid("Lambda was unable to configure your environment variables because the environment variables "
                      f"you have provided exceeded the 4KB limit. String measured: {size}")


RESERVED_ENV = ("_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
                "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
                "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
                "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR")


# What AWS answers while a function is being created or updated (Lambda function states,
# docs.aws.amazon.com/lambda/latest/dg/functions-states.html). unkai is ready at once, so the
# stored configuration is Active/Successful and only the create/update response shows the transition.
CREATING = {"State": "Pending", "StateReason": "The function is being created.", "StateReasonCode": "Creating"}
UPDATING = {"LastUpdateStatus": "InProgress", "LastUpdateStatusReason": "The function is being created.",
            "LastUpdateStatusReasonCode": "Creating"}


def as_created(config: dict) -> dict:
    """The CreateFunction response: Pending, no LastUpdateStatus yet."""
    out = {k: v for k, v in config.items() if k != "LastUpdateStatus"}
    out.update(CREATING)
    return out


def as_updating(config: dict) -> dict:
    """An UpdateFunctionCode/Configuration response: Active, LastUpdateStatus InProgress."""
    return dict(config, **UPDATING)


def build_config(region: str, account: str, name: str, params: dict, code: dict, now: float,
                 old: dict | None = None) -> dict:
    """The FunctionConfiguration AWS returns, from CreateFunction / UpdateFunctionConfiguration parameters."""
    cfg: dict[str, Any] = dict(old) if old else {}
    cfg.update({
        "FunctionName": name, "FunctionArn": function_arn(region, account, name),
        "Version": "$LATEST", "LastModified": timestamp(now), "RevisionId": str(uuid.uuid4()),
        "State": "Active", "LastUpdateStatus": "Successful", "PackageType": params.get("PackageType") or
        cfg.get("PackageType") or "Zip",
        "CodeSha256": code["sha"], "CodeSize": code["size"],
    })
    for key in ("Runtime", "Role", "Handler", "Description", "Timeout", "MemorySize", "KMSKeyArn"):
        if key in params:
            cfg[key] = params[key]
    for key, value in DEFAULTS.items():
        if cfg.get(key) is None and value is not None:
            cfg[key] = value
    if "Environment" in params:
        # AWS echoes an Environment given with no variables as {"Variables": {}} on create, omits it
        # when never given, and drops it when an update empties it.
        variables = (params["Environment"] or {}).get("Variables") or {}
        if variables or not old:
            cfg["Environment"] = {"Variables": variables}
        else:
            cfg.pop("Environment", None)
    if "DeadLetterConfig" in params:
        target = (params["DeadLetterConfig"] or {}).get("TargetArn")
        if target:
            cfg["DeadLetterConfig"] = {"TargetArn": target}
        else:
            cfg.pop("DeadLetterConfig", None)
    if "DurableConfig" in params:  # durable functions (durable.py): kept as given, with AWS's default retention
        durable = {k: v for k, v in (params["DurableConfig"] or {}).items() if v is not None}
        if durable:
            durable.setdefault("RetentionPeriodInDays", 14)
            cfg["DurableConfig"] = durable
        else:
            cfg.pop("DurableConfig", None)
    if "TracingConfig" in params:
        cfg["TracingConfig"] = {"Mode": (params["TracingConfig"] or {}).get("Mode") or "PassThrough"}
    cfg.setdefault("TracingConfig", {"Mode": "PassThrough"})
    if "VpcConfig" in params:
        vpc = params["VpcConfig"] or {}
        cfg["VpcConfig"] = {"SubnetIds": vpc.get("SubnetIds") or [], "SecurityGroupIds":
                            vpc.get("SecurityGroupIds") or [], "VpcId": "vpc-unkai" if vpc.get("SubnetIds") else "",
                            "Ipv6AllowedForDualStack": False}
    if "Layers" in params:
        cfg["Layers"] = [{"Arn": arn, "CodeSize": 0} for arn in params["Layers"] or []]
        if not cfg["Layers"]:
            cfg.pop("Layers")
    cfg["Architectures"] = params.get("Architectures") or cfg.get("Architectures") or ["x86_64"]
    cfg["EphemeralStorage"] = params.get("EphemeralStorage") or cfg.get("EphemeralStorage") or {"Size": 512}
    if "ImageConfig" in params:
        if params["ImageConfig"]:
            cfg["ImageConfigResponse"] = {"ImageConfig": params["ImageConfig"]}
        else:
            cfg.pop("ImageConfigResponse", None)
    if params.get("TenancyConfig"):  # set at creation only, as AWS allows
        cfg["TenancyConfig"] = {"TenantIsolationMode": params["TenancyConfig"].get("TenantIsolationMode")}
    cfg.setdefault("SnapStart", {"ApplyOn": "None", "OptimizationStatus": "Off"})
    if params.get("SnapStart"):
        cfg["SnapStart"] = {"ApplyOn": params["SnapStart"].get("ApplyOn", "None"), "OptimizationStatus": "Off"}
    logging_config = dict(cfg.get("LoggingConfig") or {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"})
    logging_config.update(params.get("LoggingConfig") or {})
    cfg["LoggingConfig"] = logging_config
    if cfg.get("Runtime"):
        cfg["RuntimeVersionConfig"] = {
            "RuntimeVersionArn": f"arn:aws:lambda:{region}::runtime:{hashlib.sha256(cfg['Runtime'].encode()).hexdigest()}"}
    return cfg


# -- code --------------------------------------------------------------------------------

def zip_code(state_dir: Path, data: bytes) -> dict:
    """Unpack a deployment package (content-addressed under the state directory)."""
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    digest = hashlib.sha256(data).hexdigest()
    target = state_dir / "lambda" / "code" / digest
    if not target.exists():
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile:
            raise invalid("Could not unzip uploaded file. Please check your file, then try to upload again.") from None
        tmp = target.with_name(digest + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        for info in archive.infolist():
            dest = (tmp / info.filename).resolve()
            if not str(dest).startswith(str(tmp.resolve())):
                raise invalid("Could not unzip uploaded file. Please check your file, then try to upload again.")
            archive.extract(info, tmp)
            mode = info.external_attr >> 16
            if mode & 0o111 and not info.is_dir():
                os.chmod(dest, 0o755)
        tmp.rename(target)
    return {"kind": "zip", "path": str(target), "sha": sha, "size": len(data), "extra": []}


def local_code(code: dict, state_dir: Path) -> dict:
    """Code a template points at on disk (``{"LocalPath": dir, "ExtraPaths": [...]}``). A ``.zip`` file is
    the package itself; any other single file (``CodeUri: app.py``) is zipped alone, as ``sam build`` does."""
    path = str(Path(code["LocalPath"]).resolve())
    if os.path.isfile(path):
        data = Path(path).read_bytes()
        if not zipfile.is_zipfile(path):
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as archive:
                archive.writestr(os.path.basename(path), data)
            data = buf.getvalue()
        return zip_code(state_dir, data)
    if not os.path.isdir(path):
        raise invalid(f"The code directory {path} does not exist.")
    extra = [str(Path(p).resolve()) for p in code.get("ExtraPaths") or []]
    sha = base64.b64encode(hashlib.sha256(("\0".join([path, *extra])).encode()).digest()).decode()
    return {"kind": "local", "path": path, "sha": sha, "size": 0, "extra": extra}


CFNRESPONSE = Path(__file__).with_name("provided") / "cfnresponse.py"


def inline_code(state_dir: Path, source: str, runtime: str | None) -> dict:
    """CloudFormation's inline ``ZipFile`` code: the source becomes index.py, beside the ``cfnresponse``
    module AWS adds to inline Python code."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("index.py", source)
        if (runtime or "python").startswith("python"):
            archive.writestr("cfnresponse.py", CFNRESPONSE.read_text())
    return zip_code(state_dir, buf.getvalue())


def bootstrap_path(task_root: str, layer_paths: list[str]) -> str:
    """A custom runtime's entry point: ``bootstrap`` in the code (``/var/task``), else in a layer
    (``/opt``), as Lambda looks for it; the code's path when there is none (init then fails)."""
    for base in [task_root, *layer_paths]:
        path = os.path.join(base, "bootstrap")
        if os.path.isfile(path):
            return path
    return os.path.join(task_root, "bootstrap")


def extension_paths(layer_paths: list[str]) -> list[str]:
    """External extensions: the executables in the layers' ``extensions/`` (``/opt/extensions``), by name."""
    found: dict[str, str] = {}
    for base in layer_paths:
        folder = os.path.join(base, "extensions")
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                found[name] = path  # a later layer's file of the same name wins, as it overwrites /opt
    return [found[name] for name in sorted(found)]
