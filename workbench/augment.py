"""Training-set augmentation: word-level noise (insert / delete / swap) and minority-class upsampling.

Everything here is seeded and touches only rows of the training split, after the validation rows
have been held out, so no augmented text (or a near-copy of an evaluation text) ever reaches an
evaluation split. Augmented rows get ids ``<item_id>#aug<k>`` so they are easy to spot in a run's data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.config import AugmentConfig
from workbench.errors import DataError


def perturb_words(words: Sequence[str], *, insert_rate: float = 0.0, delete_rate: float = 0.0,
                  swap_rate: float = 0.0, rng: np.random.Generator) -> list[str]:
    """One noisy copy of a word sequence (EDA-style, without a thesaurus).

    Each word is deleted with probability ``delete_rate`` (at least one word stays); then
    ``round(insert_rate * n)`` words of the sentence itself are inserted at random places; then
    ``round(swap_rate * n)`` random pairs are swapped.
    """
    out = [w for w in words if rng.random() >= delete_rate] or [words[int(rng.integers(len(words)))]] \
        if words else []
    n = len(out)
    for _ in range(int(round(insert_rate * n))):
        out.insert(int(rng.integers(len(out) + 1)), out[int(rng.integers(len(out)))])
    for _ in range(int(round(swap_rate * n))):
        if len(out) < 2:
            break
        i, j = rng.choice(len(out), size=2, replace=False)
        out[i], out[j] = out[j], out[i]
    return out


def augment_frame(frame: pd.DataFrame, config: AugmentConfig, *, split: str = "train",
                  task: str = "text-classification", seed: int = 0) -> pd.DataFrame:
    """Add augmented copies of the ``split`` rows of a run's data table.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``item_id, text (or tokens), label, split``, evaluation rows already held out.
    config : AugmentConfig
    task : {"text-classification", "token-classification"}
        Word-level noise would break the alignment of tokens and tags, so token classification
        allows upsampling only.

    Returns
    -------
    pandas.DataFrame
        ``frame`` followed by the new rows (split ``split``).
    """
    noisy = config.insert_rate or config.delete_rate or config.swap_rate
    if task == "token-classification" and noisy:
        raise DataError("word-level augmentation (insert/delete/swap) would misalign tokens and tags; for token "
                        "classification use AugmentConfig(upsample_to=...) only")
    rng = np.random.default_rng(seed)
    train = frame[frame["split"] == split]
    if train.empty:
        return frame
    sources: list[Any] = []
    for _ in range(config.copies):
        sources.extend(train.index)
    if config.upsample_to is not None and task == "text-classification":
        counts = train["label"].value_counts()
        target = int(np.ceil(config.upsample_to * counts.max()))
        for label, n in counts.items():
            if n < target:
                members = train.index[train["label"] == label].to_numpy()
                sources.extend(rng.choice(members, size=target - n, replace=True).tolist())
    elif config.upsample_to is not None:
        # A sentence's "class" for upsampling is the rarest entity type it contains.
        types = [sorted({t[2:] for t in tags if t != "O"}) for tags in train["label"]]
        freq = pd.Series([t for ts in types for t in ts]).value_counts()
        if len(freq):
            target = int(np.ceil(config.upsample_to * freq.max()))
            for kind, n in freq.items():
                if n < target:
                    members = train.index[[kind in ts for ts in types]].to_numpy()
                    sources.extend(rng.choice(members, size=target - n, replace=True).tolist())
    if not sources:
        return frame
    new = frame.loc[sources].copy()
    copy_no = pd.Series(1, index=range(len(new))).groupby(new["item_id"].to_numpy()).cumsum().to_numpy()
    new["item_id"] = [f"{i}#aug{k}" for i, k in zip(new["item_id"], copy_no, strict=True)]
    new["split"] = split
    if noisy:
        new["text"] = [" ".join(perturb_words(str(t).split(), insert_rate=config.insert_rate,
                                              delete_rate=config.delete_rate, swap_rate=config.swap_rate, rng=rng))
                       for t in new["text"]]
    return pd.concat([frame, new], ignore_index=True)
