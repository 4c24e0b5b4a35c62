"""AWS Systems Manager Parameter Store: String, StringList and SecureString
parameters with versions, labels, hierarchies (GetParametersByPath with paging),
tags, and ``AWS::SSM::Parameter`` template resources. Templates read it for
``AWS::SSM::Parameter::Value<...>`` parameters."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import Provisioned, RequestContext, ResourceContext, Service
from unkai.template.names import physical_name  # CloudFormation's generated names

MIGRATIONS = [
    """
    CREATE TABLE ssm_parameters (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}',
        UNIQUE(account, region, name)
    );
    CREATE TABLE ssm_versions (
        parameter_id INTEGER NOT NULL REFERENCES ssm_parameters(id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        type TEXT NOT NULL,
        value TEXT NOT NULL,
        description TEXT,
        allowed_pattern TEXT,
        key_id TEXT,
        tier TEXT NOT NULL,
        data_type TEXT NOT NULL,
        modified REAL NOT NULL,
        user TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (parameter_id, version)
    );
    """
]

TYPES = ("String", "StringList", "SecureString")
SEALED = "unkai-sealed:"  # prefix of a stored SecureString value
MAX_VERSIONS = 100
NAME = re.compile(r"^[a-zA-Z0-9_.\-/]+$")
LABEL = re.compile(r"^[a-zA-Z0-9_.\-]{1,100}$")
DEFAULT_KEY = "alias/aws/ssm"


@dataclass
class Version:
    name: str
    version: int
    type: str
    value: str
    description: str | None
    allowed_pattern: str | None
    key_id: str | None
    tier: str
    data_type: str
    modified: float
    user: str
    labels: list[str]


def _validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def _not_found(name: str) -> ServiceError:
    return ServiceError("ParameterNotFound", f"Parameter {name} not found.")


def _check_name(name: str) -> None:
    if len(name) > 2048:
        raise _validation("Parameter name is too long: a name can be at most 2048 characters.")
    if not NAME.match(name):
        raise _validation("Parameter name: can't contain characters other than letters, numbers, and the symbols "
                          "period (.), hyphen (-), underscore (_) and forward slash (/).")
    if "/" in name and not name.startswith("/"):
        raise _validation("Parameter name must be a fully qualified name.")
    if name.lstrip("/").lower().startswith(("aws", "ssm")):
        raise _validation('Parameter name: can\'t be prefixed with "aws" or "ssm" (case-insensitive). If formed as a '
                          'path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a '
                          'mix of letters, numbers and the following 3 symbols .-_')
    if name.count("/") > 15:
        raise ServiceError("HierarchyLevelLimitExceededException", "Parameter name can have at most 15 levels of "
                           "hierarchy.")


def _sealed(value: str, key_id: str) -> str:
    """What a SecureString's value reads as without decryption: an opaque blob, as on AWS."""
    return base64.b64encode(b"\x01\x02\x02\x00unkai:" + key_id.encode() + b"\x00" + value.encode()).decode()


class SSM(Service):
    name = "ssm"
    migrations = MIGRATIONS
    resource_types = ("AWS::SSM::Parameter",)

    # -- storage ------------------------------------------------------------------

    def _row(self, account: str, region: str, name: str) -> tuple[int, int, dict] | None:
        row = self.store.one("SELECT id, version, tags FROM ssm_parameters WHERE account=? AND region=? AND name=?",
                             (account, region, name))
        return (row[0], row[1], json.loads(row[2])) if row else None

    def _version(self, parameter_id: int, name: str, version: int) -> Version | None:
        row = self.store.one(
            "SELECT version, type, value, description, allowed_pattern, key_id, tier, data_type, modified, user, "
            "labels FROM ssm_versions WHERE parameter_id=? AND version=?", (parameter_id, version))
        return self._opened(Version(name, *row[:10], json.loads(row[10]))) if row else None

    def _versions(self, parameter_id: int, name: str) -> list[Version]:
        rows = self.store.all(
            "SELECT version, type, value, description, allowed_pattern, key_id, tier, data_type, modified, user, "
            "labels FROM ssm_versions WHERE parameter_id=? ORDER BY version", (parameter_id,))
        return [self._opened(Version(name, *r[:10], json.loads(r[10]))) for r in rows]

    def _all(self, account: str, region: str) -> list[Version]:
        rows = self.store.all(
            "SELECT p.name, v.version, v.type, v.value, v.description, v.allowed_pattern, v.key_id, v.tier, "
            "v.data_type, v.modified, v.user, v.labels FROM ssm_parameters p JOIN ssm_versions v "
            "ON v.parameter_id=p.id AND v.version=p.version WHERE p.account=? AND p.region=? ORDER BY p.name",
            (account, region))
        return [self._opened(Version(*r[:11], json.loads(r[11]))) for r in rows]

    def _opened(self, v: Version) -> Version:
        """A SecureString's value is stored sealed (unkai/sealing.py): never in the clear in the
        database. Values written before sealing existed read as they were stored."""
        if v.type == "SecureString" and v.value.startswith(SEALED):
            raw = base64.b64decode(v.value[len(SEALED):])
            v.value = self.cloud.sealer.unseal(raw, f"ssm:{v.name}:{v.version}".encode()).decode()
        return v

    def _stored(self, name: str, version: int, kind: str, value: str) -> str:
        if kind != "SecureString":
            return value
        sealed = self.cloud.sealer.seal(value.encode(), f"ssm:{name}:{version}".encode())
        return SEALED + base64.b64encode(sealed).decode()

    def _resolve(self, ctx: RequestContext, selector_name: str) -> tuple[Version, str | None]:
        return self._select(ctx.account, ctx.region, selector_name)

    def _select(self, account: str, region: str, selector_name: str) -> tuple[Version, str | None]:
        """A parameter by name, its ARN, ``name:version`` or ``name:label``; (version, selector)."""
        text = selector_name
        arn = re.match(r"^arn:aws[a-z-]*:ssm:[^:]*:[^:]*:parameter(/.*)$", text)
        if arn:  # the ARN of a parameter names it (with its leading slash, or one added for a plain name)
            text = arn[1] if "/" in arn[1][1:].split(":", 1)[0] else arn[1][1:]
            if self._row(account, region, text.partition(":")[0]) is None:
                text = arn[1]
        name, _, selector = text.partition(":")
        found = self._row(account, region, name)
        if found is None:
            raise _not_found(selector_name)
        pid, latest, _ = found
        if not selector:
            return self._version(pid, name, latest), None
        if selector.isdigit():
            version = self._version(pid, name, int(selector))
            if version is None:
                raise ServiceError("ParameterVersionNotFound", f"Systems Manager could not find version {selector} of "
                                   f"{name}. Verify the version and try again.")
            return version, f":{selector}"
        for version in self._versions(pid, name):
            if selector in version.labels:
                return version, f":{selector}"
        raise ServiceError("ParameterVersionNotFound", f"Systems Manager could not find label {selector} of {name}. "
                           "Verify the label and try again.")

    def parameter_value(self, account: str, region: str, name: str) -> str | None:
        """The current value of a parameter (``name``, ``name:version`` or ``name:label``), for templates."""
        try:
            return self._select(account, region, name)[0].value
        except ServiceError:
            return None

    def _arn(self, ctx: RequestContext, name: str) -> str:
        return f"arn:aws:ssm:{ctx.region}:{ctx.account}:parameter/{name.lstrip('/')}"

    def _out(self, ctx: RequestContext, v: Version, decrypt: bool, selector: str | None = None) -> dict[str, Any]:
        value = v.value
        if v.type == "SecureString" and not decrypt:
            value = _sealed(v.value, v.key_id or DEFAULT_KEY)
        out = {"Name": v.name, "Type": v.type, "Value": value, "Version": v.version, "LastModifiedDate": v.modified,
               "ARN": self._arn(ctx, v.name), "DataType": v.data_type}
        if selector:
            out["Selector"] = selector
        return out

    # -- operations ---------------------------------------------------------------

    def put_parameter(self, ctx: RequestContext, params: dict) -> dict:
        name, value = params["Name"], params["Value"]
        _check_name(name)
        kind = params.get("Type")
        if kind is not None and kind not in TYPES:
            raise _validation(f"1 validation error detected: Value '{kind}' at 'type' failed to satisfy constraint: "
                              "Member must satisfy enum value set: [SecureString, StringList, String]")
        if not value:
            raise _validation("1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member "
                              "must have length greater than or equal to 1")
        tier = params.get("Tier") or "Standard"
        if tier == "Intelligent-Tiering":
            tier = "Advanced" if len(value.encode()) > 4096 else "Standard"
        limit = 4096 if tier == "Standard" else 8192
        if len(value.encode()) > limit:
            raise _validation(f"Standard tier parameters support a maximum parameter value of {limit} characters. "
                              "To create a larger parameter value, upgrade the parameter to use the advanced-parameter "
                              "tier." if tier == "Standard" else "Parameter value is too long.")
        if params.get("Tags") and params.get("Overwrite"):
            raise _validation("Invalid request: tags and overwrite can't be used together. To create a parameter with "
                              "tags, please remove overwrite flag. To update tags for an existing parameter, please "
                              "use AddTagsToResource or RemoveTagsFromResource.")
        pattern = params.get("AllowedPattern")
        if pattern:
            try:
                if not re.fullmatch(pattern, value):
                    raise ServiceError("ParameterPatternMismatchException", f"Parameter value, {value}, failed to "
                                       f"satisfy constraint specified in the allowed pattern, {pattern}.")
            except re.error:
                raise _validation(f"The allowed pattern {pattern} is not a valid regular expression.") from None
        data_type = params.get("DataType") or "text"
        if data_type not in ("text", "aws:ec2:image", "aws:ssm:integration"):
            raise _validation(f"The following data type is not supported: {data_type} (Data type names are all "
                              "lowercase.)")
        found = self._row(ctx.account, ctx.region, name)
        now = self.clock.now()
        user = f"arn:aws:iam::{ctx.account}:root"
        if found is None:
            if kind is None:
                raise _validation("A parameter type is required when you create a parameter.")
            cur = self.store.execute(
                "INSERT INTO ssm_parameters(account, region, name, version, tags) VALUES(?,?,?,1,?)",
                (ctx.account, ctx.region, name,
                 json.dumps({t["Key"]: t["Value"] for t in params.get("Tags") or []})))
            pid, version, previous = cur.lastrowid, 1, None
        else:
            pid, latest, _ = found
            if not params.get("Overwrite"):
                raise ServiceError("ParameterAlreadyExists", "The parameter already exists. To overwrite this value, "
                                   "set the overwrite option in the request to true.")
            previous = self._version(pid, name, latest)
            version = latest + 1
            kind = kind or previous.type
            if previous.tier == "Advanced" and tier == "Standard" and not params.get("Tier"):
                tier = "Advanced"
            count = self.store.one("SELECT COUNT(*) FROM ssm_versions WHERE parameter_id=?", (pid,))[0]
            if count >= MAX_VERSIONS:
                oldest = self.store.one("SELECT version, labels FROM ssm_versions WHERE parameter_id=? ORDER BY "
                                        "version LIMIT 1", (pid,))
                if json.loads(oldest[1]):
                    raise ServiceError("ParameterMaxVersionLimitExceeded", f"You attempted to create a new version of "
                                       f"{name} by calling the PutParameter API with the overwrite flag. Version "
                                       f"{oldest[0]}, the oldest version, can't be deleted because it has a label "
                                       "associated with it. Move the label to another version of the parameter, and "
                                       "try again.")
                self.store.execute("DELETE FROM ssm_versions WHERE parameter_id=? AND version=?", (pid, oldest[0]))
            self.store.execute("UPDATE ssm_parameters SET version=? WHERE id=?", (version, pid))
        keep = previous
        self.store.execute(
            "INSERT INTO ssm_versions(parameter_id, version, type, value, description, allowed_pattern, key_id, tier, "
            "data_type, modified, user) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
            (pid, version, kind, self._stored(name, version, kind, value),
             params.get("Description", keep.description if keep else None),
             pattern if pattern is not None else (keep.allowed_pattern if keep else None),
             (params.get("KeyId") or (keep.key_id if keep else None) or DEFAULT_KEY) if kind == "SecureString" else None,
             tier, data_type, now, user))
        return {"Version": version, "Tier": tier}

    def get_parameter(self, ctx: RequestContext, params: dict) -> dict:
        version, selector = self._resolve(ctx, params["Name"])
        return {"Parameter": self._out(ctx, version, bool(params.get("WithDecryption")), selector)}

    def get_parameters(self, ctx: RequestContext, params: dict) -> dict:
        names = params.get("Names") or []
        if len(names) > 10:
            raise _validation(f"1 validation error detected: Value '{names}' at 'names' failed to satisfy constraint: "
                              "Member must have length less than or equal to 10")
        found, invalid = [], []
        for name in dict.fromkeys(names):
            try:
                version, selector = self._resolve(ctx, name)
            except ServiceError:
                invalid.append(name)
                continue
            found.append(self._out(ctx, version, bool(params.get("WithDecryption")), selector))
        return {"Parameters": found, "InvalidParameters": invalid}

    def get_parameters_by_path(self, ctx: RequestContext, params: dict) -> dict:
        path = params["Path"]
        if not path.startswith("/") or len(path) > 2048:
            raise _validation(PATH_REQUIREMENTS)
        if path.lower().lstrip("/").startswith(("aws", "ssm")) and not path.startswith("/aws/"):
            raise _validation("Paths can't be prefixed with \"aws\" or \"ssm\" (case-insensitive).")
        check_filters(params.get("ParameterFilters"), by_path=True)
        limit = _limit(params.get("MaxResults"), 10)
        prefix = path if path.endswith("/") else path + "/"
        recursive = bool(params.get("Recursive"))
        matches = []
        for v in self._all(ctx.account, ctx.region):
            if not v.name.startswith(prefix) and not (prefix == "/" and v.name.startswith("/")):
                continue
            if not recursive and "/" in v.name[len(prefix):]:
                continue
            if _filtered(v, params.get("ParameterFilters"), self._tags_of(ctx, v.name), by_path=True):
                matches.append(v)
        page, token = _page(matches, params.get("NextToken"), limit)
        return {"Parameters": [self._out(ctx, v, bool(params.get("WithDecryption"))) for v in page]} | token

    def delete_parameter(self, ctx: RequestContext, params: dict) -> dict:
        found = self._row(ctx.account, ctx.region, params["Name"])
        if found is None:
            raise _not_found(params["Name"])
        self.store.execute("DELETE FROM ssm_parameters WHERE id=?", (found[0],))
        return {}

    def delete_parameters(self, ctx: RequestContext, params: dict) -> dict:
        deleted, invalid = [], []
        for name in params.get("Names") or []:
            found = self._row(ctx.account, ctx.region, name)
            if found is None:
                invalid.append(name)
            else:
                self.store.execute("DELETE FROM ssm_parameters WHERE id=?", (found[0],))
                deleted.append(name)
        return {"DeletedParameters": deleted, "InvalidParameters": invalid}

    def describe_parameters(self, ctx: RequestContext, params: dict) -> dict:
        limit = _limit(params.get("MaxResults"), 50)
        filters = list(params.get("ParameterFilters") or [])
        check_filters(filters, by_path=False)
        for old in params.get("Filters") or []:  # the older form: Key Name/Type/KeyId, BeginsWith-less Equals
            filters.append({"Key": old["Key"], "Option": "Equals", "Values": old["Values"]})
        matches = [v for v in self._all(ctx.account, ctx.region)
                   if _filtered(v, filters, self._tags_of(ctx, v.name), by_path=False)]
        page, token = _page(matches, params.get("NextToken"), limit)
        return {"Parameters": [self._metadata(ctx, v) for v in page]} | token

    def _metadata(self, ctx: RequestContext, v: Version) -> dict[str, Any]:
        out = {"Name": v.name, "ARN": self._arn(ctx, v.name), "Type": v.type, "LastModifiedDate": v.modified,
               "LastModifiedUser": v.user, "Version": v.version, "Tier": v.tier, "Policies": [],
               "DataType": v.data_type}
        for key, value in (("KeyId", v.key_id), ("Description", v.description), ("AllowedPattern", v.allowed_pattern)):
            if value:
                out[key] = value
        return out

    def get_parameter_history(self, ctx: RequestContext, params: dict) -> dict:
        found = self._row(ctx.account, ctx.region, params["Name"])
        if found is None:
            raise _not_found(params["Name"])
        limit = _limit(params.get("MaxResults"), 50)
        history = self._versions(found[0], params["Name"])
        page, token = _page(history, params.get("NextToken"), limit)
        out = []
        for v in page:
            entry = self._metadata(ctx, v) | {"Value": self._out(ctx, v, bool(params.get("WithDecryption")))["Value"],
                                              "Labels": v.labels}
            entry.pop("ARN")
            out.append(entry)
        return {"Parameters": out} | token

    def label_parameter_version(self, ctx: RequestContext, params: dict) -> dict:
        found = self._row(ctx.account, ctx.region, params["Name"])
        if found is None:
            raise _not_found(params["Name"])
        pid, latest, _ = found
        number = params.get("ParameterVersion") or latest
        target = self._version(pid, params["Name"], number)
        if target is None:
            raise ServiceError("ParameterVersionNotFound", f"Systems Manager could not find version {number} of "
                               f"{params['Name']}. Verify the version and try again.")
        labels = params.get("Labels") or []
        invalid = [lb for lb in labels if not LABEL.match(lb) or lb[0].isdigit() or lb.lower().startswith(("aws", "ssm"))]
        valid = [lb for lb in labels if lb not in invalid]
        if len(set(target.labels) | set(valid)) > 10:
            raise ServiceError("ParameterVersionLabelLimitExceeded", "An operation on a parameter version has failed: "
                               "a parameter version can have a maximum of ten labels.")
        for v in self._versions(pid, params["Name"]):  # a label names one version: move it here
            if v.version != number and set(v.labels) & set(valid):
                self._set_labels(pid, v.version, [lb for lb in v.labels if lb not in valid])
        self._set_labels(pid, number, list(dict.fromkeys(target.labels + valid)))
        return {"InvalidLabels": invalid, "ParameterVersion": number}

    def unlabel_parameter_version(self, ctx: RequestContext, params: dict) -> dict:
        found = self._row(ctx.account, ctx.region, params["Name"])
        if found is None:
            raise _not_found(params["Name"])
        target = self._version(found[0], params["Name"], params["ParameterVersion"])
        if target is None:
            raise ServiceError("ParameterVersionNotFound", f"Systems Manager could not find version "
                               f"{params['ParameterVersion']} of {params['Name']}. Verify the version and try again.")
        wanted = params.get("Labels") or []
        self._set_labels(found[0], target.version, [lb for lb in target.labels if lb not in wanted])
        return {"RemovedLabels": [lb for lb in wanted if lb in target.labels],
                "InvalidLabels": [lb for lb in wanted if lb not in target.labels]}

    def _set_labels(self, pid: int, version: int, labels: list[str]) -> None:
        self.store.execute("UPDATE ssm_versions SET labels=? WHERE parameter_id=? AND version=?",
                           (json.dumps(labels), pid, version))

    # -- tags ---------------------------------------------------------------------

    def _tags_of(self, ctx: RequestContext, name: str) -> dict[str, str]:
        found = self._row(ctx.account, ctx.region, name)
        return found[2] if found else {}

    def _tagged(self, ctx: RequestContext, params: dict) -> tuple[int, dict]:
        if params.get("ResourceType") != "Parameter":
            raise ServiceError("InvalidResourceType", "The resource type is not valid for tagging in unkai: only "
                               "Parameter is supported.")
        found = self._row(ctx.account, ctx.region, params["ResourceId"])
        if found is None:
            raise ServiceError("InvalidResourceId", "The resource ID is not valid. Verify that you entered the "
                               "correct ID and try again.")
        return found[0], found[2]

    def add_tags_to_resource(self, ctx: RequestContext, params: dict) -> dict:
        pid, tags = self._tagged(ctx, params)
        tags.update({t["Key"]: t["Value"] for t in params.get("Tags") or []})
        if len(tags) > 50:
            raise ServiceError("TooManyTagsError", "The Targets parameter includes too many tags. Remove one or more "
                               "tags and try the command again.")
        self.store.execute("UPDATE ssm_parameters SET tags=? WHERE id=?", (json.dumps(tags), pid))
        return {}

    def remove_tags_from_resource(self, ctx: RequestContext, params: dict) -> dict:
        pid, tags = self._tagged(ctx, params)
        for key in params.get("TagKeys") or []:
            tags.pop(key, None)
        self.store.execute("UPDATE ssm_parameters SET tags=? WHERE id=?", (json.dumps(tags), pid))
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: dict) -> dict:
        _, tags = self._tagged(ctx, params)
        return {"TagList": [{"Key": k, "Value": v} for k, v in tags.items()]}

    # -- template resources -------------------------------------------------------

    def create_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str,
                        props: dict[str, Any]) -> Provisioned:
        name = props.get("Name") or "CFN-" + physical_name(logical_id, "", 128).replace("--", "-")
        self._put_from_template(ctx, name, props, overwrite=False)
        return self._provisioned(ctx, name, props)

    def update_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
                        old_props: dict[str, Any], props: dict[str, Any]) -> Provisioned:
        if props.get("Name", physical_id) != physical_id:
            return super().update_resource(ctx, resource_type, logical_id, physical_id, old_props, props)
        self._put_from_template(ctx, physical_id, props, overwrite=True)
        return self._provisioned(ctx, physical_id, props)

    def delete_resource(self, ctx: ResourceContext, resource_type: str, physical_id: str,
                        props: dict[str, Any]) -> None:
        found = self._row(ctx.account, ctx.region, physical_id)
        if found is not None:
            self.store.execute("DELETE FROM ssm_parameters WHERE id=?", (found[0],))

    def _put_from_template(self, ctx: ResourceContext, name: str, props: dict[str, Any], overwrite: bool) -> None:
        if props.get("Type") not in ("String", "StringList"):
            raise ServiceError("ValidationException", f"Type must be String or StringList (CloudFormation cannot "
                               f"create {props.get('Type')!r} parameters)")
        value = props.get("Value")
        request = {"Name": name, "Value": ",".join(value) if isinstance(value, list) else str(value),
                   "Type": props["Type"], "Overwrite": overwrite}
        for key in ("Description", "AllowedPattern", "Tier", "DataType", "Policies"):
            if props.get(key):
                request[key] = props[key]
        if props.get("Tags") and not overwrite:
            request["Tags"] = [{"Key": k, "Value": str(v)} for k, v in props["Tags"].items()]
        self.put_parameter(ctx.request_context("ssm", "PutParameter"), request)
        if overwrite and isinstance(props.get("Tags"), dict):
            found = self._row(ctx.account, ctx.region, name)
            self.store.execute("UPDATE ssm_parameters SET tags=? WHERE id=?",
                               (json.dumps({k: str(v) for k, v in props["Tags"].items()}), found[0]))

    def _provisioned(self, ctx: ResourceContext, name: str, props: dict[str, Any]) -> Provisioned:
        value = props.get("Value")
        return Provisioned(name, name, {"Type": props["Type"],
                                        "Value": ",".join(value) if isinstance(value, list) else str(value)})


