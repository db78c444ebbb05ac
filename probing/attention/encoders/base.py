"""What an encoder declares to the rest of the pipeline, and how any of them is loaded.

A spec is cheap: nothing is loaded until :meth:`EncoderSpec.load`, so a cache hit never touches
the weights. Subclasses only say where the weights come from (:meth:`source`) and what
identifies them (:meth:`identity`, part of every cache key).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

from probing.attention.layout import Layout
from probing.errors import ProbingError

log = logging.getLogger(__name__)

# "vision" is reserved: the interface is open for it, but no vision weights are installable here
FAMILIES = ("encoder", "causal_lm", "vision")


class EncoderUnavailableError(ProbingError, RuntimeError):
    """A model's package, files or hub access is missing, or its weights fail their checksum."""


@dataclass(kw_only=True)
class EncoderSpec:
    """An encoder and what the pipeline needs to know about it.

    ``family``: "encoder" (bidirectional), "causal_lm" (left-to-right), or later "vision".
    ``objective``: one line on how the weights were trained; ``description``: one line on what
    they are. Both feed the caveat printed beside every number. ``lm_head``: trained LM-head
    weights exist (the gradient test of Fig. 3 needs them). ``add_bos``: force a
    beginning-of-sequence token on or off (``None``: the tokenizer's own template).
    ``random_init`` keeps only the pretrained embeddings and re-draws the rest from ``seed``.
    """

    name: str
    family: str
    objective: str
    description: str
    lm_head: bool
    add_bos: bool | None
    random_init: bool
    seed: int

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"model {self.name}: family must be one of {FAMILIES}, not {self.family!r}")
        if self.family == "vision":
            raise NotImplementedError(f"model {self.name}: vision encoders are not supported yet")

    # --- where the weights are ---------------------------------------------------------------
    def source(self) -> str:
        """A local directory or a hub name for ``from_pretrained``."""
        raise NotImplementedError

    def identity(self) -> dict:
        """Everything about the weights and their input that changes the attention."""
        ident = {"name": self.name, "random_init": self.random_init,
                 "seed": self.seed if self.random_init else None}
        if self.add_bos is not None:  # absent when unset, so older cache keys stay valid
            ident["add_bos"] = self.add_bos
        return ident

    def pretrained_kwargs(self) -> dict:
        return {}

    # --- loading -------------------------------------------------------------------------------
    def load_tokenizer(self):
        return AutoTokenizer.from_pretrained(self.source(), **self.pretrained_kwargs())

    def model_class(self, lm_head: bool):
        if self.family == "causal_lm":
            return AutoModelForCausalLM if lm_head else AutoModel
        return AutoModelForMaskedLM if lm_head else AutoModel

    def load(self, device: str | torch.device = "cpu", lm_head: bool = False):
        """``(tokenizer, model)``: eager attention (SDPA returns no weights), eval mode.

        ``lm_head=True`` loads the *ForMaskedLM / *ForCausalLM class (for the gradient test);
        extraction uses the bare model, which computes no vocabulary logits.
        """
        tokenizer = self.load_tokenizer()
        auto = self.model_class(lm_head)
        model = auto.from_pretrained(self.source(), attn_implementation="eager", **self.pretrained_kwargs())
        if self.random_init:
            model = reinit_except_embeddings(model, auto, self.seed)
        return tokenizer, model.to(device).eval()

    # --- what it is ------------------------------------------------------------------------------
    def layout(self, tokenizer=None) -> Layout:
        from probing.attention.pieces import piece_layout

        return piece_layout(tokenizer or self.load_tokenizer(), self.add_bos)

    def caveat(self) -> str:
        """One sentence naming what the numbers come from, from the declared metadata."""
        what = f"`{self.name}`" + (f" ({self.description})" if self.description else "")
        parts = [f"Model {what}"]
        if self.objective:
            parts.append(f"trained as {self.objective}")
        if self.random_init:
            parts.append(f"here with random weights (seed {self.seed}) except the pretrained embeddings")
        if self.family == "causal_lm":
            parts.append("causal attention: a word attends only to itself and earlier words")
        return "; ".join(parts) + "."


def reinit_except_embeddings(model, auto, seed: int):
    # the paper's random-init baseline keeps the pretrained embeddings, so only what attention
    # learned is taken away
    torch.manual_seed(seed)
    fresh = auto.from_config(model.config, attn_implementation="eager")
    keep = {k: v for k, v in model.state_dict().items() if ".embeddings." in f".{k}" or "embed_tokens" in k}
    result = fresh.load_state_dict(keep, strict=False)
    if not keep or result.unexpected_keys:
        raise RuntimeError(f"random_init: found no embedding weights to keep ({list(keep)[:3]})")
    return fresh


def model_caveat(encoder) -> str:
    """The sentence on the model beside every number: the encoder's own :meth:`EncoderSpec.caveat`,
    or, for an object that declares nothing (a user's bare encoder), its name."""
    own = getattr(encoder, "caveat", None)
    if callable(own):
        return own().rstrip(".") + "."
    name = getattr(encoder, "name", type(encoder).__name__)
    return f"Model `{name}`" + (" with random weights" if getattr(encoder, "random_init", False) else "") + "."
