"""SAM to CloudFormation with aws-sam-translator, offline.

The translator wants code in S3 and a region from boto3. Local ``CodeUri`` and
``ContentUri`` paths are swapped for ``s3://`` placeholders before translation and
turned back into ``{"LocalPath": ..., "ExtraPaths": []}`` after it; a local
``DefinitionUri`` (an OpenAPI file) is read and inlined as ``DefinitionBody``; the
region comes from the stack, and managed policy names resolve without IAM.
"""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path
from typing import Any

from unkai.template.loader import Source, TemplateError, read_document

PLACEHOLDER_BUCKET = "unkai-local-code"
SAM_TRANSFORM = re.compile(r"^AWS::Serverless-\d{4}-\d{2}-\d{2}$")


def is_sam(template: dict[str, Any]) -> bool:
    transform = template.get("Transform")
    names = transform if isinstance(transform, list) else [transform]
    return any(isinstance(t, str) and SAM_TRANSFORM.match(t) for t in names)


def _unsupported_transforms(source: Source) -> None:
    transform = source.data.get("Transform")
    names = transform if isinstance(transform, list) else [transform] if transform else []
    for name in names:
        if not (isinstance(name, str) and SAM_TRANSFORM.match(name)):
            raise source.error(f"the transform {name!r} is not supported by unkai (only AWS::Serverless)",
                               ("Transform",), where="Transform")


class LocalPaths:
    """Local code directories behind the placeholders."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.paths: list[Path] = []

    def placeholder(self, source: Source, value: Any, path: tuple, prop: str) -> Any:
        """``value`` itself unless it is a local path: then an s3:// placeholder for it."""
        if not isinstance(value, str) or value.startswith("s3://"):
            return value
        local = (self.base_dir / value).resolve()
        if not local.exists():
            raise source.error(f"{prop} {value} does not exist (looked for {local})", path)
        self.paths.append(local)
        return f"s3://{PLACEHOLDER_BUCKET}/{len(self.paths) - 1}"

    def local(self, location: Any) -> Path | None:
        if isinstance(location, dict) and location.get("S3Bucket") == PLACEHOLDER_BUCKET:
            return self.paths[int(location["S3Key"])]
        return None


def expand(source: Source, parameters: dict[str, Any], region: str) -> tuple[dict[str, Any], LocalPaths]:
    """The CloudFormation template for ``source`` (a copy; SAM expanded when it is SAM),
    with local code given as ``Code``/``Content`` = ``{"LocalPath": ...}``."""
    _unsupported_transforms(source)
    template = copy.deepcopy(source.data)
    template = _includes(source, template, ())
    paths = LocalPaths(source.base_dir)
    if is_sam(template):
        _swap_local_paths(source, template, paths)
        template = _translate(source, template, parameters, region)
    _local_code(source, template, paths)
    return template, paths


def _includes(source: Source, value: Any, path: tuple) -> Any:
    """``Fn::Transform`` of ``AWS::Include`` with a local ``Location`` replaced by that file's content (as
    ``sam deploy`` uploads and CloudFormation then includes it); other macros are refused by name."""
    if isinstance(value, list):
        return [_includes(source, item, path + (i,)) for i, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    out = {k: _includes(source, v, path + (k,)) for k, v in value.items() if k != "Fn::Transform"}
    if "Fn::Transform" not in value:
        return out
    spec = value["Fn::Transform"]
    where = path + ("Fn::Transform",)
    name = spec.get("Name") if isinstance(spec, dict) else None
    if name != "AWS::Include":
        raise source.error(f"Fn::Transform of the macro {name!r} cannot run here: unkai runs no CloudFormation "
                           "macros (only AWS::Include and the AWS::Serverless transform)", where)
    location = (spec.get("Parameters") or {}).get("Location") if isinstance(spec.get("Parameters"), dict) else None
    if not isinstance(location, str) or not location:
        raise source.error("AWS::Include needs Parameters.Location (a file path or s3:// URI)", where)
    if location.startswith("s3://") or "://" in location:
        raise source.error(f"AWS::Include Location {location} is not a local file: unkai includes files beside "
                           "the template (as sam deploy uploads them)", where)
    included = _includes(source, _read_local(source, location, where, "AWS::Include Location"), where)
    if not out:
        return included
    if isinstance(included, dict):  # beside other keys, the snippet's keys are merged into the map
        return {**out, **included}
    raise source.error(f"AWS::Include {location} must hold a map to merge beside other keys", where)


def _swap_local_paths(source: Source, template: dict[str, Any], paths: LocalPaths) -> None:
    function_globals = ((template.get("Globals") or {}).get("Function") or {})
    if "CodeUri" in function_globals:
        function_globals["CodeUri"] = paths.placeholder(source, function_globals["CodeUri"],
                                                        ("Globals", "Function", "CodeUri"), "CodeUri")
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict):
            continue
        kind = resource.get("Type")
        props = resource.get("Properties")
        if props is None and isinstance(kind, str) and kind.startswith("AWS::Serverless::"):
            props = resource["Properties"] = {}  # CloudFormation and SAM accept a resource with no Properties
        if not isinstance(props, dict):
            continue
        path = ("Resources", logical_id, "Properties")
        if kind == "AWS::Serverless::Function":
            if props.get("PackageType") == "Image":
                continue  # the ImageUri's image, found on this machine (awslambda/images.py)
            if "CodeUri" not in props and "InlineCode" not in props and "CodeUri" not in function_globals:
                props["CodeUri"] = "."  # as sam build does
            if "CodeUri" in props:
                props["CodeUri"] = paths.placeholder(source, props["CodeUri"], path + ("CodeUri",), "CodeUri")
        elif kind == "AWS::Serverless::LayerVersion" and "ContentUri" in props:
            props["ContentUri"] = paths.placeholder(source, props["ContentUri"], path + ("ContentUri",), "ContentUri")
        elif kind in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi") and isinstance(props.get("DefinitionUri"), str) \
                and not props["DefinitionUri"].startswith("s3://"):
            props["DefinitionBody"] = _read_definition(source, props.pop("DefinitionUri"), path + ("DefinitionUri",))


