"""The paper's claims as verdicts, model by model: each with its rule and threshold, its control,
and the seeds behind it, tested as the paper states it; a broader reading is a row of its own.

A verdict reads the summaries of ordinary job runs of one model (``surface``, its norm-weighted
twin ``surface-norm``, ``segment_pairs``, ``syntax_heads``, ``coref_heads``, ``head_similarity``,
``gradient``) and the dev UAS of its Table 3 probe runs. Each cell says "holds", "does not hold" or
"cannot be tested", then the numbers the rule compared, so a reader can disagree. Every rule has a
test with a hand-made case where it must come out "does not hold".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from probing.record import mean_std, sample_std

HOLDS, FAILS, UNTESTED = "holds", "does not hold", "cannot be tested"
SINK = 0.5  # "over half of their attention" (§3)
SEP_SELF = 0.9  # "over 90% of their attention" (§3)
PERMUTATION_P = 0.05  # the similarity ratio's control
Evidence = dict  # {job name: summary, "family": ..., "probes": {probe: [dev UAS per seed]}}


@dataclass(frozen=True)
class Claim:
    """One row: what the paper says, the rule with its threshold, the control, and the verdict."""

    claim: str
    paper: str
    rule: str
    control: str
    judge: Callable[[Evidence], str]
    seeds: str = "none: deterministic"

    def row(self, per_model: dict[str, Evidence]) -> dict:
        return {"claim": self.claim, "paper": self.paper, "rule (threshold)": self.rule, "control": self.control,
                "seeds": self.seeds, **{m: self.judge(e) for m, e in per_model.items()}}


def _verdict(ok: bool) -> str:
    return HOLDS if ok else FAILS


def _layers(values, keep) -> str:
    """1-based layers where ``keep`` holds, as a short list (``none`` when empty)."""
    picked = [i + 1 for i, v in enumerate(values) if keep(v)]
    return ", ".join(map(str, picked)) or "none"


# --- §3: the sink ------------------------------------------------------------------------------
def sep_sink(e: Evidence) -> str:
    """The end token ([SEP], </s>) takes over half the attention in some layer, single sentences."""
    s = e["surface"]
    if s.get("end_by_layer") is None:
        return f"{UNTESTED}: no end token"
    end = np.asarray(s["end_by_layer"])
    return (f"{_verdict(end.max() > SINK)}: at most {end.max():.2f} (layer {int(end.argmax()) + 1}/{len(end)}); over "
            f"{SINK} in layers {_layers(end, lambda v: v > SINK)}; uniform {s['uniform_share']:.2f}")


def sep_sink_pairs(e: Evidence) -> str:
    """The same on the paper's inputs, [CLS] A [SEP] B [SEP] (both separators together)."""
    s = e.get("segment_pairs")
    if not s or "sep_by_layer" not in s:
        return f"{UNTESTED}: no end token" if s else f"{UNTESTED}: not run"
    sep = np.asarray(s["sep_by_layer"])
    return (f"{_verdict(sep.max() > SINK)}: at most {sep.max():.2f} (layer {int(sep.argmax()) + 1}/{len(sep)}); over "
            f"{SINK} in layers {_layers(sep, lambda v: v > SINK)}")


def any_sink(e: Evidence) -> str:
    """Broader: some special token, or a model's first position, takes over half in some layer."""
    s = e["surface"]
    options = {"start token": s.get("start_by_layer"), "end token": s.get("end_by_layer"),
               "first position": s.get("first_by_layer")}
    best = max(((k, np.asarray(v)) for k, v in options.items() if v is not None), key=lambda kv: kv[1].max())
    name, share = best
    return (f"{_verdict(share.max() > SINK)}: {share.max():.2f} on the {name} in layer {int(share.argmax()) + 1}/"
            f"{len(share)}; uniform {s['uniform_share']:.2f}")


