"""The image `make image` writes (IMAGE_OUT, an OCI archive), run without a container engine:
podman cannot start containers here (crun: setrlimit RLIMIT_NOFILE: operation not permitted),
so its layers are unpacked into a folder and the image's entrypoint and command run under
chroot as the image's user. This proves the image holds everything the binary needs (loader,
libraries, CA roots, /bin/sh for the chart's mounts Job) and works as a non-root user; not
the engine's namespaces, cgroups or seccomp."""

import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import requests

from conftest import free_port

pytestmark = pytest.mark.image

ARCHIVE = os.environ.get("IMAGE_OUT", "")


def blob(oci, digest):
    return (oci / "blobs" / digest.replace(":", "/")).read_bytes()


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    if not ARCHIVE or not Path(ARCHIVE).exists():
        pytest.skip("no image archive: run make image")
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    tmp = tmp_path_factory.mktemp("image")
    oci = tmp / "oci"
    with tarfile.open(ARCHIVE) as t:
        t.extractall(oci, filter="fully_trusted")
    index = json.loads((oci / "index.json").read_text())
    manifest = json.loads(blob(oci, index["manifests"][0]["digest"]))
    config = json.loads(blob(oci, manifest["config"]["digest"]))
    root = tmp / "rootfs"
    for layer in manifest["layers"]:
        data = blob(oci, layer["digest"])
        if layer["mediaType"].endswith("gzip"):
            data = gzip.decompress(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            t.extractall(root, filter="fully_trusted")
    return root, config["config"]


def chroot(root, user, *argv):
    return [shutil.which("chroot") or "/usr/sbin/chroot", f"--userspec={user}", str(root), *argv]


def test_the_image_runs_as_its_non_root_user_with_a_shell_for_the_mounts_job(image):
    root, cfg = image
    assert cfg["User"] == "10001:10001" and cfg["Entrypoint"] == ["/usr/local/bin/strata"]
    assert cfg["Labels"]["org.opencontainers.image.title"] == "strata"
    r = subprocess.run(chroot(root, cfg["User"], "/bin/sh", "-c", "exec /usr/local/bin/strata --version"),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "strata" in r.stdout, r.stderr
    assert (root / "etc/ssl/certs/ca-certificates.crt").stat().st_size > 1000


def test_aws_cli_round_trip_through_the_image_entrypoint(image, tmp_path):
    root, cfg = image
    port = free_port()
    # The image's own command, its listen address mapped to a free port here.
    cmd = [re.sub(r"^0\.0\.0\.0:9000$", f"127.0.0.1:{port}", a) for a in cfg["Cmd"]]
    argv = chroot(root, cfg["User"], *cfg["Entrypoint"], *cmd)
    log = open(tmp_path / "image.log", "w+")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={"PATH": "/usr/local/bin:/bin"})
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            assert p.poll() is None, open(tmp_path / "image.log").read()
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        out = open(tmp_path / "image.log").read()
        keys = dict(re.findall(r"(access key|secret key):\s+(\S+)", out))
        env = dict(os.environ, AWS_ACCESS_KEY_ID=keys["access key"], AWS_SECRET_ACCESS_KEY=keys["secret key"],
                   AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        aws = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", f"http://127.0.0.1:{port}"]
        (tmp_path / "in.txt").write_text("through the image\n")
        for args in (["s3", "mb", "s3://img"], ["s3", "cp", str(tmp_path / "in.txt"), "s3://img/in.txt"],
                     ["s3", "cp", "s3://img/in.txt", str(tmp_path / "out.txt")]):
            r = subprocess.run(aws + args, env=env, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stdout + r.stderr
        assert (tmp_path / "out.txt").read_text() == "through the image\n"
        # The data landed in the image's data folder, owned by the image's user.
        stored = root / "var/lib/strata/ufs/img/in.txt"
        assert stored.read_text() == "through the image\n" and stored.stat().st_uid == 10001
    finally:
        p.terminate()
        p.wait(timeout=20)
