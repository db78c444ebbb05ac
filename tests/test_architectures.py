"""``model=hf model.path=DIR`` on tiny random checkpoints of many transformers architectures: each
runs surface, syntax_heads and an attn_only probe, or stops with a one-line error naming what its
attention lacks. Checkpoints are built with ``from_config`` and saved into a temporary folder."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModel

from probing.attention.byte_tokenizer import byte_tokenizer
from probing.attention.encoders import TinyRandom
from probing.errors import ProbingError

from .conftest import compose_cfg, model_node, run

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
             max_position_embeddings=128)
# bidirectional encoders, read with the tiny BERT's WordPiece vocabulary
ENCODERS = ["bert", "roberta", "distilbert", "electra", "albert", "mpnet", "deberta-v2", "roformer", "convbert",
            "mobilebert"]
# causal LMs, read with the byte-level tokenizer; bloom and mpt have ALiBi positions (no position
# table, no max_position_embeddings), the others rotary or learned ones
CAUSAL = ["gpt2", "gpt_neox", "opt", "bloom", "mpt", "falcon", "llama", "mistral", "qwen2", "phi3", "gemma2",
          "gemma3_text", "olmo2", "gptj"]
# grouped-query attention (2 KV heads for 4 heads) where the architecture has it
GQA = {"num_key_value_heads": 2, "head_dim": 8}
EXTRA = {"llama": GQA, "mistral": GQA, "qwen2": GQA, "gemma2": GQA, "gemma3_text": GQA, "olmo2": GQA,
         "gptj": {"rotary_dim": 8}}
# their attention is not square over the pieces: they must be refused in one line, not crash
REFUSED = {"longformer": "returns attention of shape", "big_bird": "returned no attention weights"}


def checkpoint(model_type: str, folder) -> None:
    if model_type in CAUSAL:
        tokenizer = byte_tokenizer(add_bos=False)
        ids = dict(vocab_size=len(tokenizer), pad_token_id=0, bos_token_id=1, eos_token_id=2)
    else:
        tokenizer = TinyRandom(**model_node("tiny_random")).load_tokenizer()
        ids = dict(vocab_size=tokenizer.vocab_size)
    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, **SMALL, **ids, **EXTRA.get(model_type, {}))
    AutoModel.from_config(config, attn_implementation="eager").save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def hf(folder, tmp_path, config: str, *overrides: str):
    return compose_cfg(config, ["model=hf", f"model.path={folder}", "data=tiny", "~logger", *overrides], tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ENCODERS + CAUSAL)
def test_any_architecture_runs_the_battery(model_type, tmp_path):
    folder = tmp_path / "ckpt"
    checkpoint(model_type, folder)
    surface = run(hf(folder, tmp_path / "surface", "analyze", "analysis=surface"))
    causal = model_type in CAUSAL
    assert surface.get("model.family") == "auto"  # read off the checkpoint's config:
    assert surface.summary["family"] == ("causal_lm" if causal else "encoder")
    assert len(surface.summary["first_by_layer"]) == 2
    syntax = run(hf(folder, tmp_path / "syntax", "analyze", "analysis=syntax_heads", "analysis.min_count=2"))
    assert syntax.summary["rows"]["All"]["count"] == 22  # every word of tiny dev counted
    # the probe on one split, the cache the jobs above filled
    probe = run(hf(folder, tmp_path / "probe", "train", "probe=attn_only", "trainer.max_epochs=1",
                   "split.train=dev", "split.val=dev", "split.test=dev"))
    assert 0 <= probe.metrics["val/uas"] <= 1 and probe.model == "hf"


@pytest.mark.parametrize("model_type", sorted(REFUSED))
def test_an_architecture_whose_attention_is_not_square_is_refused_in_one_line(model_type, tmp_path):
    folder = tmp_path / "ckpt"
    checkpoint(model_type, folder)
    with pytest.raises(ProbingError) as info:
        run(hf(folder, tmp_path / "surface", "analyze", "analysis=surface"))
    message = str(info.value)
    assert REFUSED[model_type] in message and "\n" not in message and "cannot be read" in message
