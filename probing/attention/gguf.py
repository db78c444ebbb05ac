"""GGUF causal LMs: read a GGUF file with transformers (every tensor dequantised to float32) and
save tokenizer and model with ``save_pretrained``, once (:mod:`probing.attention.encoders.bundle`
does it under a lock, with the file's sha256 checked first). Afterwards ``AutoTokenizer`` /
``AutoModelForCausalLM.from_pretrained(directory)`` load in about a second.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


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


def dequantize(gguf: Path, staging: Path) -> None:
    """The GGUF file ``gguf`` as a plain checkpoint directory ``staging``."""
    log.info("dequantising %s into %s (slow, once)", gguf.name, staging)
    tokenizer, model = load_gguf(gguf.parent, gguf.name)
    # the GGUF quantizer marks the model "not serializable", although every weight is dense now
    model.hf_quantizer = None
    tokenizer.save_pretrained(staging)
    model.save_pretrained(staging)