def _read_definition(source: Source, uri: str, path: tuple) -> Any:
    return _read_local(source, uri, path, "DefinitionUri")


def _read_local(source: Source, uri: str, path: tuple, what: str) -> Any:
    """A YAML or JSON file beside the template, as data."""
    file = (source.base_dir / uri).resolve()
    if not file.is_file():
        raise source.error(f"{what} {uri} does not exist (looked for {file})", path)
    try:
        text = file.read_text(encoding="utf-8-sig")
        return read_document(text, file)[0]
    except (OSError, UnicodeDecodeError) as exc:
        raise source.error(f"cannot read {what} {uri}: {exc}", path) from None
    except TemplateError as exc:
        raise source.error(f"cannot read {what} {uri}: {exc.message}", path) from None


# Function properties the translator copies onto the AWS::Lambda::Function unchanged (checked against
# aws-sam-translator): an edit of only these re-uses the last translation instead of running SAM again,
# which for a 50-function template with API events costs over a second.
_PASSTHROUGH = frozenset({"Timeout", "MemorySize", "Description", "Environment", "Runtime", "Handler", "Layers",
                          "Architectures", "EphemeralStorage", "ReservedConcurrentExecutions", "LoggingConfig",
                          "KmsKeyArn"})
# ... unless the function publishes versions (their logical ids hash its properties) or Globals merge into them
_VERSIONED = ("AutoPublishAlias", "AutoPublishCodeSha256", "AutoPublishAliasAllProperties", "DeploymentPreference",
              "ProvisionedConcurrencyConfig", "SnapStart")
_last: dict[tuple, tuple[dict[str, Any], dict[str, Any]]] = {}  # (file, region, parameters) -> (input, output)


def _translate(source: Source, template: dict[str, Any], parameters: dict[str, Any], region: str) -> dict[str, Any]:
    key = (str(source.file), region, repr(sorted(parameters.items())))
    cached = _last.get(key)
    if cached is not None:
        reused = _reuse(cached[0], cached[1], template)
        if reused is not None:
            return reused
    translated = _stored_translation(template, parameters, region)
    if translated is None:
        translated = _run_translator(source, copy.deepcopy(template), parameters, region)
        _store_translation(template, parameters, region, translated)
    _last.clear()  # one stack per file is re-applied at a time: keep only the last
    _last[key] = (template, copy.deepcopy(translated))
    return translated


def _reuse(before: dict[str, Any], translated: dict[str, Any], template: dict[str, Any]) -> dict[str, Any] | None:
    """The last translation with the edited pass-through properties applied, when those are the only
    differences from the template it was made from; else None (translate again)."""
    if {k: v for k, v in before.items() if k != "Resources"} != {k: v for k, v in template.items() if k != "Resources"}:
        return None
    old, new = before.get("Resources") or {}, template.get("Resources") or {}
    if old.keys() != new.keys():
        return None
    function_globals = ((template.get("Globals") or {}).get("Function") or {})
    edits: dict[str, dict[str, Any]] = {}
    for logical_id, resource in new.items():
        if resource == old[logical_id]:
            continue
        was = old[logical_id]
        if not (isinstance(resource, dict) and isinstance(was, dict) and resource.get("Type") == was.get("Type")
                == "AWS::Serverless::Function" and {k: v for k, v in resource.items() if k != "Properties"}
                == {k: v for k, v in was.items() if k != "Properties"}):
            return None
        props, old_props = resource.get("Properties") or {}, was.get("Properties") or {}
        changed = {k for k in props.keys() | old_props.keys() if props.get(k, _MISSING) != old_props.get(k, _MISSING)}
        if not changed <= _PASSTHROUGH or changed & function_globals.keys() or any(k in props for k in _VERSIONED):
            return None
        target = (translated.get("Resources") or {}).get(logical_id)
        if not isinstance(target, dict) or target.get("Type") != "AWS::Lambda::Function":
            return None
        edits[logical_id] = {k: props.get(k, _MISSING) for k in changed}
    out = copy.deepcopy(translated)
    for logical_id, changed_props in edits.items():
        target_props = out["Resources"][logical_id].setdefault("Properties", {})
        for name, value in changed_props.items():
            if value is _MISSING:
                target_props.pop(name, None)
            else:
                target_props[name] = copy.deepcopy(value)
    return out


