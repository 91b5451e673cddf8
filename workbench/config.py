"""FineTuneConfig: everything a fine-tune needs to know, as a dataclass that round-trips to JSON."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from workbench.casing import CASE_FEATURES
from workbench.devices import DEVICES
from workbench.embed import PRECISIONS
from workbench.errors import DataError, near_misses
from workbench.models import ATTENTIONS
from workbench.pooling import POOLINGS

TASKS = ("text-classification", "token-classification")
#: What evaluation computes per task (see ``workbench.train``), so what early stopping can watch.
EARLY_STOPPING_METRICS = {"text-classification": ("loss", "accuracy", "f1_macro", "f1_weighted"),
                          "token-classification": ("loss", "accuracy", "f1_micro", "f1_macro")}
CLASS_WEIGHTS = ("none", "balanced")


@dataclass
class LoraConfig:
    """Low-rank adapters (via ``peft``) instead of training every weight."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    #: The layers given adapters: ``"auto"`` is the attention's query and value projections under whatever
    #: names the architecture gives them (``query``/``value`` in BERT, ``q_lin``/``v_lin`` in DistilBERT,
    #: ``Wqkv`` in ModernBERT; :func:`workbench.train.lora_targets`), or a list of layer names.
    target_modules: list[str] | str = "auto"

    def __post_init__(self) -> None:
        _coerce_numbers(self)
        _coerce_flags(self)
        if isinstance(self.target_modules, str) and self.target_modules != "auto":
            self.target_modules = [self.target_modules]
        if self.r < 1:
            raise DataError(f"LoraConfig.r={self.r!r}: the adapters' rank must be at least 1 (8 or 16 are usual)")
        if self.alpha <= 0:
            raise DataError(f"LoraConfig.alpha={self.alpha!r}: must be positive (usually 2 * r)")
        if not 0 <= self.dropout < 1:
            raise DataError(f"LoraConfig.dropout={self.dropout!r}: must be in [0, 1)")
        if self.target_modules != "auto" and (not self.target_modules
                                              or not all(isinstance(m, str) and m for m in self.target_modules)):
            raise DataError(f"LoraConfig.target_modules={self.target_modules!r}: name the layers to adapt, e.g. "
                            "['query', 'value'] for BERT-style models")


@dataclass
class AugmentConfig:
    """Training-set augmentation (see :mod:`workbench.augment`); evaluation splits are never touched.

    Attributes
    ----------
    insert_rate, delete_rate, swap_rate : float
        Word-level noise on augmented copies: per-word deletion probability, and insertions /
        swaps as a share of the words (text classification only).
    copies : int
        Augmented copies of every training row.
    upsample_to : float, optional
        Add (noisy) copies of minority-class rows until every class has at least this share of
        the largest class's count (1.0 = balanced).
    """

    insert_rate: float = 0.0
    delete_rate: float = 0.0
    swap_rate: float = 0.0
    copies: int = 0
    upsample_to: float | None = None

    def __post_init__(self) -> None:
        _coerce_numbers(self)
        _coerce_flags(self)
        for name in ("insert_rate", "delete_rate", "swap_rate"):
            if not 0 <= getattr(self, name) < 1:
                raise DataError(f"AugmentConfig.{name}={getattr(self, name)!r}: must be in [0, 1)")
        if self.copies < 0:
            raise DataError(f"AugmentConfig.copies={self.copies!r}: must be 0 or more")
        if self.upsample_to is not None and not 0 < self.upsample_to <= 1:
            raise DataError(f"AugmentConfig.upsample_to={self.upsample_to!r}: must be in (0, 1]")
        noisy = self.insert_rate or self.delete_rate or self.swap_rate
        if noisy and not self.copies and self.upsample_to is None:
            raise DataError("AugmentConfig has word-level rates but nothing to apply them to: set copies >= 1 "
                            "or upsample_to")