def sep_self(e: Evidence) -> str:
    """The end token's row attends to itself (over 90%), single sentences."""
    own = e["surface"].get("end_to_end_by_layer")
    if own is None:
        return f"{UNTESTED}: no end token"
    own = np.asarray(own)
    return f"{_verdict(own.max() > SEP_SELF)}: {own.min():.2f}-{own.max():.2f} by layer"


def sep_self_pairs(e: Evidence) -> str:
    """The same on two-segment inputs: [SEP] rows on [SEP] tokens."""
    s = e.get("segment_pairs")
    if not s or "sep_sep_by_layer" not in s:
        return f"{UNTESTED}: no end token" if s else f"{UNTESTED}: not run"
    own = np.asarray(s["sep_sep_by_layer"])
    return f"{_verdict(own.max() > SEP_SELF)}: {own.min():.2f}-{own.max():.2f} by layer"


def sink_layers(e: Evidence) -> tuple[str, np.ndarray, np.ndarray]:
    """The token most layers dump on (end, start or first position), its share per layer, and the
    layers where it is over half (the sink layers)."""
    s = e["surface"]
    options = {"end token": s.get("end_by_layer"), "start token": s.get("start_by_layer"),
               "first position": s.get("first_by_layer")}
    candidates = {k: np.asarray(v) for k, v in options.items() if v is not None}
    if "start token" in candidates or "end token" in candidates:
        candidates.pop("first position", None)  # the first position is a word: the specials come first
    name = max(candidates, key=lambda k: candidates[k].max())
    share = candidates[name]
    return name, share, np.flatnonzero(share > SINK)


def gradient_noop(e: Evidence) -> str:
    """Fig. 3: the loss barely depends on attention to the sink, against non-sink layers."""
    g = e.get("gradient") or {}
    if "ratio_by_layer" not in g:
        return f"{UNTESTED}: no trained LM head"
    _, _, sink = sink_layers(e)
    ratio = np.asarray(g["ratio_by_layer"])
    other = np.setdiff1d(np.arange(len(ratio)), sink)
    if not len(sink):
        return f"{UNTESTED}: no layer puts over {SINK} on one token"
    if not len(other):
        return f"{UNTESTED}: every layer is a sink layer, so there is no control"
    s, o = float(np.median(ratio[sink])), float(np.median(ratio[other]))
    return (f"{_verdict(s < 1 and s < o)}: median grad-to-{g.get('sink', 'sink')}/grad-to-others {s:.2f} in "
            f"{len(sink)} sink layers vs {o:.2f} in {len(other)} others")


def norm_small(e: Evidence) -> str:
    """Kobayashi et al.: in the sink layers, the sink's share of ‖αf‖ is below its share of α."""
    if "surface-norm" not in e:
        return f"{UNTESTED}: norm-weighted maps not extracted"
    name, share, layers = sink_layers(e)
    if not len(layers):
        return f"{UNTESTED}: no layer puts over {SINK} on one token"
    key = {"end token": "end_by_layer", "start token": "start_by_layer", "first position": "first_by_layer"}[name]
    norm = np.asarray(e["surface-norm"][key])[layers]
    raw = share[layers]
    return (f"{_verdict(norm.mean() < raw.mean())}: {name} {raw.mean():.2f} of the weights, {norm.mean():.2f} of the "
            f"norms (mean of {len(layers)} sink layers)")


# --- §4-§6 -------------------------------------------------------------------------------------
def syntax_all(e: Evidence) -> str:
    """Table 1: the best single head beats the best fixed offset on all words."""
    rows = e["syntax_heads"]["rows"]
    a = rows.get("All")
    if not a:
        return f"{UNTESTED}: no parsed words"
    wins = sum(v["accuracy"] > v["baseline_accuracy"] for k, v in rows.items() if k != "All")
    total = sum(1 for k in rows if k != "All")
    return (f"{_verdict(a['accuracy'] > a['baseline_accuracy'])}: All {a['accuracy']} ({a['head']}) vs "
            f"{a['baseline_accuracy']} (offset {a['baseline_offset']:+d}); {wins} of {total} relations")


