"""Fig. 3: gradient of the LM loss with respect to attention weights, to special vs other keys.

The paper reads [SEP] as a "no-op" because, from layer 5 on, changing the attention to [SEP]
barely changes BERT's masked-LM loss. We measure, per layer, the mean ``|dL/dα_ij|`` over
(head, real query row i, key j), split by key j into groups:

- ``first``: position 0, i.e. [CLS] / <s> / <bos>, or for a model without a start token its
  first piece (the attention sink of causal LMs);
- ``end``: the end special token ([SEP] / </s>), when the layout has one;
- ``other``: every other non-padding key.

Conventions:

- Word-piece level, one sentence per sequence, cut by :func:`probing.attention.pieces.cut` from
  the running text (words joined by spaces) with the tokenizer's own specials (``add_bos`` may
  force a <bos> on or off). Sentences longer than the model's maximum length are skipped.
- Objective ``"mlm"`` (masked LM): masking as BERT's pretraining data: ``max(1, round(mask_prob
  * n))`` of the ``n`` word pieces, chosen with a ``torch.Generator`` seeded once with ``seed``
  and drawn sentence by sentence in input order (so the masks do not depend on ``batch_size``),
  are replaced by the mask token. (BERT's 80/10/10 random/keep replacement is not used.)
- Objective ``"causal"`` (next-token LM): every word piece at position ``p >= 1`` is a target,
  predicted from position ``p - 1``; special tokens (a <bos>) and padding never are.
- Loss: the sum over sentences of each sentence's own mean cross-entropy over its targets.
  Sentences do not interact in the forward pass, so the gradient on sentence b's attention is the
  gradient of b's own loss whatever else is in the batch.
- Averages: only pairs (i, j) the model can attend are counted: both real (not padding), and in a
  causal model ``j <= i`` and, in a sliding-window layer (Gemma's ``layer_types``), ``i - j <
  sliding_window``. The gradient at a masked pair is not zero (it is ``dL/d out_i · v_j``) but
  that weight is always 0, so it is no attention the model could change. Each sentence's
  per-layer means come first, then the mean over sentences (every sentence weighs the same), so
  padding and batching do not change the result.
- The model must use eager attention (``attn_implementation="eager"``); SDPA returns no weights.
  In eval mode attention dropout is the identity, so the returned weights are exactly the ones
  multiplied with the values (the finite-difference tests check this).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from matplotlib.figure import Figure

from probing.analysis.base import Section
from probing.attention.extract import model_max_length, pad_batch, resolve_device
from probing.attention.layout import Layout
from probing.attention.pieces import cut
from probing.data.sentence import Sentence
from probing.errors import ProbingError

log = logging.getLogger(__name__)

OBJECTIVES = ("mlm", "causal")
GROUPS = ("first", "end", "other")

class NoLMHeadError(ProbingError, RuntimeError):
    """The model has no LM head (e.g. a bare ``BertModel``), so there is no loss to differentiate."""

def has_lm_head(model) -> bool:
    """True for ``*ForMaskedLM`` / ``*ForCausalLM`` models: an output embedding onto the vocabulary."""
    try:
        out = model.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return False
    weight = getattr(out, "weight", None)
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if weight is None or vocab is None:
        return False
    return int(weight.shape[0]) == int(vocab)

def is_causal_lm(model) -> bool:
    config = getattr(model, "config", None)
    return type(model).__name__.endswith("ForCausalLM") or bool(getattr(config, "is_decoder", False))

def _model_name(model) -> str:
    config = getattr(model, "config", None)
    name = getattr(config, "name_or_path", "") or ""
    return f"{name} ({type(model).__name__})" if name else type(model).__name__

# ------------------------------------------------------------------------------------ inputs

@dataclass
class Encoded:
    """Unpadded rows for the sentences used. ``labels[b][p]``: the target at piece ``p`` (-100:
    none); for "causal" it is predicted from ``p - 1``. ``kept``: indices of the sentences used."""

    input_ids: list[list[int]]
    labels: list[list[int]]
    kept: list[int]
    layout: Layout
    skipped: dict[int, str] = field(default_factory=dict)

def _as_sentences(sentences: Sequence) -> list[Sentence]:
    return [s if isinstance(s, Sentence) else Sentence(words=list(s), sent_id=str(i))
            for i, s in enumerate(sentences)]

def encode(tokenizer, sentences: Sequence, objective: str = "mlm", add_bos: bool | None = None,
           mask_prob: float = 0.15, seed: int = 0, max_length: int = 512) -> Encoded:
    """Cut ``sentences`` (``Sentence`` objects or word lists) into pieces and choose the targets."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, not {objective!r}")
    mask_id = tokenizer.mask_token_id
    if objective == "mlm" and mask_id is None:
        raise ValueError(f"tokenizer {type(tokenizer).__name__} has no mask token: use objective='causal'")
    sentences = _as_sentences(sentences)
    skipped = {i: "no words" for i, s in enumerate(sentences) if len(s) == 0}
    usable = [i for i in range(len(sentences)) if i not in skipped]
    pieces = cut(tokenizer, [sentences[i] for i in usable], add_bos)
    generator = torch.Generator().manual_seed(int(seed))
    out = Encoded([], [], [], pieces.layout, skipped)
    for k, s in enumerate(usable):
        ids, tokens = list(pieces.input_ids[k]), pieces.token_of_piece[k]
        words = pieces.layout.words(len(sentences[s]))
        is_word = [words.start <= t < words.stop for t in tokens]
        if len(ids) > max_length:
            skipped[s] = f"{len(ids)} pieces, over the model's {max_length}"
            continue
        labels = [-100] * len(ids)
        if objective == "mlm":
            candidates = [p for p, w in enumerate(is_word) if w]
            num = max(1, int(round(mask_prob * len(candidates))))
            for c in torch.randperm(len(candidates), generator=generator)[:num].tolist():
                p = candidates[c]
                labels[p], ids[p] = ids[p], mask_id
        else:
            for p in range(1, len(ids)):  # nothing predicts position 0
                if is_word[p]:
                    labels[p] = ids[p]
            if all(x == -100 for x in labels):
                skipped[s] = "a single piece: nothing to predict"
                continue
        out.input_ids.append(ids)
        out.labels.append(labels)
        out.kept.append(s)
    out.skipped = dict(sorted(skipped.items()))
    return out