_MISSING = object()

# -- translations kept across starts --------------------------------------------------------
#
# Importing aws-sam-translator (pydantic models for every SAM type, boto3) costs about two
# seconds of CPU, and a warm `unkai up` of a SAM stack translated the same template each
# time. A successful translation is kept in the user's cache directory, keyed by the
# template as handed to the translator (local paths already swapped for placeholders), the
# parameters (pseudo parameters only when the template names them), the region and the installed translator (its path and its files' size and
# mtime); the translator's output depends on nothing else, and a changed template or
# translator is translated again. An unreadable or unwritable cache only costs the time.

def _translation_path(template: dict[str, Any], parameters: dict[str, Any], region: str) -> Path | None:
    import hashlib
    import importlib.util
    import json
    import os

    from unkai.services import cache_dir

    try:
        spec = importlib.util.find_spec("samtranslator")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    try:
        package = Path(spec.origin).parent
        version = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in (package / "__init__.py",
                                                                              package / "translator" / "translator.py")]
        text = json.dumps(template, sort_keys=True, default=str)
        # A pseudo parameter the template never names cannot change its translation (the stack id is new
        # for each state directory)
        used = {k: v for k, v in parameters.items() if not k.startswith("AWS::") or k in text}
        key = json.dumps([text, used, region, str(package), version], sort_keys=True, default=str)
    except (OSError, TypeError, ValueError):
        return None
    return cache_dir() / "sam" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def _stored_translation(template: dict[str, Any], parameters: dict[str, Any], region: str) -> dict[str, Any] | None:
    import json

    path = _translation_path(template, parameters, region)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("Resources"), dict) else None


def _store_translation(template: dict[str, Any], parameters: dict[str, Any], region: str,
                       translated: dict[str, Any]) -> None:
    import contextlib
    import json
    import os

    path = _translation_path(template, parameters, region)
    if path is None:
        return
    with contextlib.suppress(OSError, TypeError, ValueError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(translated))
        tmp.replace(path)
        from unkai.services import prune

        prune(path.parent, "*.json")


def _run_translator(source: Source, template: dict[str, Any], parameters: dict[str, Any],
                    region: str) -> dict[str, Any]:
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException, InvalidEventException, \
        InvalidResourceException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.arn_generator import ArnGenerator
    from samtranslator.translator.translator import Translator

    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # its notes are not the user's concern
    ArnGenerator.BOTO_SESSION_REGION_NAME = region
    session = boto3.Session(region_name=region, aws_access_key_id="unkai", aws_secret_access_key="unkai")
    translator = Translator(None, Parser(), boto_session=session)
    try:
        return translator.translate(template, parameter_values=dict(parameters),
                                    get_managed_policy_map=lambda: {})
    except InvalidDocumentException as exc:
        causes = list(exc.causes) or [exc]
        first = causes[0]
        logical_id = getattr(first, "_logical_id", None)
        if isinstance(logical_id, list):
            logical_id = logical_id[0] if logical_id else None
        messages = "; ".join(c.message for c in causes)
        if isinstance(logical_id, str):
            path, where = source.locate(logical_id)
            raise source.error(messages, path, where=where if path else None) from None
        raise TemplateError(messages, source.file) from None
    except (InvalidResourceException, InvalidEventException) as exc:
        raise TemplateError(exc.message, source.file) from None
    finally:
        translator.metrics.publish()  # to nowhere; else it warns when collected


def _local_code(source: Source, template: dict[str, Any], paths: LocalPaths) -> None:
    """Placeholders back to local paths; plain CloudFormation's local ``Code: ./dir`` too."""
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Properties"), dict):
            continue
        props = resource["Properties"]
        key = {"AWS::Lambda::Function": "Code", "AWS::Lambda::LayerVersion": "Content"}.get(resource.get("Type"))
        if key is None or key not in props:
            continue
        value = props[key]
        if isinstance(value, str):  # `aws cloudformation package` style: a local path
            paths.placeholder(source, value, ("Resources", logical_id, "Properties", key), key)
            local = paths.paths[-1]
        else:
            local = paths.local(value)
        if local is not None:
            props[key] = {"LocalPath": str(local), "ExtraPaths": []}
