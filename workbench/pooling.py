"""Mean pooling for sentence classifiers built on sentence-embedding models.

``AutoModelForSequenceClassification`` classifies BERT-like models from the ``[CLS]`` token
through the pretrained pooler (dense + tanh). A sentence-transformers model such as the
packaged all-MiniLM-L6-v2 was trained to be read by *averaging* its token vectors: its
``[CLS]`` vector and pooler never took part in that training. With ``pooling="mean"`` the
pooler is replaced by the masked mean of the last hidden states, the vector the model was
trained to produce, and the classifier reads that.

The replacement keeps the architecture HF knows how to save: the pooler has no weights,
and the saved ``config.json`` carries ``workbench_pooling: "mean"``, so
:func:`apply_pooling` restores it when the model is loaded again (our prediction path does).
Classifiers with no pooler to replace (RoBERTa, MPNet as in all-mpnet-base-v2, DistilBERT,
DeBERTa, ModernBERT) read the first token's vector; for them that vector becomes the mean.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.errors import DataError

#: Values of :attr:`workbench.config.FineTuneConfig.pooling`.
POOLINGS = ("auto", "mean", "cls")
#: The attribute a trained model's config carries when its pooler is the masked mean.
CONFIG_FLAG = "workbench_pooling"


def sentence_transformers_pooling(model_dir: str | Path) -> str | None:
    """``mean`` or ``cls`` as a sentence-transformers folder's pooling config says; None when it has none."""
    for config in sorted(Path(model_dir).glob("*_Pooling/config.json")):
        modes = json.loads(config.read_text())
        if modes.get("pooling_mode_mean_tokens"):
            return "mean"
        if modes.get("pooling_mode_cls_token"):
            return "cls"
    return None


def choose_pooling(setting: str, *, task: str, model_dir: str | Path | None) -> str:
    """Resolve a validated ``pooling`` (:class:`~workbench.config.FineTuneConfig` checks the value): ``auto``
    is ``mean`` for a text classifier on a model trained with mean pooling (a sentence-transformers folder
    saying so), else ``cls`` (the model's own pooler)."""
    if task != "text-classification":
        return "cls"  # taggers read every token; there is nothing to pool
    if setting != "auto":
        return setting
    found = sentence_transformers_pooling(model_dir) if model_dir is not None and Path(model_dir).is_dir() else None
    return "mean" if found == "mean" else "cls"


def apply_pooling(model: Any, pooling: str | None = None) -> Any:
    """Give a sequence classifier the masked-mean pooler (``pooling="mean"``, or when its config says so).

    Returns the model. The mask reaches the pooler through a pre-hook on the base model, which sees the
    ``attention_mask`` every forward call receives.
    """
    import torch

    pooling = pooling or getattr(model.config, CONFIG_FLAG, None) or "cls"
    if pooling != "mean":
        return model
    base = getattr(model, model.base_model_prefix, None)
    if base is None:
        raise DataError(f"{type(model).__name__} has no base model to pool; use pooling='cls'")
    if getattr(base, "pooler", None) is None:
        _mean_as_first_token(base)
        setattr(model.config, CONFIG_FLAG, "mean")
        return model
    if type(base.pooler).__name__ == "MeanPooler":
        return model
    pooler = mean_pooler()
    base.pooler = pooler

    def remember_mask(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        mask = kwargs.get("attention_mask")
        if mask is None and len(args) > 1:
            mask = args[1]
        if mask is None:
            ids = kwargs.get("input_ids", args[0] if args else None)
            mask = torch.ones(ids.shape[:2], device=ids.device) if ids is not None else None
        pooler.mask = mask

    base.register_forward_pre_hook(remember_mask, with_kwargs=True)
    setattr(model.config, CONFIG_FLAG, "mean")
    return model


def _mean_as_first_token(base: Any) -> None:
    """Make the first token's output vector the masked mean of all of them, for classifiers without a pooler
    to replace (RoBERTa, MPNet, DistilBERT, DeBERTa, ModernBERT): their heads read the first token's vector, so
    they then read the mean. Done by a forward hook on the base model; set once."""
    import torch

    if getattr(base, "_workbench_mean_hook", False):
        return

    def mean_first(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
        hidden = output[0]
        mask = kwargs.get("attention_mask")
        if mask is None and len(args) > 1:
            mask = args[1]
        if mask is None or tuple(mask.shape[:2]) != tuple(hidden.shape[:2]):
            mean = hidden.mean(dim=1)
        else:
            weights = mask.to(hidden.dtype).unsqueeze(-1)
            mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        pooled = torch.cat([mean.unsqueeze(1), hidden[:, 1:]], dim=1)
        if isinstance(output, tuple):
            return (pooled, *output[1:])
        output["last_hidden_state"] = pooled
        return output

    base.register_forward_hook(mean_first, with_kwargs=True)
    base._workbench_mean_hook = True


def mean_pooler() -> Any:
    """A weightless ``torch.nn.Module``: the masked mean of ``hidden (batch, seq, dim)`` -> ``(batch, dim)`` over
    the tokens its ``mask (batch, seq)`` keeps (set before each forward call by :func:`apply_pooling`'s hook)."""
    import torch

    class MeanPooler(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mask: Any = None

        def forward(self, hidden: Any) -> Any:
            mask = self.mask
            if mask is None or tuple(mask.shape[:2]) != tuple(hidden.shape[:2]):
                return hidden.mean(dim=1)
            weights = mask.to(hidden.dtype).unsqueeze(-1)
            return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    return MeanPooler()
