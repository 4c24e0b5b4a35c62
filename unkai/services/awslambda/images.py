"""Container-image functions (``PackageType: Image``) without a container daemon.

An image is found on this machine as an OCI image layout (a directory with ``oci-layout``
and ``index.json``, or a tarball of one) or as a ``docker save`` tarball (``manifest.json``
with ``RepoTags``), in the directories ``UNKAI_IMAGE_PATH`` names (``os.pathsep``-separated),
then the template's directory and unkai's working directory; or ``ImageUri`` is such a path
itself. The function's ``ImageUri`` (``{account}.dkr.ecr.{region}.amazonaws.com/repo:tag``,
``repo@sha256:...``) is matched against the images' tags and digests.

The layers are unpacked in order into ``<state>/lambda/images/<config digest>/rootfs``
(whiteouts applied), once per image. The image config gives what Lambda takes from it:
``CMD`` (the handler), ``WORKDIR`` (the task root, ``/var/task`` by default), ``ENV``, as
the function's ``ImageConfig`` may override. The handler runs in unkai's Python runtime for
the image's Python (``/var/lang/lib/python3.X``), with the image's task root and its
``site-packages`` on ``sys.path``: what a Python base image's ``/lambda-entrypoint.sh`` runs.
Images without a Python runtime are refused with a message naming what is missing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any, BinaryIO

from unkai.protocol import ServiceError

IMAGE_PATH_ENV = "UNKAI_IMAGE_PATH"
# variables of the image that describe the image's own filesystem: the runtime sets its own
SKIPPED_ENV = ("PATH", "LD_LIBRARY_PATH", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "LANG", "TZ")


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValueException", message)


class Source:
    """One image store on disk: a directory (OCI layout) or a tarball (docker save or OCI)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tar = tarfile.open(path) if path.is_file() else None

    def read(self, name: str) -> bytes | None:
        name = name.lstrip("./")
        if self.tar is None:
            file = self.path / name
            return file.read_bytes() if file.is_file() else None
        try:
            member = self.tar.extractfile(name)
        except KeyError:
            return None
        return member.read() if member is not None else None

    def open(self, name: str) -> BinaryIO:
        name = name.lstrip("./")
        if self.tar is None:
            return open(self.path / name, "rb")
        member = self.tar.extractfile(name)
        if member is None:
            raise OSError(f"{name} is not a file in {self.path}")
        return member  # type: ignore[return-value]

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()

    def images(self) -> list[dict]:
        """Every image this store holds: ``{"names": {...}, "config": path, "layers": [paths]}``."""
        found: list[dict] = []
        manifest = self.read("manifest.json")
        if manifest:  # docker save
            try:
                for entry in json.loads(manifest):
                    names = set(entry.get("RepoTags") or [])
                    found.append({"names": names, "config": entry["Config"], "layers": list(entry["Layers"]),
                                  "digest": None})
            except (ValueError, KeyError, TypeError):
                pass
        index = self.read("index.json")
        if index and not found:  # an OCI image layout
            try:
                for desc in json.loads(index).get("manifests") or []:
                    found += self._oci(desc, set())
            except (ValueError, KeyError, TypeError, AttributeError):
                pass
        return found

    def _oci(self, desc: dict, names: set[str]) -> list[dict]:
        notes = desc.get("annotations") or {}
        names = names | {v for k, v in notes.items() if k in ("org.opencontainers.image.ref.name",
                                                               "io.containerd.image.name")}
        blob = self.read(_blob(desc["digest"]))
        if blob is None:
            return []
        doc = json.loads(blob)
        media = desc.get("mediaType") or doc.get("mediaType") or ""
        if "index" in media or "manifest.list" in media or "manifests" in doc:
            out: list[dict] = []
            for child in doc.get("manifests") or []:
                platform = child.get("platform") or {}
                if platform.get("os", "linux") == "linux" and platform.get("architecture") in (None, "amd64", "arm64"):
                    out += self._oci(child, names)
            return out[:1]
        return [{"names": names, "config": _blob(doc["config"]["digest"]),
                 "layers": [_blob(layer["digest"]) for layer in doc.get("layers") or []], "digest": desc["digest"]}]


