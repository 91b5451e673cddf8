"""Batch prediction with a finished run's model: class probabilities per text, tag probabilities per word.

:func:`load_run` loads the model a run saved (``RUN_DIR/model``) with what it was trained with (the mean
pooler of a text classifier, the word-case channel of a tagger), so a retrained model can re-score a whole
store or a new file. The launcher's ``Run.predict`` and ``workbench predict`` both come here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.bio import decode_tags
from workbench.casing import word_case_types
from workbench.config import FineTuneConfig
from workbench.devices import configure_cuda, default_device, to_device
from workbench.embed import choose_precision
from workbench.errors import DataError, WorkbenchError, require
from workbench.models import choose_attention, quiet_loading
from workbench.normalize import text_list
from workbench.runs import open_run
from workbench.store import LabelStore
from workbench.train import pad_batch, word_probs

__all__ = ["TrainedModel", "load_run", "read_items_to_predict"]


def _names_a_data_file(data: Any) -> bool:
    """Whether ``data`` given to predict is a dataset file rather than one text: a path object, or a string of one
    word ending in a data file's suffix (``new.csv``, ``dev.jsonl.gz``): read as a text it would be scored as one."""
    from workbench.readers import COMPRESSIONS, SUFFIXES

    if isinstance(data, os.PathLike):
        return True
    if not isinstance(data, str) or not data or any(ch.isspace() for ch in data):
        return False
    name = data.lower().removesuffix("/")
    name = next((name.removesuffix(c) for c in COMPRESSIONS if name.endswith(c)), name)
    return name.endswith((*SUFFIXES, ".txt")) or Path(data).expanduser().is_dir()


def read_items_to_predict(path: str | os.PathLike[str], *, task: str, classes: Sequence[str],
                          **options: Any) -> pd.DataFrame:
    """A dataset file to predict, read by :func:`workbench.data.load_dataset` with ``options``, labels optional: a file
    with no labels is read as a pool of the run's ``classes`` (a file's own labels may include others, which a score
    against them counts as wrong)."""
    from workbench.data import LABEL_COLUMNS, TAG_COLUMNS, find_column, load_dataset
    from workbench.readers import read_source

    raw, _ = read_source(Path(path).expanduser(), encoding=options.get("encoding", "utf-8"), sheet=options.get("sheet"))
    names = TAG_COLUMNS if task == "token-classification" else LABEL_COLUMNS
    # a column of nothing but blanks (a CoNLL file of words alone has an empty tags column) holds no labels
    found = find_column(raw.columns, names)
    has_labels = options.get("label_column") is not None or (found is not None and raw[found].notna().any())
    options = {**options, "task": task, "allow_missing_labels": True,
               "labels": options.get("labels") or (None if has_labels else list(classes))}
    return load_dataset(path, **options)  # by path again: its errors name the file's lines


