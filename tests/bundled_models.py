"""The real bundled causal LMs through the materialiser: the dequantised checkpoint it saves loads
and computes exactly what transformers' own GGUF load does. Each model's test is a file of its
own (``test_bundle_<model>.py``), so that the two slow loads run on two workers."""

from pathlib import Path

import pytest
import torch

from probing.attention import gguf
from probing.attention.encoders import GGUFCausalLM
from probing.attention.encoders.bundle import BundleError, is_materialized

from .conftest import model_node

SENTENCES = ["The food was great .", "Colorless green ideas sleep furiously .", "Héllo , wörld !"]


def materialized_model_matches_gguf(name, bos, base_class, tmp_path, monkeypatch):
    spec = GGUFCausalLM(**{**model_node(name), "cache_dir": str(tmp_path)})
    try:
        parts = spec.parts()
    except BundleError as e:
        pytest.skip(f"bundled GGUF not installed: {e}")
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    from probing.attention.layout import Layout
    from probing.attention.pieces import piece_layout

    # keep the GGUF-loaded pair that materialize saves: the reference, without a second slow load
    loaded = {}
    monkeypatch.setattr(gguf, "load_gguf", _Spy(gguf.load_gguf, loaded))
    assert len(parts) == len(spec.distributions)
    assert [p.name for p in parts] == sorted(p.name for p in parts)  # the parts in order
    target = Path(spec.source())
    assert is_materialized(target, spec.sha256)
    ref_tok, ref_model = loaded["tokenizer"], loaded["model"]

    tok = AutoTokenizer.from_pretrained(target)
    for s in SENTENCES:
        a = ref_tok(s, return_offsets_mapping=True)
        b = tok(s, return_offsets_mapping=True)
        assert a["input_ids"] == b["input_ids"] and a["offset_mapping"] == b["offset_mapping"]
        assert (b["input_ids"][0] == tok.bos_token_id) is bos
    # transformers 5 drops add_bos_token when it reads tokenizer.json: the template decides, so check that
    assert piece_layout(tok) == piece_layout(ref_tok) == Layout(start=bos, end=False)

    model = AutoModel.from_pretrained(target, attn_implementation="eager").eval()
    assert type(model).__name__ == base_class
    enc = tok(SENTENCES[0], return_tensors="pt")
    with torch.inference_mode():
        want = ref_model(**enc, output_attentions=True)
        got = model(**enc, output_attentions=True).attentions
        lm = AutoModelForCausalLM.from_pretrained(target, attn_implementation="eager").eval()
        logits = lm(**enc).logits
    assert len(got) == len(want.attentions) == model.config.num_hidden_layers
    for a, b in zip(got, want.attentions):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    torch.testing.assert_close(logits, want.logits, rtol=1e-5, atol=1e-4)  # the tied head survived


class _Spy:
    def __init__(self, load, store: dict):
        self.load, self.store = load, store

    def __call__(self, directory, name):
        self.store["tokenizer"], self.store["model"] = self.load(directory, name)
        return self.store["tokenizer"], self.store["model"]
