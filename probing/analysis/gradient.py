"""Fig. 3: gradient of the masked-LM loss with respect to attention weights to [SEP] vs the rest.

The paper reads [SEP] as a "no-op" because, from layer 5 on, changing the attention to [SEP]
barely changes BERT's masked-LM loss. We measure, per layer, the mean ``|dL/dα_ij|`` over every
(head, query row i, key column j) whose key j is the end special token ([SEP] / </s>), and
separately over every other non-padding key j (including the start token).

Conventions:

- Word-piece level, one sentence per sequence ``[CLS] pieces [SEP]`` (``is_split_into_words``),
  truncated to the model's maximum length (truncation keeps the end token).
- Masking as BERT's pretraining data: ``max(1, round(mask_prob * n))`` of the ``n`` non-special
  pieces, chosen with a ``torch.Generator`` seeded once with ``seed`` and drawn sentence by
  sentence in input order (so the masks do not depend on ``batch_size``), are replaced by the
  mask token; labels are ``-100`` elsewhere. (BERT's 80/10/10 random/keep replacement is not
  used: every chosen piece becomes the mask token.)
- Loss: the sum over sentences of each sentence's own mean cross-entropy over its masked pieces.
  Sentences do not interact in the forward pass, so the gradient on sentence b's attention is the
  gradient of b's own loss whatever else is in the batch; padding rows and columns are left out
  of both averages. Each sentence's per-layer means are computed first and then averaged over
  sentences (every sentence weighs the same), so padding and batching do not change the result.
- The model must use eager attention (``attn_implementation="eager"``); SDPA returns no weights.
  In eval mode attention dropout is the identity, so the returned weights are exactly the ones
  multiplied with the values (``tests/analysis/test_analysis_gradient.py`` checks this with a
  finite difference).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure


class NoMLMHeadError(RuntimeError):
    """The model has no masked-LM head (e.g. a bare ``BertModel``), so there is no MLM loss."""


def has_mlm_head(model) -> bool:
    """True for ``*ForMaskedLM`` models: an output embedding that maps onto the vocabulary."""
    try:
        out = model.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return False
    if out is None:
        return False
    weight = getattr(out, "weight", None)
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if weight is None or vocab is None:
        return False
    return int(weight.shape[0]) == int(vocab)


def _model_name(model) -> str:
    config = getattr(model, "config", None)
    name = getattr(config, "name_or_path", "") or ""
    return f"{name} ({type(model).__name__})" if name else type(model).__name__


def _max_length(tokenizer, model) -> int:
    limits = [512]
    tok_max = getattr(tokenizer, "model_max_length", None)
    if tok_max is not None and tok_max < 1_000_000:
        limits.append(int(tok_max))
    pos_max = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if pos_max:
        limits.append(int(pos_max))
    return min(limits)


def mask_sentences(
    tokenizer,
    sentences: Sequence[Sequence[str]],
    mask_prob: float = 0.15,
    seed: int = 0,
    max_length: int = 512,
) -> tuple[list[list[int]], list[list[int]], list[int]]:
    """Tokenize and mask each sentence: ``(input_ids, labels, kept)`` as unpadded lists.

    ``kept`` holds the indices of the sentences used; a sentence with no non-special piece (e.g.
    empty) is skipped and draws nothing from the generator.
    """
    mask_id = tokenizer.mask_token_id
    if mask_id is None:
        raise ValueError(f"tokenizer {type(tokenizer).__name__} has no mask token")
    generator = torch.Generator().manual_seed(int(seed))
    all_ids, all_labels, kept = [], [], []
    for s, words in enumerate(sentences):
        enc = tokenizer(
            list(words),
            is_split_into_words=True,
            truncation=True,
            max_length=max_length,
            return_special_tokens_mask=True,
        )
        ids = list(enc["input_ids"])
        special = list(enc["special_tokens_mask"])
        if not ids or not special[-1]:
            raise ValueError(f"sentence {s}: the tokenizer added no end special token")
        candidates = [p for p, sp in enumerate(special) if not sp]
        if not candidates:
            continue
        num = max(1, int(round(mask_prob * len(candidates))))
        order = torch.randperm(len(candidates), generator=generator)[:num].tolist()
        labels = [-100] * len(ids)
        for c in order:
            p = candidates[c]
            labels[p] = ids[p]
            ids[p] = mask_id
        all_ids.append(ids)
        all_labels.append(labels)
        kept.append(s)
    return all_ids, all_labels, kept


def _pad(rows: list[list[int]], value: int, device) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], device=device)


def attention_gradients(model, input_ids, attention_mask, labels):
    """One forward/backward pass: ``(loss, attentions, grads)``, both lists of (B, H, T, T).

    ``loss`` is the sum over sentences of each sentence's mean masked-LM cross-entropy; grads are
    ``d loss / d attention`` for the attention weights the model returns (``output_attentions``).
    Parameter ``.grad`` fields are not touched.
    """
    with torch.enable_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
        attentions = list(out.attentions)
        if not attentions or any(a is None for a in attentions):
            raise RuntimeError(
                "the model returned no attention weights: load it with attn_implementation='eager'"
            )
        if not all(a.requires_grad for a in attentions):
            raise RuntimeError("attention weights carry no gradient: are the parameters frozen?")
        logits = out.logits
        picked = labels != -100
        scores = logits[picked]
        if scores.dtype in (torch.float16, torch.bfloat16):
            scores = scores.float()
        token_loss = torch.nn.functional.cross_entropy(scores, labels[picked], reduction="none")
        rows = picked.nonzero()[:, 0]
        per_sentence = torch.zeros(labels.shape[0], device=logits.device, dtype=token_loss.dtype)
        per_sentence = per_sentence.index_add(0, rows, token_loss)
        per_sentence = per_sentence / picked.sum(1).clamp(min=1)
        loss = per_sentence.sum()
        # same values as retain_grad() + loss.backward() (tested), without filling param .grad
        grads = torch.autograd.grad(loss, attentions)
    return loss.detach(), [a.detach() for a in attentions], [g.detach() for g in grads]


def _per_sentence_means(grads, attention_mask) -> tuple[np.ndarray, np.ndarray]:
    """(B, L) mean |grad| on keys = end token / other real keys, over heads and real rows."""
    valid = attention_mask.bool()
    lengths = valid.sum(1)
    width = valid.shape[1]
    end = torch.nn.functional.one_hot(lengths - 1, width).bool() & valid
    other = valid & ~end
    rows = valid[:, None, :, None].to(grads[0].dtype)
    key_end = end[:, None, None, :].to(grads[0].dtype)
    key_other = other[:, None, None, :].to(grads[0].dtype)
    to_sep, to_other = [], []
    for g in grads:
        a = g.abs() * rows
        h = g.shape[1]
        n = lengths.to(g.dtype)
        to_sep.append((a * key_end).sum((1, 2, 3)) / (h * n))
        to_other.append((a * key_other).sum((1, 2, 3)) / (h * n * (n - 1)))
    return (
        torch.stack(to_sep, 1).double().cpu().numpy(),
        torch.stack(to_other, 1).double().cpu().numpy(),
    )


def sep_gradient(
    model,
    tokenizer,
    sentences: list[list[str]],
    mask_prob: float = 0.15,
    seed: int = 0,
    batch_size: int = 16,
    device="cpu",
) -> dict:
    """Per layer, mean |dL/dα| on attention to the end token vs to other tokens (Fig. 3).

    Returns ``to_sep`` and ``to_other`` (L,) averaged over sentences, the per-sentence values
    ``per_sentence_to_sep`` / ``per_sentence_to_other`` (N, L), ``num_sentences`` (N, the
    sentences used; ones with no word piece are skipped), ``end_token`` (e.g. "[SEP]"),
    ``mask_prob`` and ``seed``. Inputs are moved to ``device``; the model must already be there.
    """
    if not has_mlm_head(model):
        raise NoMLMHeadError(
            f"model {_model_name(model)} has no masked-LM head: sep_gradient needs bert_* from "
            f"the hub or tiny_random with model.mlm_head=true; no result was written"
        )
    if not 0.0 < mask_prob <= 1.0:
        raise ValueError(f"mask_prob must be in (0, 1], got {mask_prob}")
    ids, labels, kept = mask_sentences(tokenizer, sentences, mask_prob, seed, _max_length(tokenizer, model))
    if not ids:
        raise ValueError("sep_gradient: no sentence has any word piece")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()  # dropout off: the returned weights are the ones used in the attention product
    sep_parts, other_parts = [], []
    try:
        for start in range(0, len(ids), batch_size):
            chunk_ids = ids[start : start + batch_size]
            input_ids = _pad(chunk_ids, pad_id, device)
            attention_mask = _pad([[1] * len(r) for r in chunk_ids], 0, device)
            batch_labels = _pad(labels[start : start + batch_size], -100, device)
            _, _, grads = attention_gradients(model, input_ids, attention_mask, batch_labels)
            s, o = _per_sentence_means(grads, attention_mask)
            sep_parts.append(s)
            other_parts.append(o)
    finally:
        model.train(was_training)
    per_sep = np.concatenate(sep_parts)
    per_other = np.concatenate(other_parts)
    end_token = tokenizer.convert_ids_to_tokens(ids[0][-1])
    return {
        "to_sep": per_sep.mean(0),
        "to_other": per_other.mean(0),
        "per_sentence_to_sep": per_sep,
        "per_sentence_to_other": per_other,
        "num_sentences": len(kept),
        "end_token": end_token,
        "mask_prob": float(mask_prob),
        "seed": int(seed),
    }


def plot_sep_gradient(result: dict, path, end_name: str = "[SEP]") -> None:
    """Fig. 3: per-layer mean |dL/dα| on attention to the end token vs to other tokens."""
    to_sep = np.asarray(result["to_sep"], dtype=float)
    to_other = np.asarray(result["to_other"], dtype=float)
    if not (np.isfinite(to_sep).all() and np.isfinite(to_other).all()):
        raise ValueError("plot_sep_gradient: non-finite values")
    layers = np.arange(1, len(to_sep) + 1)
    fig = Figure(figsize=(4.5, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(layers, to_sep, marker="o", label=f"to {end_name}")
    ax.plot(layers, to_other, marker="s", label="to other tokens")
    ax.set_xlabel("layer")
    ax.set_ylabel("avg. |dL / d attention|")
    ax.set_xticks(layers)
    ax.set_ylim(bottom=0)
    n = result.get("num_sentences")
    ax.set_title("MLM loss gradient wrt attention" + (f" ({n} sentences)" if n else ""))
    ax.legend()
    fig.savefig(path, dpi=120)