def mask_sentences(tokenizer, sentences: Sequence, mask_prob: float = 0.15, seed: int = 0,
                   max_length: int = 512, add_bos: bool | None = None):
    """MLM inputs ``(input_ids, labels, kept)`` as unpadded lists (see :func:`encode`)."""
    enc = encode(tokenizer, sentences, "mlm", add_bos, mask_prob, seed, max_length)
    return enc.input_ids, enc.labels, enc.kept

# ------------------------------------------------------------------------------------ gradients

def attention_gradients(model, input_ids, attention_mask, labels, objective: str = "mlm"):
    """One forward/backward pass: ``(loss, attentions, grads)``, both lists of (B, H, P, P).

    ``labels`` (B, P) as from :func:`encode`. ``loss`` is the sum over sentences of each sentence's
    mean cross-entropy over its targets; grads are ``d loss / d attention`` for the attention
    weights the model returns (``output_attentions``). Parameter ``.grad`` fields are not touched.
    """
    with torch.enable_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
        attentions = list(out.attentions)
        if not attentions or any(a is None for a in attentions):
            raise RuntimeError("the model returned no attention weights: load it with attn_implementation='eager'")
        if not all(a.requires_grad for a in attentions):
            raise RuntimeError("attention weights carry no gradient: are the parameters frozen?")
        logits = out.logits
        if objective == "causal":  # logits at p - 1 predict the piece at p
            logits, labels = logits[:, :-1], labels[:, 1:]
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

