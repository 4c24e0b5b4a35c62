"""Data sources read without a provider: ``archive_file`` (the hashicorp/archive provider:
builds the zip and reports its hashes), ``aws_caller_identity``, ``aws_region``,
``aws_partition``, ``aws_iam_policy_document`` (the JSON the AWS provider renders) and
``aws_acm_certificate`` (unkai serves no ACM: a stable stand-in ARN for the domain)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable

from unkai.terraform.hcl import HclError, Pos

SCHEMAS: dict[str, tuple[frozenset[str], dict[str, Any]]] = {
    "archive_file": (frozenset("type source_dir source_file source_content source_content_filename output_path "
                               "output_file_mode excludes exclude_symlink_directories".split()),
                     {"source": None}),
    "aws_caller_identity": (frozenset(), {}),
    "aws_region": (frozenset(["name", "region", "endpoint"]), {}),
    "aws_partition": (frozenset(), {}),
    "aws_iam_policy_document": (frozenset("version policy_id source_policy_documents override_policy_documents "
                                          "source_json override_json".split()), {"statement": None}),
    "aws_acm_certificate": (frozenset("domain statuses types most_recent key_types tags".split()), {}),
}


def read(kind: str, cfg: dict, base: Path, region: str, account: str, pos: Pos, cloud: Any = None) -> dict[str, Any]:
    reader: Callable[..., dict] | None = _READERS.get(kind)
    if reader is None:
        raise KeyError(kind)
    if kind == "aws_acm_certificate":
        return _certificate(cfg, base, region, account, pos, cloud)
    return reader(cfg, base, region, account, pos)


def _archive(cfg: dict, base: Path, region: str, account: str, pos: Pos) -> dict:
    if cfg.get("type") != "zip":
        raise HclError("Invalid archive type", f'The archive type "{cfg.get("type")}" is not supported: use "zip".',
                       pos)
    output = cfg.get("output_path")
    if not output:
        raise HclError("Missing required argument", 'The argument "output_path" is required, but no definition was '
                       "found.", pos)
    entries: list[tuple[str, bytes, int]] = []
    excludes = set(cfg.get("excludes") or [])
    if cfg.get("source_dir"):
        src = _path(base, cfg["source_dir"])
        if not src.is_dir():
            raise HclError("Archive creation error", f"error creating archive: error archiving directory: could not "
                           f"archive missing directory: {cfg['source_dir']}", pos)
        for root, dirs, files in os.walk(src):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                full = Path(root) / name
                rel = full.relative_to(src).as_posix()
                if rel in excludes or name.endswith(".pyc"):
                    continue
                entries.append((rel, full.read_bytes(), full.stat().st_mode))
    elif cfg.get("source_file"):
        src = _path(base, cfg["source_file"])
        try:
            entries.append((src.name, src.read_bytes(), src.stat().st_mode))
        except OSError:
            raise HclError("Archive creation error", f"error archiving file: could not archive missing file: "
                           f"{cfg['source_file']}", pos) from None
    elif cfg.get("source_content_filename"):
        entries.append((cfg["source_content_filename"], str(cfg.get("source_content") or "").encode(), 0o644))
    for src_block in cfg.get("source") or []:
        entries.append((src_block.get("filename"), str(src_block.get("content") or "").encode(), 0o644))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name, date_time=(2049, 1, 1, 0, 0, 0))  # fixed, as the archive provider does
            info.external_attr = (mode & 0o777 | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    data = buf.getvalue()
    out = _path(base, output)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.is_file() or out.read_bytes() != data:
        out.write_bytes(data)
    sha256 = hashlib.sha256(data)
    return {"id": hashlib.sha1(data).hexdigest(), "output_path": output, "output_size": len(data),
            "output_sha": hashlib.sha1(data).hexdigest(), "output_sha256": sha256.hexdigest(),
            "output_base64sha256": base64.b64encode(sha256.digest()).decode(),
            "output_sha512": hashlib.sha512(data).hexdigest(),
            "output_base64sha512": base64.b64encode(hashlib.sha512(data).digest()).decode(),
            "output_md5": hashlib.md5(data).hexdigest()}


def archive_sources(cfg: dict, base: Path) -> set[Path]:
    """The files an ``archive_file`` packages (watched, so editing a handler re-applies)."""
    out: set[Path] = set()
    if isinstance(cfg.get("source_dir"), str):
        src = _path(base, cfg["source_dir"]).resolve()
        if src.is_dir():
            for root, dirs, files in os.walk(src):
                dirs[:] = [d for d in dirs if d != "__pycache__"]
                out.update(Path(root) / f for f in files if not f.endswith(".pyc"))
    elif isinstance(cfg.get("source_file"), str):
        out.add(_path(base, cfg["source_file"]).resolve())
    return out


def _path(base: Path, p: str) -> Path:
    path = Path(p)
    return path if path.is_absolute() else base / path


def _caller(cfg: dict, base: Path, region: str, account: str, pos: Pos) -> dict:
    return {"id": account, "account_id": account, "arn": f"arn:aws:iam::{account}:root", "user_id": account}


def _region(cfg: dict, base: Path, region: str, account: str, pos: Pos) -> dict:
    name = cfg.get("region") or cfg.get("name") or region
    return {"id": name, "name": name, "region": name, "endpoint": f"ec2.{name}.amazonaws.com",
            "description": name}


def _partition(cfg: dict, base: Path, region: str, account: str, pos: Pos) -> dict:
    return {"id": "aws", "partition": "aws", "dns_suffix": "amazonaws.com", "reverse_dns_prefix": "com.amazonaws"}


def _policy(cfg: dict, base: Path, region: str, account: str, pos: Pos) -> dict:
    statements: list[dict] = []
    for source in cfg.get("source_policy_documents") or ([cfg["source_json"]] if cfg.get("source_json") else []):
        statements.extend(json.loads(source).get("Statement") or [])
    for st in cfg.get("statement") or []:
        out: dict[str, Any] = {}
        if st.get("sid"):
            out["Sid"] = st["sid"]
        out["Effect"] = st.get("effect") or "Allow"
        for key, name in (("actions", "Action"), ("not_actions", "NotAction"), ("resources", "Resource"),
                          ("not_resources", "NotResource")):
            if st.get(key) is not None:
                values = sorted(set(st[key]), reverse=True)
                out[name] = values[0] if len(values) == 1 else values
        for key, name in (("principals", "Principal"), ("not_principals", "NotPrincipal")):
            for p in st.get(key) or []:
                ids = sorted(set(p.get("identifiers") or []))
                if p.get("type") == "*" and ids == ["*"]:
                    out[name] = "*"
                    continue
                out.setdefault(name, {})[p.get("type")] = ids[0] if len(ids) == 1 else ids
        for c in st.get("condition") or []:
            values = list(c.get("values") or [])
            out.setdefault("Condition", {}).setdefault(c.get("test"), {})[c.get("variable")] = \
                values[0] if len(values) == 1 else values
        statements = [s for s in statements if not (out.get("Sid") and s.get("Sid") == out["Sid"])]
        statements.append(out)
    doc: dict[str, Any] = {"Version": cfg.get("version") or "2012-10-17"}
    if cfg.get("policy_id"):
        doc["Id"] = cfg["policy_id"]
    doc["Statement"] = statements
    text = json.dumps(doc, indent=2)
    return {"id": str(abs(hash(text))), "json": text, "minified_json": json.dumps(doc, separators=(",", ":"))}


def _certificate(cfg: dict, base: Path, region: str, account: str, pos: Pos, cloud: Any = None) -> dict:
    """The newest certificate for the domain in unkai's ACM (``aws acm request-certificate``); without one,
    a stable stand-in ARN (API Gateway checks no certificate), so a configuration runs with no set-up."""
    domain = cfg.get("domain") or ""
    arn = f"arn:aws:acm:{region}:{account}:certificate/{uuid.uuid5(uuid.NAMESPACE_DNS, domain)}"
    acm = (getattr(cloud, "services", None) or {}).get("acm")
    if acm is not None:
        from unkai.http import Headers, Request
        from unkai.services import RequestContext

        ctx = RequestContext(service="acm", operation="ListCertificates", region=region, account=account,
                             request_id="", request=Request("POST", "/", headers=Headers.from_dict({})),
                             protocol="internal")
        statuses = list(cfg.get("statuses") or ["ISSUED"])
        found = [c for c in acm.list_certificates(ctx, {"CertificateStatuses": statuses}).get(
            "CertificateSummaryList", []) if c.get("DomainName") == domain]
        if found:
            arn = found[-1]["CertificateArn"]
    return {"id": arn, "arn": arn, "domain": domain, "status": "ISSUED", "certificate": "", "certificate_chain": "",
            "tags": {}}


_READERS: dict[str, Callable[..., dict]] = {
    "archive_file": _archive, "aws_caller_identity": _caller, "aws_region": _region, "aws_partition": _partition,
    "aws_iam_policy_document": _policy, "aws_acm_certificate": _certificate,
}
