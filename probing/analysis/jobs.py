"""Analysis jobs for ``analyze.py``: each reads the attention cache and writes tables (CSV,
markdown, JSON) and figures (PNG, HTML) into the run directory, logging them to W&B when a
logger is on. Every job returns a :class:`Section` that the report gathers."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

from probing.analysis import paper
from probing.analysis._common import head_name, to_markdown
from probing.analysis.coref import document_chunks
from probing.analysis.similarity import (
    behaviour_labels,
    head_distances,
    mds_embedding,
    plot_mds,
    same_layer_ratio,
)
from probing.analysis.surface import plot_entropy, plot_surface, surface_stats
from probing.analysis.syntax import UD_TO_SD, plot_relation_heatmap, relation_accuracies
from probing.analysis.view import draw_heads, draw_heatmap, write_attention_html
from probing.attention.encoders import EncoderSpec
from probing.attention.extract import (
    ExtractionSettings,
    attention_for,
    data_key,
    forward_attention,
    get_attention,
    resolve_device,
    tokenize,
)
from probing.attention.wordlevel import merge_batch, merge_matrices
from probing.data.corpus import Corpus
from probing.data.sentence import Sentence

log = logging.getLogger(__name__)


@dataclass
class Section:
    """What a job contributes to the report."""

    title: str
    markdown: str
    figures: list[Path] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


@dataclass
class Context:
    encoder: EncoderSpec
    corpus: Corpus
    extraction: ExtractionSettings
    cache_root: str
    out: Path
    wandb_run: Any = None

    def attention(self, split: str, corpus: Corpus | None = None):
        return get_attention(self.encoder, corpus or self.corpus, split, self.extraction, self.cache_root)

    def special_names(self) -> tuple[str, str]:
        tok = self.encoder.load_tokenizer()
        return tok.cls_token or tok.bos_token, tok.sep_token or tok.eos_token

    def caveat(self, corpus: Corpus | None = None) -> str:
        return (f"Model `{self.encoder.name}`{' (random init)' if self.encoder.random_init else ''} on "
                f"`{(corpus or self.corpus).name}`; the paper used {paper.PAPER_SETUP}. "
                "The bundled encoders are sentence-embedding fine-tunes, not MLM-pretrained BERT.")

    def table(self, name: str, rows: list[dict]) -> str:
        """Write ``name.csv`` and ``name.md``; log a W&B table. Returns the markdown."""
        self.out.mkdir(parents=True, exist_ok=True)
        if rows:
            with open(self.out / f"{name}.csv", "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        text = to_markdown(rows, digits=3, percent=False) if rows else "(no rows)"
        (self.out / f"{name}.md").write_text(text + "\n")
        if self.wandb_run is not None and rows:
            import wandb

            # W&B types a column by its first row: give it plain Python values (np.str_ is not str
            # to it), and allow the paper's columns to mix numbers with "" where the paper has none
            data = [[v.item() if isinstance(v, np.generic) else v for v in r.values()] for r in rows]
            self.wandb_run.log({name: wandb.Table(columns=list(rows[0]), data=data, allow_mixed_types=True)})
        return text

    def figure(self, path: Path) -> Path:
        if self.wandb_run is not None:
            import wandb

            self.wandb_run.log({path.stem: wandb.Image(str(path))})
        return path

    def json(self, name: str, obj: dict) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"{name}.json").write_text(json.dumps(obj, indent=1, default=_plain))
        if self.wandb_run is not None:
            self.wandb_run.summary.update({f"{name}/{k}": v for k, v in obj.items() if isinstance(v, (int, float, str))})


def _plain(x):
    return x.tolist() if isinstance(x, np.ndarray) else float(x)


def _sizes(cache) -> tuple[int, int, int]:
    return cache.num_layers, cache.num_heads, cache.num_maps


@dataclass
class SurfaceJob:
    """§3: attention to start/end tokens, punctuation, self, previous/next token; entropy."""

    split: str = "dev"
    max_sentences: int | None = None
    include_special_rows: bool = True

    def run(self, ctx: Context) -> Section:
        cache, sentences = ctx.attention(self.split)
        L, H, _ = _sizes(cache)
        stats = surface_stats(islice(cache.pairs(sentences), self.max_sentences), L, H, self.include_special_rows)
        start, end = ctx.special_names()
        keys = ["start", "end", "punct", "self", "prev", "next", "entropy", "sep_sep", "cls_entropy"]
        per_head = [{"head": head_name(l * H + h, H), "layer": l + 1, **{k: float(stats[k][l, h]) for k in keys}}
                    for l in range(L) for h in range(H)]
        ctx.table("surface_heads", per_head)
        per_layer = [{"layer": l + 1, f"to {start}": stats["start"][l].mean(), f"to {end}": stats["end"][l].mean(),
                      "to . ,": stats["punct"][l].mean(), "prev": stats["prev"][l].mean(),
                      "next": stats["next"][l].mean(), f"{end}->{end}": stats["sep_sep"][l].mean(),
                      "entropy": stats["entropy"][l].mean(), f"{start} entropy": stats["cls_entropy_layer"][l]}
                     for l in range(L)]
        text = ctx.table("surface_layers", per_layer)
        figs = [ctx.out / "surface_by_layer.png", ctx.out / "entropy.png"]
        plot_surface(stats, figs[0], start, end)
        plot_entropy(stats, figs[1], start)
        summary = {"sentences": int(stats["num_sentences"]), "rows": int(stats["num_rows"]),
                   "end_by_layer": stats["end"].mean(1), "start_by_layer": stats["start"].mean(1),
                   "uniform_entropy": float(stats["uniform_entropy"])}
        ctx.json("surface", summary)
        md = (f"{ctx.caveat()}\n\nPer-layer means over {stats['num_sentences']} sentences of `{self.split}` "
              f"({stats['num_rows']} token rows):\n\n{text}\n\nPaper: {paper.SURFACE_FINDINGS}")
        return Section("Surface statistics (§3)", md, [ctx.figure(f) for f in figs], summary)


@dataclass
class SyntaxJob:
    """§4, Table 1: best head per relation, both directions, against offset baselines."""

    split: str = "dev"
    min_count: int = 100
    label_names: str = "ud"  # or "sd": PAPER.md's SD names where UD has a twin
    head_dep_rule: str = "head_row"
    num_examples: int = 2

    def run(self, ctx: Context) -> Section:
        cache, sentences = ctx.attention(self.split)
        L, H, K = _sizes(cache)
        if self.label_names not in ("ud", "sd"):
            raise ValueError(f"analysis.label_names must be 'ud' or 'sd', not {self.label_names!r}")
        label_map = UD_TO_SD if self.label_names == "sd" else None
        res = relation_accuracies(cache.pairs(sentences), K, min_count=self.min_count, label_map=label_map,
                                  num_heads=H, head_dep_rule=self.head_dep_rule)
        rows = []
        for r in res.table:
            sd = r["relation"] if self.label_names == "sd" else paper.UD_BASE_TO_SD.get(r["relation"], r["relation"])
            p = paper.TABLE1.get(sd)
            rows.append({**r, "accuracy": round(100 * r["accuracy"], 1),
                         "baseline_accuracy": round(100 * r["baseline_accuracy"], 1),
                         "paper_head": p[0] if p else "", "paper_acc": p[1] if p else "",
                         "paper_baseline": f"{p[2]} ({p[3]:+d})" if p else ""})
        text = ctx.table("syntax_heads", rows)
        figs = [ctx.out / "syntax_heatmap.png"]
        plot_relation_heatmap(res, figs[0])
        figs += self._examples(ctx, cache, sentences, res.table, H)
        summary = {"relations": len(rows), "all_accuracy": rows[0]["accuracy"] if rows else None}
        ctx.json("syntax", summary)
        md = (f"{ctx.caveat()}\n\nRelations with at least {self.min_count} instances in `{self.split}`; accuracy "
              f"and baseline in %; heads `layer-head`, 1-indexed. Paper columns: WSJ-SD dev.\n\n{text}")
        return Section("Syntactic heads (§4, Table 1)", md, [ctx.figure(f) for f in figs], summary)

    def _examples(self, ctx, cache, sentences, table, H) -> list[Path]:
        # the best heads of the four most frequent relations; only "All" on a tiny corpus
        heads = list(dict.fromkeys(r["head"] for r in (table[1:5] or table[:1])))
        picks = [i for i in cache.kept if 8 <= len(sentences[i]) <= 16][: self.num_examples]
        paths = []
        for n, i in enumerate(picks):
            path = ctx.out / f"syntax_example_{n + 1}.png"
            draw_heads(cache.maps(i), sentences[i].words, heads, path, num_heads=H)
            paths.append(path)
        return paths


def join_chunk(chunk: list[Sentence]) -> Sentence:
    return Sentence(words=[w for s in chunk for w in s.words], sent_id=f"{chunk[0].sent_id}+{len(chunk) - 1}",
                    doc_id=chunk[0].doc_id)


@dataclass
class CorefJob:
    """§5, Table 2: antecedent selection accuracy of every head, over document chunks."""

    split: str = "dev"
    max_words: int = 256
    corpus: Corpus | None = None  # default: the run's data

    def run(self, ctx: Context) -> Section:
        corpus = self.corpus or ctx.corpus
        sentences, _ = corpus.read(self.split)
        if not any(m and "Entity" in m for s in sentences for m in (s.misc or [])):
            raise ValueError(f"{corpus.path(self.split)}: no Entity= coreference annotation in MISC; use data=ud_gum")
        chunks = list(document_chunks(sentences, self.max_words))
        units = [join_chunk(c) for c in chunks]
        key = {**data_key(corpus, self.split), "units": f"document chunks of at most {self.max_words} words"}
        cache = attention_for(ctx.encoder, units, key, ctx.extraction, ctx.cache_root,
                              f"{corpus.name}-{self.split}-docs{self.max_words}", str(corpus.path(self.split)))
        L, H, K = _sizes(cache)
        from probing.analysis.coref import coref_accuracies

        res = coref_accuracies(((cache.maps(i), chunks[i]) for i in cache.kept), K, num_heads=H)
        rows = [{k: (round(100 * v, 1) if isinstance(v, float) else v) for k, v in r.items()} for r in res.table]
        rows += [{"model": f"paper: {name}", **dict(zip(("All", "Pronoun", "Proper", "Nominal"), vals))}
                 for name, vals in paper.TABLE2.items()]
        text = ctx.table("coref_heads", rows)
        summary = {"chunks": len(chunks), "chunks_skipped": len(cache.skipped), "mentions_scored": int(res.counts[0]),
                   "best_head": res.best_head, "best_accuracy": float(res.head_accuracy[0].max())}
        ctx.json("coref", summary)
        md = (f"{ctx.caveat(corpus)}\n\nDocuments cut into chunks of whole sentences, at most {self.max_words} "
              f"words ({len(chunks)} chunks, {len(cache.skipped)} over the model's length skipped). A mention's head "
              "word is the first word of its span whose gold head lies outside the span. Accuracy in %; the paper's "
              f"rows are CoNLL-2012.\n\n{text}")
        return Section("Coreference heads (§5, Table 2)", md, [], summary)


@dataclass
class SimilarityJob:
    """§6: Jensen-Shannon distance between heads, embedded in 2-D with metric MDS."""

    split: str = "dev"
    max_sentences: int | None = 1000
    seed: int = 0

    def run(self, ctx: Context) -> Section:
        cache, sentences = ctx.attention(self.split)
        L, H, K = _sizes(cache)
        dist = head_distances(islice(cache.pairs(sentences), self.max_sentences), K)
        stats = surface_stats(islice(cache.pairs(sentences), self.max_sentences), L, H)
        emb = mds_embedding(dist, seed=self.seed)
        labels = behaviour_labels(stats)
        layers = np.repeat(np.arange(1, L + 1), H)
        np.save(ctx.out / "js_distances.npy", dist)
        fig = ctx.out / "head_similarity_mds.png"
        plot_mds(emb, labels, layers, fig)
        ratio = same_layer_ratio(dist, L, H)
        rows = [{"head": head_name(k, H), "layer": int(layers[k]), "behaviour": labels[k],
                 "x": float(emb[k, 0]), "y": float(emb[k, 1])} for k in range(K)]
        ctx.table("head_similarity", rows)
        counts = {b: labels.count(b) for b in sorted(set(labels))}
        summary = {"different_over_same_layer_distance": ratio, "behaviours": counts,
                   "sentences": min(len(cache), self.max_sentences or len(cache))}
        ctx.json("similarity", summary)
        md = (f"{ctx.caveat()}\n\nMean JS distance between heads of different layers over that within a layer: "
              f"**{ratio:.2f}** (above 1: same-layer heads sit closer, as the paper found). Behaviours: {counts}.")
        return Section("Head similarity (§6)", md, [ctx.figure(fig)], summary)


@dataclass
class AttentionViewJob:
    """Word-level attention of one sentence: PNG line drawings, heatmaps, one offline HTML viewer."""

    sentence: str = "The food is always fresh and hot - ready to eat !"
    heads: list[str] | None = None  # "layer-head"; default: the most prev-, next-, end- and self-attending heads
    mode: str = "mean"

    def maps(self, ctx: Context) -> tuple[np.ndarray, list[str], int, int]:
        device = resolve_device(ctx.extraction.device)
        tokenizer, model = ctx.encoder.load(device)
        words = self.sentence.split()
        tok = tokenize(tokenizer, [Sentence(words=words, sent_id="view")])
        with torch.inference_mode():
            attn = forward_attention(model, torch.tensor(tok.input_ids, device=device),
                                     torch.ones(1, len(tok.input_ids[0]), dtype=torch.long, device=device))
            F, S = merge_matrices(tok.token_of_piece, attn.shape[-1], len(words) + 2, self.mode)
            maps = merge_batch(attn.float(), F.to(device), S.to(device))[0].cpu().numpy()
        return maps, words, model.config.num_hidden_layers, model.config.num_attention_heads

    def run(self, ctx: Context) -> Section:
        maps, words, L, H = self.maps(ctx)
        heads = self.heads or self._pick(maps, H)
        start, end = ctx.special_names()
        figs = [ctx.out / "attention_heads.png"]
        draw_heads(maps, [start, *words, end], heads, figs[0], num_heads=H)
        for h in heads:
            figs.append(ctx.out / f"attention_heatmap_{h}.png")
            draw_heatmap(maps, [start, *words, end], h, figs[-1], num_heads=H)
        html = ctx.out / "attention_view.html"
        write_attention_html(maps, [start, *words, end], L, H, html)
        summary = {"sentence": self.sentence, "heads": heads, "html": html.name}
        ctx.json("attention_view", summary)
        md = (f"{ctx.caveat()}\n\n\"{self.sentence}\": heads {', '.join(heads)}. Browse every head offline in "
              f"`{html.name}`.")
        return Section("Attention view", md, [ctx.figure(f) for f in figs], summary)

    @staticmethod
    def _pick(maps: np.ndarray, H: int) -> list[str]:
        K, T, _ = maps.shape
        idx = np.arange(1, T - 1)
        scores = [maps[:, idx, idx - 1].mean(1), maps[:, idx, idx + 1].mean(1), maps[:, idx, T - 1].mean(1),
                  maps[:, idx, idx].mean(1)]
        return list(dict.fromkeys(head_name(int(np.argmax(s)), H) for s in scores))


@dataclass
class SepGradientJob:
    """Fig. 3: masked-LM loss gradient through attention to the end token vs other tokens, per layer."""

    split: str = "dev"
    max_sentences: int = 200
    mask_prob: float = 0.15
    seed: int = 0

    def run(self, ctx: Context) -> Section:
        from probing.analysis.gradient import NoMLMHeadError, plot_sep_gradient, sep_gradient

        if not ctx.encoder.provides_mlm_head:
            message = (f"model {ctx.encoder.name} has no masked-LM head (a sentence-embedding model), so the "
                       "[SEP] gradient of Fig. 3 cannot be computed for it; use a bert_* model from the hub. "
                       "No number was written.")
            log.warning(message)
            return Section("[SEP] gradient (Fig. 3)", message, [], {"skipped": message})
        spec = dataclasses.replace(ctx.encoder, mlm_head=True)
        device = resolve_device(ctx.extraction.device)
        tokenizer, model = spec.load(device)
        sentences, _ = ctx.corpus.read(self.split)
        try:
            res = sep_gradient(model, tokenizer, [s.words for s in sentences[: self.max_sentences]],
                               mask_prob=self.mask_prob, seed=self.seed, device=device)
        except NoMLMHeadError as e:
            return Section("[SEP] gradient (Fig. 3)", str(e), [], {"skipped": str(e)})
        start, end = ctx.special_names()
        fig = ctx.out / "sep_gradient.png"
        plot_sep_gradient(res, fig, end)
        rows = [{"layer": l + 1, f"|grad| to {end}": float(res["to_sep"][l]), "|grad| to others": float(res["to_other"][l])}
                for l in range(len(res["to_sep"]))]
        text = ctx.table("sep_gradient", rows)
        ctx.json("sep_gradient", {"sentences": res["num_sentences"]})
        md = f"{ctx.caveat()}\n\nMean gradient magnitude per layer over {res['num_sentences']} sentences:\n\n{text}"
        return Section("[SEP] gradient (Fig. 3)", md, [ctx.figure(fig)], {"layers": rows})


@dataclass
class ReportJob:
    """Runs the jobs above on one model and writes ``report.md`` and ``report.html``."""

    jobs: dict[str, Any] = field(default_factory=dict)

    def run(self, ctx: Context) -> Section:
        from probing.analysis.report import write_report

        sections = []
        for name, job in self.jobs.items():
            if job is None:
                continue
            log.info("report: running %s", name)
            sub = dataclasses.replace(ctx, out=ctx.out / name)
            sub.out.mkdir(parents=True, exist_ok=True)
            sections.append(job.run(sub))
        write_report(ctx, sections)
        return Section("Report", f"{len(sections)} sections", [], {s.title: s.summary for s in sections})