def _blob(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    return f"blobs/{algorithm}/{value}"


def _variants(reference: str, tag_alone: bool = True) -> set[str]:
    """The names an ImageUri may be stored under: in full, without the registry, by repository:tag."""
    ref = reference.strip()
    out = {ref}
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
        out.add(digest)
    if ":" not in ref.rsplit("/", 1)[-1] and not digest:
        ref += ":latest"
    out.add(ref)
    parts = ref.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0]):  # without the registry host
        out.add("/".join(parts[1:]))
    tail = parts[-1]
    out.add(tail)  # repository:tag
    if ":" in tail and tag_alone:
        out.add(tail.split(":", 1)[1])  # an OCI layout's ref.name annotation is often the tag alone
    return out


def search_dirs(extra: list[str]) -> list[Path]:
    dirs = [Path(p) for p in (os.environ.get(IMAGE_PATH_ENV) or "").split(os.pathsep) if p]
    dirs += [Path(p) for p in extra]
    dirs.append(Path.cwd())
    return dirs


def _stores(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    if (directory / "oci-layout").is_file():
        return [directory]
    out = []
    for entry in sorted(directory.iterdir()):
        if entry.is_dir() and (entry / "oci-layout").is_file():
            out.append(entry)
        elif entry.is_file() and entry.name.endswith((".tar", ".oci")):
            out.append(entry)
    return out


def find(image_uri: str, extra_dirs: list[str]) -> tuple[Source, dict]:
    """The store and image ``image_uri`` names; InvalidParameterValueException naming what is missing."""
    direct = Path(image_uri)
    candidates = [direct] if (direct.is_absolute() and direct.exists()) else []
    dirs = search_dirs(extra_dirs)
    if not candidates:
        for directory in dirs:
            candidates += _stores(directory)
    wanted = _variants(image_uri)
    for path in candidates:
        try:
            source = Source(path)
        except (OSError, tarfile.TarError):
            continue
        for image in source.images():
            stored = set().union(*(_variants(n, tag_alone=False) for n in image["names"])) | image["names"]
            if path == direct or wanted & stored or (image["digest"] and image["digest"] in wanted):
                return source, image
        source.close()
    looked = ", ".join(str(d) for d in dirs) or "(none)"
    raise invalid(f"Source image {image_uri} is not available locally. unkai runs container images without a "
                  f"Docker daemon: save the image as a docker save tarball (docker save -o image.tar {image_uri}) "
                  f"or an OCI image layout in one of these directories: {looked} (set {IMAGE_PATH_ENV} to add "
                  "directories).")


def image_code(state_dir: Path, image_uri: str, extra_dirs: list[str]) -> dict:
    """Unpack ``image_uri`` (once) and describe it as a code package: the task root, the
    image's Python runtime, CMD/ENTRYPOINT/WORKDIR/ENV."""
    source, image = find(image_uri, extra_dirs)
    try:
        raw = source.read(image["config"])
        if raw is None:
            raise invalid(f"Source image {image_uri} is missing its config blob {image['config']}.")
        config = (json.loads(raw).get("config") or {})
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        root = state_dir / "lambda" / "images" / digest.split(":", 1)[1]
        rootfs = root / "rootfs"
        if not (root / ".unpacked").exists():
            shutil.rmtree(root, ignore_errors=True)
            rootfs.mkdir(parents=True)
            for layer in image["layers"]:
                with source.open(layer) as stream:
                    _apply_layer(stream.read(), rootfs)
            (root / ".unpacked").write_text(image_uri + "\n")
    except (OSError, tarfile.TarError, ValueError, KeyError) as exc:
        raise invalid(f"Source image {image_uri} could not be read: {exc}") from None
    finally:
        source.close()
    pythons = sorted(p.name for p in (rootfs / "var" / "lang" / "lib").glob("python3.*") if p.is_dir())
    env = {}
    for item in config.get("Env") or []:
        key, _, value = item.partition("=")
        if key and key not in SKIPPED_ENV:
            env[key] = value
    return {"kind": "image", "path": str(rootfs), "sha": digest.split(":", 1)[1], "size": 0, "extra": [],
            "image": {"uri": image_uri, "digest": image.get("digest") or digest, "cmd": config.get("Cmd") or [],
                      "entrypoint": config.get("Entrypoint") or [], "workdir": config.get("WorkingDir") or "",
                      "env": env, "python": pythons[-1] if pythons else ""}}


def _apply_layer(data: bytes, rootfs: Path) -> None:
    """One layer onto the root filesystem: files added, whiteouts (``.wh.NAME``, ``.wh..wh..opq``) removing."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    base = str(rootfs.resolve())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            name = os.path.normpath(member.name.lstrip("/"))
            if name.startswith("..") or name == ".":
                continue
            folder, leaf = os.path.split(name)
            target = os.path.join(base, name)
            if leaf == ".wh..wh..opq":
                shutil.rmtree(os.path.join(base, folder), ignore_errors=True)
                os.makedirs(os.path.join(base, folder), exist_ok=True)
                continue
            if leaf.startswith(".wh."):
                gone = os.path.join(base, folder, leaf[4:])
                if os.path.isdir(gone) and not os.path.islink(gone):
                    shutil.rmtree(gone, ignore_errors=True)
                elif os.path.lexists(gone):
                    os.unlink(gone)
                continue
            if not os.path.realpath(os.path.dirname(target)).startswith(base):
                continue  # a path through a symlink that leaves the root: skipped
            if member.isdev() or member.isfifo():
                continue
            if os.path.lexists(target) and not (member.isdir() and os.path.isdir(target)):
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    os.unlink(target)
            if member.isdir():
                os.makedirs(target, exist_ok=True)
            elif member.issym():
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.symlink(member.linkname, target)
            elif member.islnk():
                source = os.path.join(base, os.path.normpath(member.linkname.lstrip("/")))
                if os.path.realpath(source).startswith(base) and os.path.isfile(source):
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    shutil.copy2(source, target)
            elif member.isfile():
                os.makedirs(os.path.dirname(target), exist_ok=True)
                extracted = tar.extractfile(member)
                with open(target, "wb") as out:
                    shutil.copyfileobj(extracted, out)  # type: ignore[arg-type]
                os.chmod(target, (member.mode or 0o644) & 0o777)


def function_settings(code: dict, image_config: dict | None) -> dict[str, Any]:
    """What a Python image runs: the handler (ImageConfig.Command, else CMD), the task root
    (ImageConfig.WorkingDirectory, else WORKDIR, else /var/task), the runtime, ENV and sys.path."""
    image = code.get("image") or {}
    settings = image_config or {}
    rootfs = code["path"]
    command = settings.get("Command") or image.get("cmd") or []
    workdir = settings.get("WorkingDirectory") or image.get("workdir") or "/var/task"
    python = image.get("python") or ""
    if not python:
        raise invalid(f"The image {image.get('uri')} has no Python runtime (no /var/lang/lib/python3.*): unkai runs "
                      "container images built on AWS's Python base images (public.ecr.aws/lambda/python).")
    if not command:
        raise invalid(f"The image {image.get('uri')} names no handler: set CMD in the image or ImageConfig.Command.")
    task_root = os.path.join(rootfs, workdir.lstrip("/"))
    site = os.path.join(rootfs, "var", "lang", "lib", python, "site-packages")
    return {"handler": command[0], "runtime": python, "task_root": task_root, "env": dict(image.get("env") or {}),
            "extra": [p for p in (site, os.path.join(rootfs, "var", "runtime")) if os.path.isdir(p)]}