def _sub_config(kind: type, value: Any, name: str, *, example: str) -> Any:
    """``value`` as a ``kind`` (LoraConfig, AugmentConfig): from a dict, or a JSON object typed into a form or
    a papermill parameter; None stays None. Anything else, or an unknown key, is a DataError naming the field."""
    if value is None or isinstance(value, kind):
        return value
    if isinstance(value, str):
        with contextlib.suppress(json.JSONDecodeError):  # not JSON: refused below as not a dict
            value = json.loads(value) if value.strip() else None
        if value is None:
            return None
    if not isinstance(value, dict):
        raise DataError(f"FineTuneConfig.{name}={value!r}: give a dict (or JSON object) of {kind.__name__} fields, "
                        f"e.g. {example}, or None for off")
    known = [f.name for f in fields(kind)]
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise DataError(f"FineTuneConfig.{name} has unknown field(s) {unknown}; {kind.__name__} fields are {known}")
    return kind(**value)


#: Field annotations that hold numbers, and the type each becomes.
NUMBER_FIELDS = {"int": int, "float": float, "float | None": float}


def _coerce_numbers(config: Any) -> None:
    """Numbers that arrive as text (a form, a papermill parameter, hand-written JSON) become numbers, and an int
    field given a whole float (``16.0``) an int; anything else is a DataError naming the field and value, not a
    TypeError from deep inside validation."""
    for f in fields(config):
        kind = NUMBER_FIELDS.get(str(f.type))
        value = getattr(config, f.name)
        if kind is None or value is None:
            continue
        number = _as_number(value)
        if number is None or (kind is int and not float(number).is_integer()):
            want = "a whole number" if kind is int else "a number"
            raise DataError(f"{type(config).__name__}.{f.name}={value!r}: use {want}")
        setattr(config, f.name, kind(number))


#: Field annotations that hold a flag: ``true``/``false`` typed as text (``--set compile=False``) become bools.
FLAG_FIELDS = ("bool", "bool | str")


def _coerce_flags(config: Any) -> None:
    for f in fields(config):
        value = getattr(config, f.name)
        if str(f.type) in FLAG_FIELDS and isinstance(value, str) and value.lower() in ("true", "false"):
            setattr(config, f.name, value.lower() == "true")


def _as_number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


#: What other tools call a FineTuneConfig field (HF TrainingArguments, shorthand): named in the "did you mean"
#: of an unknown field, where spelling alone suggested ``lora`` for ``lr``.
FIELD_SYNONYMS = {
    "lr": "learning_rate", "learningrate": "learning_rate", "num_train_epochs": "epochs", "num_epochs": "epochs",
    "n_epochs": "epochs", "per_device_train_batch_size": "batch_size", "train_batch_size": "batch_size",
    "bs": "batch_size", "batch": "batch_size", "max_seq_length": "max_length", "max_len": "max_length",
    "max_seq_len": "max_length", "model_name": "model", "model_name_or_path": "model", "model_id": "model",
    "wd": "weight_decay", "warmup": "warmup_ratio", "gradient_accumulation_steps": "grad_accum",
    "grad_accumulation": "grad_accum", "bf16": "precision", "fp16": "precision", "mixed_precision": "precision",
    "random_seed": "seed", "logging_steps": "log_every", "eval_steps": "eval_every", "label_smoothing_factor":
    "label_smoothing", "dataloader_num_workers": "num_workers", "torch_compile": "compile",
}