def syntax_every(e: Evidence) -> str:
    """Broader: a head beats the offsets on every relation the table shows."""
    rows = {k: v for k, v in e["syntax_heads"]["rows"].items() if k != "All"}
    losers = [k for k, v in rows.items() if v["accuracy"] <= v["baseline_accuracy"]]
    return f"{_verdict(not losers)}: " + (f"not for {', '.join(losers)}" if losers else f"all {len(rows)} relations")


def _coref(e: Evidence, reading: str) -> str:
    c = e["coref_heads"]
    best, near = 100 * c["best_accuracy"], 100 * c["nearest_accuracy"]
    same = 100 * c.get(f"same_head_accuracy_{reading}", c["same_head_accuracy"] if reading == "none" else np.nan)
    if np.isnan(same):
        return f"{UNTESTED}: the run predates the {reading} reading"
    return f"{_verdict(best > max(near, same))}: {c['best_head']} {best:.1f} vs nearest {near:.1f}, same head word {same:.1f}"


def coref_strict(e: Evidence) -> str:
    return _coref(e, "none")


def coref_fallback(e: Evidence) -> str:
    return _coref(e, "nearest")


def similarity(e: Evidence) -> str:
    s = e["head_similarity"]
    x, p = s["different_over_same_layer_distance"], s.get("layer_permutation_p")
    if x is None:
        return f"{UNTESTED}: one map per layer"
    if p is None:
        return f"{UNTESTED}: the run predates the permutation control"
    return f"{_verdict(x > 1 and p < PERMUTATION_P)}: different/same-layer distance {x:.2f}, permutation p {p:.3f}"


def similarity_cell(s: dict) -> str:
    """The ratio with its permutation p, or why there is none."""
    if s.get("different_over_same_layer_distance") is None:
        return "n/a (one map per layer)"
    return f"{s['different_over_same_layer_distance']:.2f} ({s.get('layer_permutation_p', float('nan')):.3f})"


def quantity_row(model: str, quantity: str, s: dict, uas: list[float]) -> dict:
    """The findings that depend on the measure of context mixing, for one model and quantity: the
    sink's largest share, Table 1's All row, the similarity ratio, the Attn probe (``uas``: dev UAS
    per seed). ``s``: the ``surface``, ``syntax_heads`` and ``head_similarity`` summaries."""
    name, share, _ = sink_layers({"surface": s["surface"]})
    a = s["syntax_heads"]["rows"].get("All", {})
    return {"model": model, "quantity": quantity,
            "largest sink share (layer)": f"{share.max():.2f} on the {name} ({int(share.argmax()) + 1})",
            "Table 1 All: best (acc) vs offset": f"{a.get('head')} ({a.get('accuracy')}) vs {a.get('baseline_accuracy')}",
            "different/same-layer distance (p)": similarity_cell(s["head_similarity"]),
            "Attn dev UAS": mean_std(uas)}


# --- Table 3 -------------------------------------------------------------------------------------
def _probe_pair(e: Evidence, a: str, b: str, na: str, nb: str) -> str:
    got = e.get("probes", {})
    if not got.get(a) or not got.get(b):
        missing = [n for p, n in ((a, na), (b, nb)) if not got.get(p)]
        return f"{UNTESTED}: no {' and no '.join(missing)} runs"
    ma, mb = 100 * np.mean(got[a]), 100 * np.mean(got[b])
    spread = 100 * float(np.hypot(sample_std(got[a]), sample_std(got[b])))
    note = "; within the seed spread" if abs(ma - mb) <= spread else ""
    return f"{_verdict(ma > mb)}: {na} {mean_std(got[a])} vs {nb} {mean_std(got[b])} dev UAS{note}"


def attn_glove_beats_distances(e: Evidence) -> str:
    return _probe_pair(e, "attn_plus_glove", "distances_plus_glove", "Attn + GloVe", "Distances + GloVe")