def _limit(value: Any, default: int) -> int:
    if value is None:
        return default
    if not 1 <= int(value) <= default:
        raise _validation(f"1 validation error detected: Value '{value}' at 'maxResults' failed to satisfy "
                          f"constraint: Member must have value less than or equal to {default}")
    return int(value)


def _page(items: list, token: str | None, limit: int) -> tuple[list, dict[str, str]]:
    start = 0
    if token:
        try:
            start = int(base64.b64decode(token).decode())
        except (ValueError, UnicodeDecodeError):
            raise ServiceError("InvalidNextToken", "The specified token isn't valid.") from None
    page = items[start:start + limit]
    more = start + limit < len(items)
    return page, ({"NextToken": base64.b64encode(str(start + limit).encode()).decode()} if more else {})


# AWS's whole message for a bad hierarchy path (it ends with a period; older unkai cut it short)
PATH_REQUIREMENTS = ('The parameter doesn\'t meet the parameter name requirements. The parameter name must begin '
                     'with a forward slash "/". It can\'t be prefixed with "aws" or "ssm" (case-insensitive). It '
                     "must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ "
                     "(underscore). Special characters are not allowed. All sub-paths, if specified, must use the "
                     'forward slash symbol "/". Valid example: /get/parameters2-/by1./path0_.')