@dataclass
class FineTuneConfig:
    """How to fine-tune. Defaults train the packaged all-MiniLM-L6-v2 well on a few thousand short texts.

    Attributes
    ----------
    model : str, optional
        HF id (cached) or local folder; None = the packaged all-MiniLM-L6-v2.
    task : {"text-classification", "token-classification"}
    epochs, learning_rate, batch_size, max_length, warmup_ratio, weight_decay, seed, grad_accum
        The usual; ``warmup_ratio`` is a share of all optimizer steps.
    early_stopping_metric : str, optional
        An evaluation metric to watch (``f1_macro``, ``accuracy``, ``loss``); None trains all epochs.
    early_stopping_patience : int
        Evaluations without improvement before stopping.
    dropout : float, "auto" or None
        Sets the model's dropout rates (hidden and attention); None keeps the model's own (0.1 for MiniLM).
        ``auto``: 0 for text classification (as accurate on the benchmark sets and faster, BENCHMARKS.md),
        the model's own for token classification (0 lost 0.8 entity F1 on CoNLL-2003).
    freeze_embeddings : bool or "auto"
        Keep the embedding layer (word, position, type) as pretrained. ``auto``: frozen for text
        classification (the word embeddings are half of MiniLM's weights; updating them cost speed
        without buying accuracy there), trained for token classification (CoNLL-2003 entity F1 +0.2 on
        3 seeds, BENCHMARKS.md).
    freeze_layers : int
        Freeze the first N encoder layers.
    layer_lr_decay : float
        Layer-wise learning-rate decay: encoder layer ``i`` of ``L`` trains at ``learning_rate *
        layer_lr_decay ** (L - i)`` (the embeddings one step lower still), the head at ``learning_rate``.
        1.0 (the default): one rate for all.
    ema_decay : float, optional
        Keep an exponential moving average of the trained weights (``average = ema_decay * average +
        (1 - ema_decay) * weights`` after each optimizer step) and evaluate, save and predict with the
        average instead of the last weights; it reaches back about ``1 / (1 - ema_decay)`` steps (0.995:
        the last ~200). None (the default): off.
    label_smoothing : float
        Train against ``(1 - label_smoothing)`` on the given label plus ``label_smoothing`` spread evenly over
        all classes (tags), as ``torch.nn.CrossEntropyLoss(label_smoothing=...)``; 0 (the default): off.
    compile : bool
        Train through ``torch.compile`` (dynamic shapes, since batches are padded per batch). On the 2-core
        CPU of BENCHMARKS.md ("torch.compile") it trained MiniLM 1.0-1.3x faster per step after 24-56 s of
        compiling, so it pays only on runs of thousands of steps, if at all. Evaluation, prediction and the
        saved model are the plain module's. False (the default): eager.
    lora : LoraConfig, optional
    augment : AugmentConfig, optional
        Training-set augmentation (word noise, minority upsampling), seeded with ``seed``.
    class_weights : "none", "balanced", or a dict class -> weight
    precision : {"auto", "fp32", "bf16", "fp16"}
        ``auto``: bf16 on GPUs that support it, else fp16 on CUDA; bf16 on CPUs with AVX-512 bf16; else fp32.
    device : {"auto", "cpu", "cuda"}
        Where the worker trains. ``auto``: the GPU when torch sees one, else the CPU; ``cpu`` keeps a GPU
        free (or runs DDP over CPU processes); ``cuda`` fails the run with a message when no GPU is visible.
    attention : {"auto", "sdpa", "eager"}
        ``auto``: SDPA on CUDA, eager on CPU (SDPA's CPU backward is slow; see
        :func:`workbench.models.choose_attention`).
    case_feature : {"auto", "on", "off"}
        The word-case channel for taggers (:mod:`workbench.casing`): each sub-token's token type says
        whether its word is lower case, Capitalised or ALL CAPS. ``auto``: on for token classification
        with an uncased tokenizer and a model with token-type embeddings (the packaged MiniLM).
    pooling : {"auto", "mean", "cls"}
        What a text classifier reads (:mod:`workbench.pooling`): ``mean``, the masked mean of the last
        hidden states; ``cls``, the model's own ``[CLS]`` pooler. ``auto``: ``mean`` for models trained
        with mean pooling (a sentence-transformers folder saying so, like the packaged MiniLM).
    num_workers : int
        DataLoader worker processes.
    train_split, eval_split : str
        Splits of the data to train on and to evaluate on each epoch. An ``eval_split`` of one of the usual names
        (validation, valid, val, dev) that the data lacks is read as the one of them the data has; without any,
        ``validation_fraction`` of train is held out (stratified). Splits named nowhere (nor in ``predict_splits``)
        are left aside, and the run's status lists them (``unused_splits``).
    predict_splits : list of str
        Splits to write predictions for at the end (those present in the data).
    eval_every : int
        Evaluate every N optimizer steps as well as at each epoch end (0: epoch ends only).
    log_every : int
        Log loss, learning rate and speed every N optimizer steps.
    labels : list of str, optional
        The label (tag) set in model order; taken from the data when not given.
    num_processes : int
        >1 runs DDP: one process per GPU under ``accelerate launch`` (at most the visible GPU count), or
        ``torchrun`` over CPU processes when ``device`` resolves to the CPU.
    """

    model: str | None = None
    task: str = "text-classification"
    epochs: float = 3.0
    learning_rate: float = 5e-5
    batch_size: int = 16
    max_length: int = 128
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    seed: int = 0
    grad_accum: int = 1
    early_stopping_metric: str | None = None
    early_stopping_patience: int = 2
    dropout: float | str | None = "auto"
    freeze_embeddings: bool | str = "auto"
    freeze_layers: int = 0
    layer_lr_decay: float = 1.0
    ema_decay: float | None = None
    label_smoothing: float = 0.0
    compile: bool = False
    lora: LoraConfig | None = None
    augment: AugmentConfig | None = None
    class_weights: str | dict[str, float] = "none"
    precision: str = "auto"
    device: str = "auto"
    attention: str = "auto"
    case_feature: str = "auto"
    pooling: str = "auto"
    num_workers: int = 0
    train_split: str = "train"
    eval_split: str = "validation"
    validation_fraction: float = 0.1
    predict_splits: list[str] = field(default_factory=lambda: ["validation", "test"])
    eval_every: int = 0
    log_every: int = 10
    labels: list[str] | None = None
    num_processes: int = 1

    def __post_init__(self) -> None:
        _coerce_numbers(self)
        _coerce_flags(self)
        if isinstance(self.dropout, str) and self.dropout != "auto":  # a number typed into a form
            try:
                self.dropout = float(self.dropout)
            except ValueError:
                raise DataError(f"FineTuneConfig.dropout={self.dropout!r}: use a number in [0, 1), 'auto', "
                                "or None for the model's own") from None
        self.lora = _sub_config(LoraConfig, self.lora, "lora", example='{"r": 8}')
        self.augment = _sub_config(AugmentConfig, self.augment, "augment", example='{"copies": 1, "swap_rate": 0.1}')
        if isinstance(self.class_weights, str) and self.class_weights.strip().startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):  # a JSON object typed into the form; else refused below
                self.class_weights = json.loads(self.class_weights)
        if self.labels is not None and (isinstance(self.labels, str) or not all(isinstance(v, str)
                                                                                 for v in self.labels)):
            raise DataError(f"FineTuneConfig.labels={self.labels!r}: give a list of class names, or None for the "
                            "data's label set")
        self.validate()

    def validate(self) -> None:
        """Raise :class:`DataError` naming the field and value that cannot work."""
        def bad(name: str, why: str) -> DataError:
            return DataError(f"FineTuneConfig.{name}={getattr(self, name)!r}: {why}")

        if self.task not in TASKS:
            raise bad("task", f"use one of {list(TASKS)}")
        if self.precision not in PRECISIONS:
            raise bad("precision", f"use one of {list(PRECISIONS)}")
        if self.freeze_embeddings not in (True, False, "auto"):
            raise bad("freeze_embeddings", "use True, False or 'auto'")
        if self.device not in DEVICES:
            raise bad("device", f"use one of {list(DEVICES)}")
        if self.attention not in ATTENTIONS:
            raise bad("attention", f"use one of {list(ATTENTIONS)}")
        if self.case_feature not in CASE_FEATURES:
            raise bad("case_feature", f"use one of {list(CASE_FEATURES)}")
        if self.pooling not in POOLINGS:
            raise bad("pooling", f"use one of {list(POOLINGS)}")
        if self.case_feature == "on" and self.task != "token-classification":
            raise bad("case_feature", "the word-case channel is for token classification; use 'auto' or 'off'")
        if not self.epochs > 0:
            raise bad("epochs", "must be positive")
        if not 0 < self.learning_rate < 1:
            raise bad("learning_rate", "must be in (0, 1)")
        for name in ("batch_size", "grad_accum", "num_processes", "log_every"):
            if int(getattr(self, name)) < 1:
                raise bad(name, "must be at least 1")
        if self.max_length < 2:
            raise bad("max_length", "must be at least 2 (room for the special tokens)")
        if not 0 <= self.warmup_ratio < 1:
            raise bad("warmup_ratio", "must be in [0, 1)")
        if not 0 < self.validation_fraction < 1:
            raise bad("validation_fraction", "must be in (0, 1)")
        if isinstance(self.dropout, (int, float)) and not 0 <= self.dropout < 1:
            raise bad("dropout", "must be in [0, 1), 'auto', or None for the model's own")
        for name in ("freeze_layers", "num_workers", "eval_every"):
            if getattr(self, name) < 0:
                raise bad(name, "must be 0 or more")
        if self.weight_decay < 0:
            raise bad("weight_decay", "must be 0 or more (0.01 is usual)")
        if not 0 < self.layer_lr_decay <= 1:
            raise bad("layer_lr_decay", "must be in (0, 1]; 1 trains every layer at learning_rate")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise bad("ema_decay", "must be in (0, 1), e.g. 0.995 (about the last 200 steps), or None for off")
        if not 0 <= self.label_smoothing < 1:
            raise bad("label_smoothing", "must be in [0, 1), e.g. 0.1; 0 is off")
        if not isinstance(self.compile, bool):
            raise bad("compile", "use True or False")
        if isinstance(self.class_weights, str) and self.class_weights not in CLASS_WEIGHTS:
            raise bad("class_weights", "use 'none', 'balanced' or a dict of class -> weight")
        if isinstance(self.class_weights, dict) and not all(
                _as_number(w) is not None and float(w) > 0 for w in self.class_weights.values()):
            raise bad("class_weights", "each class's weight must be a positive number (unnamed classes weigh 1)")
        if self.early_stopping_metric is not None and self.early_stopping_patience < 1:
            raise bad("early_stopping_patience", "must be at least 1")
        metrics = EARLY_STOPPING_METRICS.get(self.task, ())
        if self.early_stopping_metric is not None and metrics and self.early_stopping_metric not in metrics:
            raise bad("early_stopping_metric", f"is not computed for {self.task}; use one of {list(metrics)}")

    def effective_dropout(self) -> float | None:
        """The dropout rate to train with (None: the model's own), ``auto`` resolved for the task."""
        if self.dropout == "auto":
            return 0.0 if self.task == "text-classification" else None
        return None if self.dropout is None else float(self.dropout)

    def effective_freeze_embeddings(self) -> bool:
        """Whether the embedding layer stays frozen, ``auto`` resolved for the task."""
        if self.freeze_embeddings == "auto":
            return self.task == "text-classification"
        return bool(self.freeze_embeddings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FineTuneConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            hints = near_misses(unknown, known, synonyms=FIELD_SYNONYMS)
            raise DataError(f"unknown FineTuneConfig field(s) {unknown}{hints}; fields are {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_json(cls, path_or_text: str | os.PathLike[str]) -> FineTuneConfig:
        text = str(path_or_text)
        if not text.lstrip().startswith("{"):
            try:
                text = Path(path_or_text).read_text()
            except OSError as exc:
                raise DataError(f"cannot read the config {path_or_text}: {exc.strerror}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"the config is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        return cls.from_dict(data)
