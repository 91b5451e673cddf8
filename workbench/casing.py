"""A word-case channel for taggers built on uncased models.

An uncased tokenizer lowercases "Paris" and "paris" to the same ids, yet capitalisation is
one of the strongest cues for named entities. The channel gives each sub-token the shape of
its word through BERT-style ``token_type_ids`` (0: lower case or no letters, 1: Capitalised,
2: ALL CAPS), which costs no new architecture: the model's token-type embedding table grows
from 2 rows to 3 and is trained while the word embeddings stay frozen. Measured on
CoNLL-2003 with the packaged (uncased) MiniLM, one seed: entity F1 0.874 without, 0.892
with (BENCHMARKS.md).

The trained model's ``config.json`` carries ``workbench_case_feature: true`` so that whoever
loads it knows to pass the same ``token_type_ids`` (:func:`word_case_types`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workbench.errors import DataError

#: Values of :attr:`workbench.config.FineTuneConfig.case_feature`.
CASE_FEATURES = ("auto", "on", "off")
#: Token types: lower case or no letters, Capitalised, ALL CAPS (two or more letters).
LOWER, CAPITALISED, ALL_CAPS = 0, 1, 2
N_CASE_TYPES = 3
#: The attribute a trained model's config carries when it was trained with the channel.
CONFIG_FLAG = "workbench_case_feature"


def word_shape(word: str) -> int:
    """The case type of one word: :data:`ALL_CAPS`, :data:`CAPITALISED` or :data:`LOWER`."""
    letters = [c for c in word if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return ALL_CAPS
    return CAPITALISED if letters and letters[0].isupper() else LOWER


def word_case_types(words: Sequence[str], word_ids: Sequence[int | None]) -> list[int]:
    """``token_type_ids`` for one tokenised sentence: each sub-token gets its word's shape, specials 0.

    Parameters
    ----------
    words : sequence of str
        ``(n_words,)`` the sentence's words as given (cased).
    word_ids : sequence of int or None
        ``(n_subtokens,)`` the tokenizer's word index per sub-token (None for specials).
    """
    shapes = [word_shape(w) for w in words]
    return [LOWER if w is None else shapes[w] for w in word_ids]


def lowercases(tokenizer: Any) -> bool:
    """Whether the tokenizer maps ``Paris`` and ``paris`` to the same ids (an uncased model)."""
    cased = tokenizer("Paris", add_special_tokens=False)["input_ids"]
    return bool(cased == tokenizer("paris", add_special_tokens=False)["input_ids"])


def _type_embeddings(model: Any) -> Any:
    base = getattr(model, model.base_model_prefix, model)
    return getattr(getattr(base, "embeddings", None), "token_type_embeddings", None)


def use_case_feature(setting: str, *, task: str, tokenizer: Any, model: Any) -> bool:
    """Resolve a validated ``case_feature`` (:class:`~workbench.config.FineTuneConfig` checks the value and
    that ``on`` is for token classification): ``auto`` is on for a tagger whose tokenizer lowercases and
    whose model has token-type embeddings.

    Raises
    ------
    DataError
        ``on`` for a model without token-type embeddings.
    """
    if setting == "off" or task != "token-classification":
        return False
    has_types = _type_embeddings(model) is not None
    if setting == "on":
        if not has_types:
            raise DataError(f"FineTuneConfig.case_feature='on' needs a model with token-type embeddings "
                            f"(BERT-like); {type(model).__name__} has none: use 'auto' or 'off'")
        return True
    return has_types and lowercases(tokenizer)


def add_case_channel(model: Any) -> None:
    """Grow the token-type table to :data:`N_CASE_TYPES` rows (new rows start as copies of type 1, the
    pretrained "another segment" vector), make it trainable, and flag the model's config."""
    import torch

    table = _type_embeddings(model)
    if table is None:
        raise DataError(f"{type(model).__name__} has no token-type embeddings for the case channel")
    rows, dim = table.weight.shape
    if rows < N_CASE_TYPES:
        grown = torch.nn.Embedding(N_CASE_TYPES, dim).to(table.weight.device, table.weight.dtype)
        with torch.no_grad():
            grown.weight[:rows] = table.weight
            grown.weight[rows:] = table.weight[min(1, rows - 1)]
        base = getattr(model, model.base_model_prefix, model)
        base.embeddings.token_type_embeddings = grown
        table = grown
        model.config.type_vocab_size = N_CASE_TYPES
    for p in table.parameters():
        p.requires_grad = True
    setattr(model.config, CONFIG_FLAG, True)