def check_filters(filters: list[dict] | None, by_path: bool) -> None:
    """ParameterFilters checked as AWS checks them, with its codes and messages (InvalidFilterKey,
    InvalidFilterValue, InvalidFilterOption; the trailing periods are AWS's)."""
    seen: set[str] = set()
    for f in filters or []:
        key, values = f.get("Key", ""), f.get("Values")
        option = f.get("Option") or ("OneLevel" if key == "Path" else "Equals")
        if not by_path and key == "Label":
            raise ServiceError("InvalidFilterKey", "The following filter key is not valid: Label. Valid filter keys "
                               "include: [Path, Name, Type, KeyId, Tier].")
        if by_path and key in ("Name", "Path", "Tier"):
            raise ServiceError("InvalidFilterKey", f"The following filter key is not valid: {key}. Valid filter keys "
                               "include: [Type, KeyId].")
        if key not in ("Name", "Type", "KeyId", "Path", "Label", "Tier", "DataType") and not key.startswith("tag:"):
            raise ServiceError("ValidationException", f"1 validation error detected: Value '{key}' at "
                               "'parameterFilters.1.member.key' failed to satisfy constraint: Member must satisfy "
                               "regular expression pattern: tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType")
        if not values and not key.startswith("tag:"):
            raise ServiceError("InvalidFilterValue", f"The following filter values are missing : null for filter "
                               f"key {key}.")
        if key in seen:
            raise ServiceError("InvalidFilterKey", f"The following filter is duplicated in the request: {key}. A "
                               "request can contain only one occurrence of a specific filter.")
        seen.add(key)
        if key == "Path":
            if option not in ("Recursive", "OneLevel"):
                raise ServiceError("InvalidFilterOption", f"The following filter option is not valid: {option}. "
                                   "Valid options include: [Recursive, OneLevel].")
            for value in values or []:
                if value.lower().lstrip("/").startswith(("aws", "ssm")):
                    raise ServiceError("ValidationException", "Filters for common parameters can't be prefixed with "
                                       '"aws" or "ssm" (case-insensitive). When using global parameters, please '
                                       "specify within a global namespace.")
            continue
        allowed = {"Tier": ("Standard", "Advanced", "Intelligent-Tiering"),
                   "Type": ("String", "StringList", "SecureString")}.get(key)
        for value in values or []:
            if allowed and value not in allowed:
                raise ServiceError("InvalidFilterValue", f"The following filter value is not valid: {value}. Valid "
                                   f"values include: [{', '.join(allowed)}].")
        options = ("BeginsWith", "Equals", "Contains") if key == "Name" else ("BeginsWith", "Equals")
        if key != "Label" and option not in options:
            raise ServiceError("InvalidFilterOption", f"The following filter option is not valid: {option}. Valid "
                               "options include: [BeginsWith, Equals].")


