"""The aws cli (newest from PyPI) at its default settings."""

import filecmp
import os

import pytest


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("big") / "big.bin"
    with open(p, "wb") as f:
        for _ in range(200):
            f.write(os.urandom(1 << 20))
    return p


def test_mb_cp_ls_rm_rb(strata, tmp_path, big_file):
    b = "cli-" + strata.mode
    strata.aws("s3", "mb", f"s3://{b}")
    small = tmp_path / "small.txt"
    small.write_text("hello strata\n")
    strata.aws("s3", "cp", str(small), f"s3://{b}/docs/small.txt")
    strata.aws("s3", "cp", str(big_file), f"s3://{b}/data/big.bin")
    top = strata.aws("s3", "ls", f"s3://{b}").stdout
    assert "PRE docs/" in top and "PRE data/" in top
    rec = strata.aws("s3", "ls", "--recursive", f"s3://{b}").stdout
    assert "docs/small.txt" in rec and "data/big.bin" in rec and str(200 << 20) in rec
    strata.aws("s3", "cp", f"s3://{b}/docs/small.txt", str(tmp_path / "small.out"))
    assert (tmp_path / "small.out").read_text() == "hello strata\n"
    strata.aws("s3", "cp", f"s3://{b}/data/big.bin", str(tmp_path / "big.out"))
    assert filecmp.cmp(big_file, tmp_path / "big.out", shallow=False)
    # The other gateway of a cluster serves the same data.
    for ep in strata.endpoints[1:]:
        strata.aws("s3", "cp", f"s3://{b}/data/big.bin", str(tmp_path / "big2.out"), endpoint=ep)
        assert filecmp.cmp(big_file, tmp_path / "big2.out", shallow=False)
    # Server-side copies: CopyObject for the small file, UploadPartCopy for the big one.
    strata.aws("s3", "cp", f"s3://{b}/data/big.bin", f"s3://{b}/copy/big.bin")
    strata.aws("s3", "mv", f"s3://{b}/docs/small.txt", f"s3://{b}/moved/small.txt")
    strata.aws("s3", "cp", f"s3://{b}/copy/big.bin", str(tmp_path / "big3.out"))
    assert filecmp.cmp(big_file, tmp_path / "big3.out", shallow=False)
    strata.aws("s3", "cp", f"s3://{b}/moved/small.txt", str(tmp_path / "moved.out"))
    assert (tmp_path / "moved.out").read_text() == "hello strata\n"
    assert "docs/small.txt" not in strata.aws("s3", "ls", "--recursive", f"s3://{b}").stdout
    if strata.mode == "local":
        # A plain file with the same key in the bucket's folder.
        assert filecmp.cmp(big_file, strata.data_dir / "ufs" / b / "data" / "big.bin", shallow=False)
    assert "BucketNotEmpty" in strata.aws("s3", "rb", f"s3://{b}", check=False).stderr
    strata.aws("s3", "rm", f"s3://{b}/moved/small.txt")
    strata.aws("s3", "rm", "--recursive", f"s3://{b}/")
    assert strata.aws("s3", "ls", "--recursive", f"s3://{b}").stdout.strip() == ""
    strata.aws("s3", "rb", f"s3://{b}")
    assert b not in strata.aws("s3", "ls").stdout


def test_sync(strata, tmp_path):
    b = "sync-" + strata.mode
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    for i in range(20):
        (src / ("a/b" if i % 2 else "a") / f"f{i}.txt").write_bytes(os.urandom(1000 + i))
    strata.aws("s3", "mb", f"s3://{b}")
    strata.aws("s3", "sync", str(src), f"s3://{b}/tree")
    # Nothing changed: a second sync copies nothing.
    assert "upload:" not in strata.aws("s3", "sync", str(src), f"s3://{b}/tree").stdout
    (src / "a" / "f0.txt").unlink()
    strata.aws("s3", "sync", "--delete", str(src), f"s3://{b}/tree")
    dst = tmp_path / "dst"
    strata.aws("s3", "sync", f"s3://{b}/tree", str(dst))
    cmp = filecmp.dircmp(src, dst)
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only
    assert sorted(os.listdir(dst / "a" / "b")) == sorted(os.listdir(src / "a" / "b"))
    strata.aws("s3", "rb", "--force", f"s3://{b}")


def test_cli_without_checksums(strata, tmp_path):
    b = "nocrc-" + strata.mode
    f = tmp_path / "f.bin"
    f.write_bytes(os.urandom(12 << 20))
    env = {"AWS_REQUEST_CHECKSUM_CALCULATION": "when_required", "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required"}
    strata.aws("s3", "mb", f"s3://{b}", env=env)
    strata.aws("s3", "cp", str(f), f"s3://{b}/f.bin", env=env)
    strata.aws("s3", "cp", f"s3://{b}/f.bin", str(tmp_path / "g.bin"), env=env)
    assert filecmp.cmp(f, tmp_path / "g.bin", shallow=False)
    strata.aws("s3", "rb", "--force", f"s3://{b}", env=env)