class TrainedModel:
    """A finished run's model, loaded for batch prediction (a text classifier or a tagger)."""

    def __init__(self, run_dir: Path, *, device: str | None = None, precision: str | None = None) -> None:
        transformers = require("transformers", extra="train", purpose="predicting with a trained run")
        self.torch: Any = require("torch", extra="train", purpose="predicting with a trained run")
        from workbench import casing, pooling  # module names: both define CONFIG_FLAG

        run_dir = open_run(run_dir).path  # a missing or wrong folder is named as such, not as an unfinished run
        model_dir = run_dir / "model"
        if not (model_dir / "config.json").exists():
            raise WorkbenchError(f"run {run_dir.name} has no trained model yet (no model/config.json); wait for it "
                                 "to finish")
        self.labels = json.loads((run_dir / "labels.json").read_text())
        self.config = FineTuneConfig.from_json(run_dir / "config.json")
        self.task = self.config.task
        # as the worker saved it: a tagger's byte-level tokenizer keeps the word-start prefix it trained with
        # (models.load_tokenizer), and one saved without it reads words as its run did
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir))  # type: ignore[attr-defined]
        # the GPU when one is visible, else the CPU (eager attention there, see choose_attention)
        self.device = device or default_device()
        configure_cuda(self.device)
        # the run's own precision on this device by default, so a reloaded model scores as the worker did (bf16
        # autocast read 1.7x the texts/s of fp32 on this CPU, 300 -> 516)
        self.precision = choose_precision(precision or self.config.precision, self.device)
        saved = json.loads((model_dir / "config.json").read_text())
        # a tagger trained with the word-case channel reads each word's case as its token type (workbench.casing)
        self.case_feature = bool(saved.get(casing.CONFIG_FLAG))
        # a mean-pooled model was saved without pooler weights on purpose (workbench.pooling): no load report then
        mean_pooled = saved.get(pooling.CONFIG_FLAG) == "mean"
        auto = (transformers.AutoModelForTokenClassification  # type: ignore[attr-defined]
                if self.task == "token-classification" else transformers.AutoModelForSequenceClassification)  # type: ignore[attr-defined]
        with quiet_loading(report=not mean_pooled):
            model = auto.from_pretrained(str(model_dir),
                                         attn_implementation=choose_attention(self.config.attention, self.device))
        if self.task != "token-classification":
            model = pooling.apply_pooling(model)  # the mean pooler, when the run trained with it
        self.model = model.to(self.device).eval()
        self.run_dir = run_dir

    def __repr__(self) -> str:
        what = "tags" if self.task == "token-classification" else "classes"
        return (f"TrainedModel({str(self.run_dir)!r}, {len(self.labels)} {what}, device={self.device!r}, "
                f"precision={self.precision!r}, max_length={self.config.max_length})")

    def predict(self, data: Sequence[Any] | pd.DataFrame | LabelStore | str | os.PathLike[str], *,
                batch_size: int = 64, progress: bool = True) -> pd.DataFrame:
        """Score items with the trained model.

        Parameters
        ----------
        data : sequence, DataFrame, LabelStore or a dataset file's path
            A text classifier takes texts (a DataFrame: its ``text`` column); a tagger takes sentences as lists
            of words (a DataFrame: its ``tokens`` column). A DataFrame's ``item_id`` column, or a store's ids,
            are kept. A path (a ``Path``, or a string like ``"new.csv"``: one word with a data file's suffix) is
            read as ``workbench predict`` reads it, with the ids of :func:`workbench.data.load_dataset`.

        Returns
        -------
        pandas.DataFrame
            One row per item, in input order, ``item_id`` first when known. A text classifier: ``pred`` and
            ``prob_<class>`` per class. A tagger: ``pred_tags`` (one tag per word) and ``token_probs``
            (``(n_words, n_tags)`` as nested lists, columns in :attr:`labels` order); words past
            ``max_length`` sub-tokens get a uniform guess.
        """
        tagger = self.task == "token-classification"
        ids, items = self._items(data, column="tokens" if tagger else "text")
        if tagger:
            sentences = _sentence_list(items)
            enc = self.tokenizer(sentences, is_split_into_words=True, truncation=True,
                                 max_length=self.config.max_length) if sentences else None
            encoded = enc["input_ids"] if enc is not None else []
            word_ids = [enc.word_ids(i) for i in range(len(sentences))] if enc is not None else []
        else:
            texts = text_list(items, purpose="to predict")
            encoded = (self.tokenizer(texts, truncation=True, max_length=self.config.max_length)["input_ids"]
                       if texts else [])
        probs = self._forward(encoded, batch_size=batch_size, progress=progress,
                              types=[word_case_types(s, w) for s, w in zip(sentences, word_ids)]
                              if tagger and self.case_feature else None)
        if tagger:
            per_word = [word_probs(p, w, len(s)) for p, w, s in zip(probs, word_ids, sentences)]
            frame = pd.DataFrame({"pred_tags": [decode_tags(p, self.labels) for p in per_word],
                                  "token_probs": [p.astype(np.float32).tolist() for p in per_word]})
        else:
            stacked = np.stack(probs) if probs else np.zeros((0, len(self.labels)), dtype=np.float32)
            frame = pd.DataFrame({"pred": [self.labels[k] for k in stacked.argmax(1)]})
            for j, c in enumerate(self.labels):
                frame[f"prob_{c}"] = stacked[:, j]
        if ids is not None:
            frame.insert(0, "item_id", ids)
        return frame

    def _items(self, data: Any, *, column: str) -> tuple[list[str] | None, Any]:
        """Ids (None when not given) and the texts or sentences of ``data``."""
        if isinstance(data, LabelStore):
            if data.task != self.task:
                raise DataError(f"{data.url} holds {data.task} items; run {self.run_dir.name} does {self.task}")
            table = data.to_pandas()
            return table["item_id"].tolist(), table[column].tolist()
        if _names_a_data_file(data):
            table = read_items_to_predict(data, task=self.task, classes=self.labels)
            return table["item_id"].tolist(), table[column].tolist()
        if isinstance(data, pd.DataFrame):
            if column not in data.columns:
                raise DataError(f"the table to predict has no {column!r} column; its columns are "
                                f"{list(data.columns)}")
            ids = data["item_id"].tolist() if "item_id" in data.columns else None
            return ids, data[column].tolist()
        return None, data

    def _forward(self, encoded: Sequence[Sequence[int]], *, batch_size: int, progress: bool,
                 types: Sequence[Sequence[int]] | None) -> list[np.ndarray]:
        """Softmax outputs per item, longest first in batches (little padding): ``(n_classes,)`` for a text,
        ``(n_subtokens, n_tags)`` for a sentence."""
        torch = self.torch
        tqdm = require("tqdm.auto", extra="train", purpose="progress bars").tqdm  # type: ignore[attr-defined]
        order = np.argsort([-len(x) for x in encoded], kind="stable")
        out: list[np.ndarray] = [np.zeros(0)] * len(encoded)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        device_type = "cuda" if self.device.startswith("cuda") else "cpu"
        with torch.inference_mode(), torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
            for start in tqdm(range(0, len(order), batch_size), disable=not progress, desc="predicting"):
                idx = order[start:start + batch_size]
                batch = pad_batch([encoded[i] for i in idx], self.tokenizer.pad_token_id or 0,
                                  token_types=None if types is None else [types[i] for i in idx])
                logits = self.model(**to_device(batch, self.device)).logits.float()
                probs = torch.softmax(logits, -1).cpu().numpy()
                for row, i in enumerate(idx):
                    out[i] = probs[row, :len(encoded[i])] if probs.ndim == 3 else probs[row]
        return out