def _filtered(v: Version, filters: list[dict] | None, tags: dict[str, str], by_path: bool) -> bool:
    """ParameterFilters: Name, Type, KeyId, Label, DataType, Tier, Path, tag:<key>."""
    for f in filters or []:
        key, option, values = f.get("Key", ""), f.get("Option") or "Equals", f.get("Values") or []
        if key == "Path" and not by_path:
            prefix = values[0] if values else "/"
            prefix = prefix if prefix.endswith("/") else prefix + "/"
            if not v.name.startswith(prefix) or (option != "Recursive" and "/" in v.name[len(prefix):]):
                return False
            continue
        if key.startswith("tag:"):
            tag = key[4:]
            if tag not in tags or (values and not _matches(tags[tag], option, values)):
                return False
            continue
        field = {"Name": v.name, "Type": v.type, "KeyId": v.key_id or "", "DataType": v.data_type, "Tier": v.tier,
                 "Label": None}.get(key, "")
        if key == "Label":
            if not set(v.labels) & set(values):
                return False
            continue
        if key == "Name" and option == "Contains":
            if not any(val in v.name for val in values):
                return False
            continue
        if key == "Name":
            values = [val if val.startswith("/") or not v.name.startswith("/") else val for val in values]
        if not _matches(field, option, values):
            return False
    return True


def _matches(field: str, option: str, values: list[str]) -> bool:
    if option == "BeginsWith":
        return any(field.startswith(val) for val in values)
    if option == "Contains":
        return any(val in field for val in values)
    return field in values