def allowed_pairs(model, width: int, causal: bool, device=None) -> list[torch.Tensor | None]:
    """Per layer, the (P, P) pairs (row i, key j) the model may attend; ``None``: all of them."""
    config = model.config
    layers = int(config.num_hidden_layers)
    if not causal:
        return [None] * layers
    i = torch.arange(width, device=device)[:, None]
    j = torch.arange(width, device=device)[None, :]
    tril = j <= i
    types = getattr(config, "layer_types", None) or ["full_attention"] * layers
    window = getattr(config, "sliding_window", None)
    # transformers' sliding_window_overlay: key j is visible from i when j > i - window
    return [tril & (j > i - window) if t == "sliding_attention" and window else tril for t in types]

def key_groups(attention_mask: torch.Tensor, layout: Layout) -> dict[str, torch.Tensor]:
    """(B, P) bool key masks per group, for right-padded rows of pieces."""
    valid = attention_mask.bool()
    first = torch.zeros_like(valid)
    first[:, 0] = True
    groups = {"first": first}
    if layout.end:
        groups["end"] = torch.nn.functional.one_hot(valid.sum(1) - 1, valid.shape[1]).bool() & valid
    groups["other"] = valid & ~torch.stack(list(groups.values())).any(0)
    return groups

def group_sums(grads, attention_mask, groups, allowed) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per group, ``(sum of |grad|, number of (head, i, j) entries)`` over real, allowed pairs: (B, L) each."""
    valid = attention_mask.bool()
    pairs = valid[:, :, None] & valid[:, None, :]  # (B, P, P): row i, key j
    sums = {g: [] for g in groups}
    counts = {g: [] for g in groups}
    for g, allow in zip(grads, allowed):
        p = pairs if allow is None else pairs & allow
        # where, not a product: a half-precision or float64 model can leave NaN at masked pairs
        per_key = torch.where(p[:, None], g.abs().double(), 0.0).sum((1, 2))  # (B, P): over heads, rows
        n_key = p.sum(1).double() * g.shape[1]
        for name, keys in groups.items():
            sums[name].append((per_key * keys).sum(-1))
            counts[name].append((n_key * keys).sum(-1))
    return {name: (torch.stack(sums[name], 1).cpu().numpy(), torch.stack(counts[name], 1).cpu().numpy())
            for name in groups}

def _ratio(s: np.ndarray, n: np.ndarray) -> np.ndarray:
    return np.divide(s, n, out=np.full_like(s, np.nan), where=n > 0)

def _run(model, tokenizer, sentences, objective, add_bos, mask_prob, seed, batch_size, device):
    """Per-sentence group sums and counts ``{group: ((N, L), (N, L))}`` and the :class:`Encoded`."""
    if not has_lm_head(model):
        head = "masked-LM" if objective == "mlm" else "causal-LM"
        raise NoLMHeadError(
            f"model {_model_name(model)} has no {head} head: the gradient test needs the model loaded "
            f"with its LM head (spec.load(lm_head=True); tiny_random with model.lm_head=true); no result was written"
        )
    if objective == "causal" and not is_causal_lm(model):
        raise ValueError(f"objective 'causal' needs a causal LM, not {_model_name(model)}")
    if objective == "mlm" and is_causal_lm(model):
        raise ValueError(f"objective 'mlm' needs a masked LM, not the causal {_model_name(model)}")
    if objective == "mlm" and not 0.0 < mask_prob <= 1.0:
        raise ValueError(f"mask_prob must be in (0, 1], got {mask_prob}")
    # the extraction's batching and length rule, so that both see the same sentences
    enc = encode(tokenizer, sentences, objective, add_bos, mask_prob, seed, model_max_length(tokenizer, model))
    if not enc.input_ids:
        raise ValueError(f"attention gradient: no usable sentence ({len(enc.skipped)} skipped)")
    was_training = model.training
    model.eval()  # dropout off: the returned weights are the ones used in the attention product
    parts = []
    try:
        for start in range(0, len(enc.input_ids), batch_size):
            chunk = enc.input_ids[start : start + batch_size]
            input_ids, attention_mask = pad_batch(chunk, tokenizer.pad_token_id, device)
            labels, _ = pad_batch(enc.labels[start : start + batch_size], -100, device)
            _, _, grads = attention_gradients(model, input_ids, attention_mask, labels, objective)
            allowed = allowed_pairs(model, input_ids.shape[1], objective == "causal", input_ids.device)
            parts.append(group_sums(grads, attention_mask, key_groups(attention_mask, enc.layout), allowed))
    finally:
        model.train(was_training)
    stats = {g: (np.concatenate([p[g][0] for p in parts]), np.concatenate([p[g][1] for p in parts]))
             for g in parts[0]}
    return stats, enc

def skipped_note(skipped) -> str:
    """"2 skipped: a single piece: nothing to predict (2)" from {sentence: reason} (or a list)."""
    reasons = Counter(skipped.values() if isinstance(skipped, dict) else skipped)
    if not reasons:
        return "none skipped"
    # length reasons name each sentence's piece count: fold them into one
    folded = Counter("over the model's length limit" if "over the model" in r else r for r in reasons.elements())
    return f"{sum(folded.values())} skipped: " + "; ".join(f"{r} ({n})" for r, n in folded.most_common())


def _token(tokenizer, i: int) -> str:
    return str(tokenizer.convert_ids_to_tokens(int(i)))

def attention_gradient(model, tokenizer, sentences: Sequence, objective: str = "mlm",
                       add_bos: bool | None = None, mask_prob: float = 0.15, seed: int = 0,
                       batch_size: int = 16, device="cpu") -> dict:
    """Per layer, mean |dL/dα| on attention to the first / end / other keys (Fig. 3).

    ``sentences``: ``Sentence`` objects or word lists. Returns ``mean`` {group: (L,)} averaged
    over sentences, ``per_sentence`` {group: (N, L)}, ``groups`` (those present: "end" only
    with an end token), ``names`` {group: display name, e.g. "[CLS]", "<bos>", "first piece"},
    ``objective``, ``layout`` (dict), ``num_sentences`` (N), ``kept`` (their indices),
    ``skipped`` {index: reason}, ``mask_prob`` (mlm only) and ``seed``. Inputs are moved to
    ``device``; the model must already be there.
    """
    stats, enc = _run(model, tokenizer, sentences, objective, add_bos, mask_prob, seed, batch_size, device)
    per = {g: _ratio(*stats[g]) for g in stats}
    first = _token(tokenizer, enc.input_ids[0][0]) if enc.layout.start else "first piece"
    names = {"first": first, "end": _token(tokenizer, enc.input_ids[0][-1]), "other": "other tokens"}
    out = {
        "objective": objective,
        "groups": list(per),
        "names": {g: names[g] for g in per},
        "mean": {g: np.nanmean(v, 0) for g, v in per.items()},
        "per_sentence": per,
        "layout": enc.layout.to_dict(),
        "num_sentences": len(enc.kept),
        "kept": enc.kept,
        "skipped": enc.skipped,
        "seed": int(seed),
    }
    if objective == "mlm":
        out["mask_prob"] = float(mask_prob)
    return out

# ------------------------------------------------------------------------------------ figures

def gradient_figure(result: dict) -> Figure:
    """Fig. 3 for any objective: per-layer mean |dL/dα| per key group."""
    means = {g: np.asarray(result["mean"][g], dtype=float) for g in result["groups"]}
    if not all(np.isfinite(v).all() for v in means.values()):
        raise ValueError("gradient_figure: non-finite values")
    layers = np.arange(1, len(next(iter(means.values()))) + 1)
    fig = Figure(figsize=(4.5, 3.2), layout="constrained")
    ax = fig.subplots()
    for (g, v), marker in zip(means.items(), "o^s"):
        label = result["names"][g] if g == "other" else f"to {result['names'][g]}"
        ax.plot(layers, v, marker=marker, label=label)
    ax.set_xlabel("layer")
    ax.set_ylabel("avg. |dL / d attention|")
    ax.set_xticks(layers)
    ax.set_ylim(bottom=0)
    loss = "MLM" if result.get("objective") == "mlm" else "next-token"
    n = result.get("num_sentences")
    ax.set_title(f"{loss} loss gradient wrt attention" + (f" ({n} sentences)" if n else ""))
    ax.legend()
    return fig

# ---------------------------------------------------------------------------------------- job

@dataclass(kw_only=True)
class GradientJob:
    """Fig. 3: is attention to [SEP] (or, in a causal LM, to the first token: the attention sink)
    a no-op? The LM loss's gradient through it, per layer, beside the gradient through the rest.

    Needs trained LM-head weights (``model.lm_head``): BERT's masked-LM head, or a causal LM's.
    The sentence-embedding encoders have none, and get a message instead of a number.
    """

    in_report: ClassVar[bool] = True
    tiny_overrides: ClassVar[list[str]] = ["analysis.max_sentences=6"]
    max_sentences: int
    mask_prob: float
    batch_size: int  # Gemma's 262k-word vocabulary makes the logits of a batch large
    seed: int

    def run(self, ctx) -> Section:
        title = "Gradient through attention (Fig. 3)"
        if not ctx.encoder.lm_head:
            message = (f"Model `{ctx.encoder.name}` has no trained LM head ({ctx.encoder.objective or 'no objective'}"
                       "), so the gradient of Fig. 3 cannot be computed for it. No number was written.")
            log.warning(message)
            return Section(title, message, [], {"skipped": message})
        objective = "causal" if ctx.encoder.family == "causal_lm" else "mlm"
        device = resolve_device(ctx.extraction.device)
        tokenizer, model = ctx.encoder.load(device, lm_head=True)
        sentences = ctx.sentences()[: self.max_sentences]
        res = attention_gradient(model, tokenizer, sentences, objective=objective, add_bos=ctx.encoder.add_bos,
                                 mask_prob=self.mask_prob, seed=self.seed, batch_size=self.batch_size,
                                 device=device)
        figures = ctx.writer.figure(gradient_figure(res), "gradient")
        L = len(res["mean"][res["groups"][0]])
        label = {g: ("mean abs grad to others" if g == "other" else f"mean abs grad to {res['names'][g]}") for g in res["groups"]}
        rows = [{"layer": l + 1, **{label[g]: float(res["mean"][g][l]) for g in res["groups"]}} for l in range(L)]
        # the paper's reading: attention to a token is a no-op when the loss barely depends on it
        sink = "end" if objective == "mlm" and "end" in res["groups"] else "first"
        ratio = res["mean"][sink] / res["mean"]["other"]
        for row, r in zip(rows, ratio):
            row[f"{res['names'][sink]} / others"] = float(r)
        text = ctx.writer.table("gradient", rows, digits=6)
        summary = {"objective": objective, "sentences": res["num_sentences"], "skipped": len(res["skipped"]),
                   "sink": res["names"][sink], "ratio_by_layer": [float(r) for r in ratio],
                   **{f"{g}_by_layer": [float(v) for v in res["mean"][g]] for g in res["groups"]}}
        loss = "masked-LM" if objective == "mlm" else "next-token"
        md = (f"Mean |dL/dα| of the {loss} loss per layer over {res['num_sentences']} sentences "
              f"of `{ctx.split}` ({skipped_note(res['skipped'])}); computed in fp32 whatever `extract.precision` "
              f"says (the gradient is checked against float64 finite differences):\n\n{text}")
        return Section(title, md, figures[:1], summary)