def _sentence_list(items: Any) -> list[list[str]]:
    """Sentences as lists of word strings, or a DataError naming the first that is not one."""
    if isinstance(items, str):
        raise DataError("a tagger takes sentences as lists of words, e.g. [['Paris', 'is', 'nice']], not a string; "
                        "split the text into words first: workbench.spans.split_words(text)")
    out = []
    for i, sentence in enumerate(items):
        words = sentence.tolist() if isinstance(sentence, np.ndarray) else sentence
        if isinstance(words, str) or not isinstance(words, (list, tuple)):
            raise DataError(f"sentence {i} to tag is a {type(sentence).__name__} ({str(sentence)[:60]!r}); a tagger "
                            "takes each sentence as a list of words (workbench.spans.split_words(text) cuts a text "
                            "into them)")
        bad = next((j for j, w in enumerate(words) if not isinstance(w, str) or not w), None)
        if bad is not None:
            raise DataError(f"sentence {i} to tag: word {bad} is {words[bad]!r}; every word must be a non-empty "
                            "string")
        out.append(list(words))
    return out


def load_run(run_dir: str | os.PathLike[str], *, device: str | None = None,
             precision: str | None = None) -> TrainedModel:
    """Load a finished run's model for :meth:`TrainedModel.predict`.

    Parameters
    ----------
    device : str, optional
        Default: the GPU if visible, else the CPU.
    precision : {"auto", "fp32", "bf16", "fp16"}, optional
        Default: the run's own (its config's, resolved for ``device``), so predictions match the run's.
    """
    return TrainedModel(Path(run_dir), device=device, precision=precision)
