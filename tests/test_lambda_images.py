"""Issue 21 item 20: container-image functions (``PackageType: Image``) run without a Docker
daemon, from a ``docker save`` tarball or an OCI image layout on this machine: the image's
CMD is the handler, its WORKDIR the task root, its ENV the function's, its site-packages on
the path; ImageConfig overrides them; a missing image is a clear error naming where unkai
looked. The images are built here with tarfile, as `docker save` and OCI tools write them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile
import textwrap

import pytest
from botocore.exceptions import ClientError
from lambda_code import ROLE

from unkai.testing import UnkaiServer

PYTHON = "python%d.%d" % sys.version_info[:2]

APP = """
import os
import greeting

def handler(event, context):
    return {"message": greeting.greet(event.get("name", "world")), "greeting": os.environ.get("GREETING"),
            "cwd": os.getcwd().rsplit("/", 2)[-2:], "who": os.environ.get("WHO")}

def other(event, context):
    return {"other": True}
"""


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _layers() -> list[bytes]:
    base = _tar({f"var/lang/lib/{PYTHON}/site-packages/greeting.py": b"def greet(n):\n    return 'hi ' + n\n",
                 "var/task/stale.py": b"x = 1\n"})
    app = _tar({"var/task/app.py": textwrap.dedent(APP).encode(), "var/task/.wh.stale.py": b""})
    return [base, app]


def _config() -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {
        "Cmd": ["app.handler"], "WorkingDir": "/var/task", "Entrypoint": ["/lambda-entrypoint.sh"],
        "Env": ["PATH=/var/lang/bin:/usr/bin", "LAMBDA_TASK_ROOT=/var/task", "GREETING=from-the-image"]}}).encode()


def docker_save(path, tag: str) -> None:
    layers = _layers()
    files = {"config.json": _config(), "manifest.json": json.dumps([{
        "Config": "config.json", "RepoTags": [tag], "Layers": [f"l{i}/layer.tar" for i in range(len(layers))]}]).encode()}
    for i, layer in enumerate(layers):
        files[f"l{i}/layer.tar"] = layer
    path.write_bytes(_tar(files))


def oci_layout(folder, ref: str) -> None:
    def blob(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (folder / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (folder / "blobs" / "sha256" / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    config = blob(_config())
    layers = [dict(blob(gzip.compress(layer)), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
              for layer in _layers()]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"),
                           "layers": layers}).encode()
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [dict(
        blob(manifest), mediaType="application/vnd.oci.image.manifest.v1+json",
        annotations={"org.opencontainers.image.ref.name": ref})]}))


TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  FromImage:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: from-image
      PackageType: Image
      ImageUri: 123456789012.dkr.ecr.us-east-1.amazonaws.com/hello-fn:latest
      Environment:
        Variables:
          WHO: template
  Beside:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: beside
      PackageType: Image
      ImageUri: 123456789012.dkr.ecr.us-east-1.amazonaws.com/beside-template:1
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    images = root / "images"
    images.mkdir()
    docker_save(images / "hello.tar", "123456789012.dkr.ecr.us-east-1.amazonaws.com/hello-fn:latest")
    (images / "oci").mkdir()
    oci_layout(images / "oci", "v7")
    app = root / "app"
    app.mkdir()
    docker_save(app / "beside.tar", "beside-template:1")
    (app / "template.yaml").write_text(TEMPLATE)
    with UnkaiServer(root / "state", str(app / "template.yaml"), env={"UNKAI_IMAGE_PATH": str(images)}) as srv:
        yield srv


def test_a_template_image_function_runs_its_cmd_in_its_workdir_with_its_env(server):
    lam = server.client("lambda")
    out = json.loads(lam.invoke(FunctionName="from-image", Payload=b'{"name": "ann"}')["Payload"].read())
    assert out == {"message": "hi ann", "greeting": "from-the-image", "cwd": ["var", "task"], "who": "template"}
    config = lam.get_function(FunctionName="from-image")
    assert config["Configuration"]["PackageType"] == "Image"
    assert config["Code"]["RepositoryType"] == "ECR"
    assert config["Code"]["ImageUri"].endswith("/hello-fn:latest")


def test_an_image_saved_beside_the_template_is_found(server):
    out = json.loads(server.client("lambda").invoke(FunctionName="beside", Payload=b"{}")["Payload"].read())
    assert out["message"] == "hi world" and out["who"] is None


def test_an_oci_layout_image_with_an_image_config_override(server):
    lam = server.client("lambda")
    lam.create_function(FunctionName="oci-fn", PackageType="Image", Role=ROLE,
                        Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/some-repo:v7"},
                        ImageConfig={"Command": ["app.other"]})
    out = json.loads(lam.invoke(FunctionName="oci-fn", Payload=b"{}")["Payload"].read())
    assert out == {"other": True}
    assert lam.get_function_configuration(FunctionName="oci-fn")["ImageConfigResponse"] == {
        "ImageConfig": {"Command": ["app.other"]}}


def test_a_whiteout_removes_a_file_of_a_lower_layer(server):
    lam = server.client("lambda")
    lam.create_function(FunctionName="whiteout", PackageType="Image", Role=ROLE,
                        Code={"ImageUri": "hello-fn:latest"}, ImageConfig={"Command": ["stale.x"]})
    out = json.loads(lam.invoke(FunctionName="whiteout", Payload=b"{}")["Payload"].read())
    assert out["errorType"] == "Runtime.ImportModuleError"


def test_a_missing_image_is_a_clear_error_naming_where_unkai_looked(server):
    lam = server.client("lambda")
    with pytest.raises(ClientError) as err:
        lam.create_function(FunctionName="nowhere", PackageType="Image", Role=ROLE,
                            Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/absent:1"})
    error = err.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException"
    assert "absent:1 is not available locally" in error["Message"]
    assert "docker save" in error["Message"] and "UNKAI_IMAGE_PATH" in error["Message"]