def attn_beats_distances(e: Evidence) -> str:
    return _probe_pair(e, "attn_only", "distances_plus_glove", "Attn", "Distances + GloVe")


def attn_glove_beats_random(e: Evidence) -> str:
    return _probe_pair(e, "attn_plus_glove", "random_init_attn_plus_glove", "Attn + GloVe", "random-init")


PROBE_SEEDS = "each cell's n: mean ± sample std over seeds"
CLAIMS = (
    Claim("Most attention in some layers goes to [SEP] (§3), single sentences",
          "over half on [SEP] in layers 6-10 of BERT-base", f"end token's mean share > {SINK} in some layer",
          "uniform share (1/T)", sep_sink),
    Claim("The same on the paper's inputs, [CLS] A [SEP] B [SEP]", "as above",
          f"both separators' share > {SINK} in some layer", "uniform share (1/T)", sep_sink_pairs),
    Claim("Broader: some special token or the first position is a sink", "not in the paper",
          f"the largest start/end/first-position share > {SINK} in some layer", "uniform share (1/T)", any_sink),
    Claim("The end token's row attends to itself (§3), single sentences", "[SEP] rows put over 90% on [SEP]",
          f"end row's share on itself > {SEP_SELF} in some layer", "none", sep_self),
    Claim("The same on two-segment inputs", "as above", f"[SEP] rows' share on [SEP] > {SEP_SELF} in some layer",
          "none", sep_self_pairs),
    Claim("Attention to the sink is a no-op: the loss barely depends on it (Fig. 3)",
          "MLM gradient through [SEP] very small from layer 5 on",
          "median |dL/dα| to the sink / to other tokens < 1 in the sink layers, and below the non-sink layers'",
          f"non-sink layers (sink: share > {SINK})", gradient_noop),
    Claim("The sink's large attention carries small norms (Kobayashi et al. 2020)",
          "not in the paper; Kobayashi et al.: BERT's [CLS]/[SEP] have small ‖αf‖",
          "sink's share of ‖αf‖ < its share of α, mean over the sink layers", "its share of the weights α",
          norm_small),
    Claim("Single heads track syntax better than fixed offsets (Table 1)", "All: 34.5 (7-6) vs 26.3 (+1)",
          "the All row's best head > the best offset (-3..3)", "fixed-offset baselines", syntax_all),
    Claim("Broader: on every relation of Table 1", "most relations, not nn (70.4 vs 70.2)",
          "best head > best offset for every relation shown", "fixed-offset baselines", syntax_every),
    Claim("A head finds coreferent antecedents (Table 2), strict same-head-word baseline",
          "head 5-4: 65 vs nearest 27, same head word 52",
          "best head > both baselines; no earlier mention with the head word counts wrong",
          "nearest mention; nearest with the same head word", coref_strict),
    Claim("The same with the fallback reading of the same-head-word baseline", "as above",
          "best head > both baselines; no earlier mention with the head word falls back to the nearest",
          "nearest mention; same head word, else nearest", coref_fallback),
    Claim("Heads of one layer behave alike (§6)", "same-layer heads cluster in the MDS plot",
          f"different/same-layer JS distance > 1 and permutation p < {PERMUTATION_P}",
          "1,000 random assignments of heads to layers", similarity),
    Claim("Attention + GloVe parses better than distances + GloVe (Table 3)", "77 vs 58 UAS",
          "mean dev UAS over seeds higher", "Distances + GloVe", attn_glove_beats_distances, PROBE_SEEDS),
    Claim("Attention alone beats distances + GloVe (Table 3)", "61 vs 58 UAS",
          "mean dev UAS over seeds higher", "Distances + GloVe", attn_beats_distances, PROBE_SEEDS),
    Claim("Trained attention beats a random encoder's (Table 3)", "77 vs 30 UAS",
          "mean dev UAS over seeds higher", "random-init Attn + GloVe (a new encoder per seed)",
          attn_glove_beats_random, PROBE_SEEDS),
)
