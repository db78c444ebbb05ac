"""Check ALTI's decomposition on real models: Σ_j T_i(x_j) + c_i against each layer's attention-block
output as the model computes it (caught with hooks), and the rows of the ALTI maps.

    PROBING_DATA_DIR=../shared/data python scripts/alti_sumback.py [--models minilm_l6 mpnet_base
        smollm2_135m gemma3_270m] [--limit 16]

The block output: BERT's / MPNet's attention LayerNorm output; the residual stream between the
attention and the MLP in Llama (the input of its ``post_attention_layernorm``, the MLP norm) and in
Gemma 3 (the input of ``pre_feedforward_layernorm``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from extraction import compose  # noqa: E402

from probing.attention import extract as ex  # noqa: E402
from probing.attention.alti import alti, blocks  # noqa: E402
from probing.attention.norm import _base  # noqa: E402


def block_outputs(base) -> tuple[list, list]:
    real, name = [], type(base).__name__
    if name in ("BertModel", "MPNetModel"):
        norms = [l.attention.output.LayerNorm if name == "BertModel" else l.attention.LayerNorm
                 for l in base.encoder.layer]
        return real, [n.register_forward_hook(lambda _m, _i, out: real.append(out)) for n in norms]
    mlp_norm = "post_attention_layernorm" if name == "LlamaModel" else "pre_feedforward_layernorm"
    return real, [getattr(l, mlp_norm).register_forward_pre_hook(lambda _m, args: real.append(args[0]))
                  for l in base.layers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["minilm_l6", "mpnet_base", "smollm2_135m", "gemma3_270m"])
    parser.add_argument("--limit", type=int, default=16)
    args = parser.parse_args()
    for model in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            spec, data, settings = compose(model, tmp, f"extract.batch_size={args.limit}")
            sentences = data.read("dev")[0][: args.limit]
            plan = ex.plan_extraction(spec, sentences, settings, "dev")
        base = _base(plan.model)
        ids, mask = ex.pad_batch([plan.pieces.input_ids[i] for i in plan.batches[0]], plan.tokenizer.pad_token_id,
                                 plan.device)
        real, hooks = block_outputs(base)
        with torch.inference_mode():
            base(input_ids=ids, attention_mask=mask)
            for h in hooks:
                h.remove()
            keep = mask.bool()
            err = rel = 0.0
            for blk, y in zip(blocks(plan.model, ids, mask), real):
                gap = (blk.transformed(0, ids.shape[1]).sum(0) + blk.bias - y.float())[keep].abs().max().item()
                err, rel = max(err, gap), max(rel, gap / y.float()[keep].abs().max().item())
            rows = torch.stack([a[:, 0].sum(-1)[keep] for a in alti(plan.model, ids, mask)])
        print(f"{model} ({type(base).__name__}, {len(real)} layers, batch {tuple(ids.shape)}): "
              f"max |Σ_j T_i(x_j) + c_i - y_i| = {err:.2e} ({rel:.1e} of max |y|); "
              f"ALTI rows sum to 1 within {(rows - 1).abs().max().item():.1e}")


if __name__ == "__main__":
    main()
