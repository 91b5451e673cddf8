"""The fine-tuning worker: ``python -m workbench.train RUN_DIR [--resume]``.

Runs in its own process (started by :func:`workbench.launch.launch`), never in the
notebook's kernel. Reads ``RUN_DIR/config.json`` and ``RUN_DIR/data.parquet`` and writes
``status.json``, ``metrics.jsonl``, an epoch checkpoint (removed once the run finishes),
predictions, the model (safetensors), ``labels.json`` and ``environment.json`` (see
:mod:`workbench.runs`). A resume moves the metrics logged past its checkpoint to
``metrics.superseded.jsonl``.

Why a lean loop on accelerate rather than HF ``Trainer``: measured on this 2-core CPU
(BENCHMARKS.md) it is 1.06x Trainer's best setup given the same model settings, and it
owns what a workbench needs: status files a kernel can poll, cancel by file or signal,
resume from our own checkpoints, and batches bucketed by length *inside* shuffled
mega-batches with the bucket order shuffled again, so padding stays low while every
batch is a random draw. Most of the speed over stock Trainer comes from the defaults
(:class:`workbench.config.FineTuneConfig`): eager attention on CPU (SDPA's CPU backward
is slow), no dropout, frozen embeddings, and the fused AdamW.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.averaging import WeightAverage
from workbench.bio import decode_tags
from workbench.config import FineTuneConfig
from workbench.devices import configure_cuda, resolve_device, to_device
from workbench.errors import DataError, WorkbenchError
from workbench.splits import prepare_splits
from workbench.vocab import tally_unknown, unknown_tokens_matter

CANCEL_FILE = "cancel.request"
#: Set by ``launch(..., stop_with_caller=True)``: the pid of the process the run works for. The worker runs in a
#: session of its own, so that a notebook's interrupt does not reach it; a run that only its caller reads (a scan's
#: fold model) must then stop by itself when that caller is gone (killed, or its kernel restarted).
CALLER_ENV = "WORKBENCH_STOP_WITH_PID"
_cancelled = False


class CallerEnded(KeyboardInterrupt):
    """The process a run worked for has ended: the run stops as a cancelled one, with nobody left to read it."""


def caller_ended(pid: int | None) -> bool:
    """Whether process ``pid`` has ended (None: the run works for nobody in particular, and never has to stop).

    A process that ended but was not yet reaped by its parent (a zombie) counts as ended.
    """
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    try:
        # the state letter follows the command's closing parenthesis
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):  # no /proc (macOS): alive as far as kill can tell
        return False


# ---------------------------------------------------------------------- status files
def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically, so a reader never sees half a file."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def set_status(run_dir: Path, state: str, **extra: Any) -> None:
    current = {}
    path = run_dir / "status.json"
    if path.exists():
        try:
            current = json.loads(path.read_text())
        except json.JSONDecodeError:
            current = {}
    current.update(extra, state=state, updated=time.time())
    write_json(path, current)


def hint_for(exc: BaseException) -> str:
    """What to try next, for the errors a fine-tune commonly meets."""
    text = f"{type(exc).__name__}: {exc}".lower()
    if "out of memory" in text or "can't allocate memory" in text or isinstance(exc, MemoryError):
        return "out of memory: lower batch_size or max_length, or use precision='bf16'/'fp16' or LoRA"
    if "inductor" in text or "dynamo" in text or "backendcompilerfailed" in text:
        return "torch.compile failed (it needs a C++ compiler on CPUs, Triton on GPUs): launch again with compile=False"
    if "no such file" in text or "not found" in text or "does not appear to have" in text:
        return "a file is missing: check the model path and that the run folder was not moved"
    if "label" in text and ("not in" in text or "mismatch" in text):
        return "the labels in the data and in the config differ: launch again without a fixed label list"
    if isinstance(exc, WorkbenchError):  # the data or the config, said in the message: no traceback to read
        return "fix what the message names and launch again"
    return "see logs.txt in the run folder for the full traceback"


# ---------------------------------------------------------------------- batching
def bucketed_batches(lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int,
                     bucket_factor: int = 50) -> list[np.ndarray]:
    """Random batches of similar length: shuffle, cut into mega-batches, sort each by length, batch, shuffle batches.

    Returns
    -------
    list of numpy.ndarray
        Index arrays, each ``(<= batch_size,)``.
    """
    rng = np.random.default_rng(seed * 1_000_003 + epoch)
    n = len(lengths)
    order = rng.permutation(n)
    lens = np.asarray(lengths)
    chunk = batch_size * bucket_factor
    batches: list[np.ndarray] = []
    for start in range(0, n, chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(-lens[part], kind="stable")]
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int, labels: Sequence[Any] | None = None,
              label_pad: int = -100, *, token_types: Sequence[Sequence[int]] | None = None) -> dict[str, np.ndarray]:
    """Dynamic padding to the longest sequence of the batch.

    Returns ``input_ids`` and ``attention_mask`` ``(batch, width)``, ``labels`` (``(batch,)`` or
    ``(batch, width)`` padded with ``label_pad``) when given, and ``token_type_ids`` ``(batch, width)``
    when ``token_types`` are given (the case channel, :mod:`workbench.casing`).
    """
    width = max(len(x) for x in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for r, x in enumerate(ids):
        input_ids[r, :len(x)] = x
        mask[r, :len(x)] = 1
    out = {"input_ids": input_ids, "attention_mask": mask}
    if token_types is not None:
        types = np.zeros((len(ids), width), dtype=np.int64)
        for r, t in enumerate(token_types):
            types[r, :len(t)] = t
        out["token_type_ids"] = types
    if labels is not None:
        if len(labels) and isinstance(labels[0], (list, np.ndarray)):
            lab = np.full((len(ids), width), label_pad, dtype=np.int64)
            for r, seq in enumerate(labels):
                lab[r, :len(seq)] = seq
            out["labels"] = lab
        else:
            out["labels"] = np.asarray(labels, dtype=np.int64)
    return out


def align_word_tags(word_ids: Sequence[int | None], tags: Sequence[int]) -> list[int]:
    """Sub-token labels: the first sub-token of each word carries its tag, the rest and specials get -100."""
    out, prev = [], None
    for w in word_ids:
        out.append(-100 if w is None or w == prev else int(tags[w]))
        prev = w
    return out


def word_probs(token_probs: np.ndarray, word_ids: Sequence[int | None], n_words: int) -> np.ndarray:
    """A sentence's tag probabilities per word, read at each word's first sub-token (the one trained on).

    Parameters
    ----------
    token_probs : numpy.ndarray
        ``(width, n_tags)`` probabilities per sub-token position (padding past the sentence is ignored).
    word_ids : sequence of int or None
        ``(n_subtokens,)`` the tokenizer's word index per sub-token, None for specials.
    n_words : int

    Returns
    -------
    numpy.ndarray
        ``(n_words, n_tags)``; words cut off by ``max_length`` keep a uniform guess.
    """
    out = np.full((n_words, token_probs.shape[-1]), 1.0 / token_probs.shape[-1])
    prev = None
    for j, w in enumerate(word_ids):
        if w is not None and w != prev:
            out[w] = token_probs[j]
        prev = w
    return out


# ---------------------------------------------------------------------- data
class Prepared:
    """Tokenised splits of a run's data (``types``: per-row token types when the case channel is on)."""

    def __init__(self, frame: pd.DataFrame, config: FineTuneConfig, tokenizer: Any, labels: list[str]) -> None:
        self.frame = frame
        self.labels = labels
        self.index = {c: i for i, c in enumerate(labels)}
        self.token_task = config.task == "token-classification"
        self.types: list[list[int]] | None = None
        if self.token_task:
            enc = tokenizer([list(t) for t in frame["tokens"]], is_split_into_words=True, truncation=True,
                            max_length=config.max_length)
            self.ids = enc["input_ids"]
            self.word_ids = [enc.word_ids(i) for i in range(len(frame))]
            self.y: list[Any] = []
            for i, tags in enumerate(frame["label"]):
                if tags is None:
                    self.y.append(None)
                    continue
                self.y.append(align_word_tags(self.word_ids[i], [self._id(t) for t in tags]))
        else:
            self.ids = tokenizer(frame["text"].tolist(), truncation=True, max_length=config.max_length)["input_ids"]
            self.y = [self._id(v) if isinstance(v, str) else None for v in frame["label"]]

    def _id(self, label: str) -> int:
        if label not in self.index:
            raise DataError(f"the data has the label {label!r}, which is not in the run's label set {self.labels}; "
                            "launch again without a fixed label list, or relabel the item")
        return self.index[label]

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.frame["split"].to_numpy() == split)

    def add_case_types(self) -> None:
        """Give every sub-token its word's case type (:func:`workbench.casing.word_case_types`)."""
        from workbench.casing import word_case_types

        self.types = [word_case_types(list(words), self.word_ids[i]) for i, words in enumerate(self.frame["tokens"])]

    def batch(self, rows: Sequence[int] | np.ndarray, pad_id: int, *,
              with_labels: bool = True) -> dict[str, np.ndarray]:
        """:func:`pad_batch` for these rows: ids, mask, labels when asked, token types when the channel is on."""
        return pad_batch([self.ids[i] for i in rows], pad_id, [self.y[i] for i in rows] if with_labels else None,
                         token_types=None if self.types is None else [self.types[i] for i in rows])


def _unknown_in_training(prep: Prepared, rows: np.ndarray, tokenizer: Any) -> dict[str, Any] | None:
    """:func:`workbench.vocab.tally_unknown` of the training items as the model reads them (None for a vocabulary
    without an unknown token): an English model fine-tuned on Chinese learns from [UNK] and says nothing."""
    unk_id = getattr(tokenizer, "unk_token_id", None)
    if unk_id is None or not len(rows):
        return None
    column = prep.frame["tokens" if prep.token_task else "text"]
    texts = [" ".join(column.iloc[i]) if prep.token_task else str(column.iloc[i]) for i in rows]
    return tally_unknown([prep.ids[i] for i in rows], unk_id=int(unk_id), texts=texts,
                         special_ids=tokenizer.all_special_ids)


# ---------------------------------------------------------------------- the loop
def _precision(config: FineTuneConfig, device: str) -> str:
    from workbench.embed import choose_precision

    return choose_precision(config.precision, device)


def _mixed(precision: str) -> str:
    return {"bf16": "bf16", "fp16": "fp16"}.get(precision, "no")


# Names architectures give their dropout rates (BERT/RoBERTa/DeBERTa, DistilBERT, XLM/others).
_DROPOUT_NAMES = ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout",
                  "classifier_dropout")


# The attention's query and value projections, by the names architectures give them, in the order tried: the
# pair LoRA adapts by default (Hu et al.), or the fused projection where a model has one matrix for all three.
_LORA_NAMES = (("query", "value"), ("q_lin", "v_lin"), ("query_proj", "value_proj"), ("q_proj", "v_proj"),
               ("Wqkv",), ("qkv",), ("in_proj",), ("c_attn",))


def lora_targets(model: Any, setting: list[str] | str) -> list[str]:
    """The layer names LoRA adapts in ``model``: ``setting`` when it names layers the model has, else for
    ``"auto"`` its query and value projections; a DataError listing the model's linear layers otherwise."""
    import torch

    paths = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    linear = sorted({name.rsplit(".", 1)[-1] for name in paths})
    if setting == "auto":
        found = next((list(pair) for pair in _LORA_NAMES if set(pair) <= set(linear)), None)
        if found is None:
            raise DataError(f"LoraConfig.target_modules='auto' found no attention projections to adapt in "
                            f"{type(model).__name__}; name some of its linear layers: {linear}")
        return found
    # as peft matches them: a layer's own name, or the end of its dotted path
    unknown = [name for name in setting if not any(p == name or p.endswith("." + name) for p in paths)]
    if unknown:
        raise DataError(f"LoraConfig.target_modules names {unknown}, which {type(model).__name__} does not have; "
                        f"its linear layers are {linear} (or leave target_modules='auto')")
    return list(setting)


def encoder_layers(base: Any) -> list[Any]:
    """The transformer blocks of a base model, first to last, wherever the architecture keeps them
    (``encoder.layer`` in BERT, ``transformer.layer`` in DistilBERT, ``layers`` in ModernBERT, ``h`` in GPT-2)."""
    import torch

    for name, module in base.named_modules():
        if isinstance(module, torch.nn.ModuleList) and name.rsplit(".", 1)[-1] in ("layer", "layers", "h", "block"):
            return list(module)
    return []


def model_settings(config: FineTuneConfig, path: Any, *, device: str) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments for the config's attention and dropout on ``device``.

    ``attn_implementation`` from :func:`workbench.models.choose_attention`; unless the config keeps the
    model's own dropout, every dropout rate the model's config has (names differ between architectures).
    """
    import transformers

    from workbench.models import choose_attention

    settings: dict[str, Any] = {"attn_implementation": choose_attention(config.attention, device)}
    dropout = config.effective_dropout()
    if dropout is not None:
        model_config = transformers.AutoConfig.from_pretrained(str(path))
        settings.update({name: dropout for name in _DROPOUT_NAMES if getattr(model_config, name, None) is not None})
    return settings


def _build_model(config: FineTuneConfig, labels: list[str], path: Any, *, device: str,
                 tokenizer: Any) -> tuple[Any, bool, str]:
    """The model to train, whether it has the word-case channel (:mod:`workbench.casing`), and its pooling
    (:mod:`workbench.pooling`)."""
    import transformers

    from workbench.casing import add_case_channel, use_case_feature
    from workbench.pooling import apply_pooling, choose_pooling

    cls = (transformers.AutoModelForTokenClassification if config.task == "token-classification"
           else transformers.AutoModelForSequenceClassification)
    model = cls.from_pretrained(str(path), num_labels=len(labels), id2label=dict(enumerate(labels)),
                                label2id={c: i for i, c in enumerate(labels)},
                                **model_settings(config, path, device=device))
    base = getattr(model, model.base_model_prefix, model)
    if config.effective_freeze_embeddings() and hasattr(base, "embeddings"):
        for p in base.embeddings.parameters():
            p.requires_grad = False
    if config.freeze_layers:
        layers = encoder_layers(base)
        if config.freeze_layers > len(layers):
            raise DataError(f"freeze_layers={config.freeze_layers} but the model has {len(layers)} layers")
        for layer in list(layers)[:config.freeze_layers]:
            for p in layer.parameters():
                p.requires_grad = False
    case = use_case_feature(config.case_feature, task=config.task, tokenizer=tokenizer, model=model)
    if case:
        add_case_channel(model)
    pooling = choose_pooling(config.pooling, task=config.task, model_dir=path)
    apply_pooling(model, pooling)
    if config.lora is not None:
        import peft

        task_type = (peft.TaskType.TOKEN_CLS if config.task == "token-classification" else peft.TaskType.SEQ_CLS)
        model = peft.get_peft_model(model, peft.LoraConfig(
            task_type=task_type, r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
            target_modules=lora_targets(model, config.lora.target_modules)))
        if case:  # peft freezes everything but the adapters and the head; the case rows are new, train them
            for name, p in model.named_parameters():
                if "token_type_embeddings" in name:
                    p.requires_grad = True
    return model, case, pooling


def make_loss(config: FineTuneConfig, class_weights: np.ndarray | None = None) -> Any:
    """The training loss: cross-entropy with the config's label smoothing and the given class weights.

    Parameters
    ----------
    config : FineTuneConfig
    class_weights : numpy.ndarray, optional
        ``(n_classes,)``; None weighs every class alike.

    Returns
    -------
    torch.nn.CrossEntropyLoss
        Called on ``(n, n_classes)`` logits and ``(n,)`` targets; targets of -100 (sub-tokens after a word's
        first, padding) are left out.
    """
    import torch

    weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
    return torch.nn.CrossEntropyLoss(weight=weight, ignore_index=-100, label_smoothing=config.label_smoothing)


def _class_weights(config: FineTuneConfig, y: list[Any], labels: list[str]) -> np.ndarray | None:
    if config.class_weights == "none" or config.task == "token-classification":
        return None
    if isinstance(config.class_weights, dict):
        unknown = sorted(set(config.class_weights) - set(labels))
        if unknown:
            raise DataError(f"class_weights names unknown class(es) {unknown}; classes are {labels}")
        return np.array([float(config.class_weights.get(c, 1.0)) for c in labels])
    counts = np.bincount([v for v in y if v is not None], minlength=len(labels)).astype(float)
    return np.where(counts > 0, counts.sum() / (len(labels) * np.maximum(counts, 1)), 0.0)


def _evaluate(model: Any, prep: Prepared, rows: np.ndarray, *, accelerator: Any, pad_id: int,
              batch_size: int) -> tuple[Any, float]:
    """Probabilities for ``rows`` (sentence classification: ``(n, K)``; tokens: a list of ``(words, K)``)."""
    import torch

    model.eval()
    order = rows[np.argsort([-len(prep.ids[i]) for i in rows], kind="stable")]
    probs: dict[int, Any] = {}
    losses = []
    with torch.inference_mode():
        for start in range(0, len(order), batch_size * 2):
            idx = order[start:start + batch_size * 2]
            labelled = all(prep.y[i] is not None for i in idx)
            batch = prep.batch(idx, pad_id, with_labels=labelled)
            tensors = to_device(batch, accelerator.device)
            with accelerator.autocast():
                out = model(**tensors)
            if labelled and out.loss is not None:
                losses.append(float(out.loss) * len(idx))
            p = torch.softmax(out.logits.float(), dim=-1).cpu().numpy()
            for r, i in enumerate(idx):
                if prep.token_task:
                    probs[int(i)] = word_probs(p[r], prep.word_ids[i], len(prep.frame["tokens"].iloc[i]))
                else:
                    probs[int(i)] = p[r]
    model.train()
    loss = sum(losses) / max(len(rows), 1) if losses else float("nan")
    if prep.token_task:
        return [probs[int(i)] for i in rows], loss
    return np.stack([probs[int(i)] for i in rows]) if len(rows) else np.zeros((0, len(prep.labels))), loss


def _scores(prep: Prepared, rows: np.ndarray, probs: Any) -> dict[str, float]:
    from workbench.metrics import entity_metrics, per_class_metrics

    labels = prep.labels
    if prep.token_task:
        gold = [list(prep.frame["label"].iloc[i]) for i in rows]
        pred = [decode_tags(p, labels) for p in probs]
        table = entity_metrics(gold, pred)
        flat_ok = np.mean([g == q for gs, ps in zip(gold, pred) for g, q in zip(gs, ps)])
        f1 = table["f1"].astype(float)
        return {"f1_micro": float(f1["micro avg"]), "f1_macro": float(f1["macro avg"]), "accuracy": float(flat_ok)}
    gold = prep.frame["label"].iloc[rows].tolist()
    pred = [labels[k] for k in probs.argmax(1)]
    table = per_class_metrics(gold, pred, labels=labels)
    f1 = table["f1"].astype(float)
    return {"accuracy": float(np.mean([g == q for g, q in zip(gold, pred)])),
            "f1_macro": float(f1["macro avg"]), "f1_weighted": float(f1["weighted avg"])}


def run(run_dir: Path, *, resume: bool = False) -> None:
    """Train as ``run_dir/config.json`` says; every outcome ends in ``status.json``."""
    import torch
    import transformers
    from accelerate import Accelerator

    from workbench.models import choose_attention, load_tokenizer, resolve_model

    config = FineTuneConfig.from_json(run_dir / "config.json")
    caller = int(os.environ[CALLER_ENV]) if os.environ.get(CALLER_ENV) else None
    frame = pd.read_parquet(run_dir / "data.parquet")
    frame = prepare_splits(frame, config)
    if config.augment is not None:
        from workbench.augment import augment_frame

        # After the validation hold-out, so augmented copies only ever join the training split.
        frame = augment_frame(frame, config.augment, split=config.train_split, task=config.task, seed=config.seed)
    labels = list(config.labels or json.loads((run_dir / "labels.json").read_text()))
    device = resolve_device(config.device)
    cpu_only = device == "cpu"
    configure_cuda(device)
    precision = _precision(config, device)
    accelerator = Accelerator(mixed_precision=_mixed(precision), cpu=cpu_only,
                              gradient_accumulation_steps=config.grad_accum)
    main = accelerator.is_main_process
    transformers.set_seed(config.seed)
    path = resolve_model(config.model)
    tokenizer = load_tokenizer(path, words=config.task == "token-classification")
    prep = Prepared(frame, config, tokenizer, labels)
    in_train = prep.rows(config.train_split)
    train_rows = np.array([i for i in in_train if prep.y[i] is not None], dtype=np.int64)
    eval_rows = np.array([i for i in prep.rows(config.eval_split) if prep.y[i] is not None], dtype=np.int64)
    # prepare_splits refused a run with no labelled item to train or evaluate on; augmentation only adds to train
    # what the run learns from, in status.json: unlabelled items (an active-learning pool) are left out
    counts: dict[str, Any] = {"n_train": len(train_rows), "n_eval": len(eval_rows),
                              "n_unlabelled": len(in_train) - len(train_rows)}
    # and what it leaves aside: a split the config names nowhere is neither trained on, evaluated nor predicted
    unused = prep.frame["split"][~prep.frame["split"].isin([config.train_split, config.eval_split,
                                                            *config.predict_splits])].value_counts()
    if len(unused):
        counts["unused_splits"] = {str(k): int(v) for k, v in unused.items()}
    unknown = _unknown_in_training(prep, train_rows, tokenizer)
    if unknown_tokens_matter(unknown):
        counts["unknown_tokens"] = unknown
    attention = choose_attention(config.attention, device)
    model, case, pooling = _build_model(config, labels, path, device=device, tokenizer=tokenizer)
    if case:
        prep.add_case_types()
    loss_fn = make_loss(config, _class_weights(config, [prep.y[i] for i in train_rows], labels))
    params = [p for p in model.parameters() if p.requires_grad]
    groups = parameter_groups(model, weight_decay=config.weight_decay, learning_rate=config.learning_rate,
                              layer_lr_decay=config.layer_lr_decay)
    try:
        # The fused kernel: the default (foreach) AdamW took 38% of each MiniLM step on this CPU,
        # fused 11% (80 -> 132 samples/s, same update rule). Trainer also defaults to it.
        optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, fused=True)
    except (RuntimeError, TypeError, ValueError):  # a device or dtype without the fused kernel
        optimizer = torch.optim.AdamW(groups, lr=config.learning_rate)
    world = accelerator.num_processes
    batches_per_epoch = math.ceil(len(train_rows) / config.batch_size) // world
    steps_per_epoch = max(1, batches_per_epoch // config.grad_accum)
    total_steps = max(1, int(math.ceil(steps_per_epoch * config.epochs)))
    scheduler = transformers.get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps),
                                                             total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    # Training steps only: evaluation and saving read the plain module (no second compile for eval mode, no
    # "_orig_mod." prefix in the saved weights). Dynamic shapes, since every batch has its own padded width.
    forward = torch.compile(model, dynamic=True) if config.compile else model
    loss_fn = loss_fn.to(accelerator.device)
    pad_id = tokenizer.pad_token_id or 0
    lengths = [len(prep.ids[i]) for i in train_rows]

    start_epoch, step, best, bad_evals = 0, 0, None, 0
    ckpt = run_dir / "checkpoint"
    average = WeightAverage(params, config.ema_decay) if config.ema_decay is not None else None
    if resume and (ckpt / "state.json").exists():
        state = json.loads((ckpt / "state.json").read_text())
        accelerator.unwrap_model(model).load_state_dict(_load_weights(ckpt / "model.safetensors"), strict=False)
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
        scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=True))
        if average is not None:
            average.load_state_dict(torch.load(ckpt / "average.pt", weights_only=True))
        start_epoch, step, best, bad_evals = state["epoch"], state["step"], state["best"], state["bad_evals"]
    if main and resume:
        # before the status says the run resumed: whoever reads the metrics then sees none of the killed attempt's
        # steps past the checkpoint (a test saw its evaluation, stopped waiting, and found it gone)
        _set_aside_metrics_after(run_dir, step)
    if main:
        # What "auto" resolved to, recorded in both files.
        resolved = {"precision": precision, "attention": attention, "case_feature": case, "pooling": pooling,
                    "freeze_embeddings": config.effective_freeze_embeddings()}
        set_status(run_dir, "running", pid=os.getpid(), started=time.time(), device=str(accelerator.device),
                   processes=world, total_steps=total_steps, resumed_from_step=step or None, **resolved, **counts)
        write_json(run_dir / "environment.json",
                   _environment(run_dir, config, str(accelerator.device), world, resolved))
    metrics_file = (run_dir / "metrics.jsonl").open("a") if main else None

    def log(row: dict[str, Any]) -> None:
        if metrics_file is not None:
            metrics_file.write(json.dumps(row) + "\n")
            metrics_file.flush()

    def evaluate_now(epoch_pos: float) -> bool:
        """Log an evaluation; True when early stopping says stop."""
        nonlocal best, bad_evals
        with average.applied() if average is not None else contextlib.nullcontext():
            probs, loss = _evaluate(model, prep, eval_rows, accelerator=accelerator, pad_id=pad_id,
                                    batch_size=config.batch_size)
        scores = _scores(prep, eval_rows, probs)
        log({"step": step, "epoch": round(epoch_pos, 4), "eval_loss": loss,
             **{f"eval_{k}": v for k, v in scores.items()}})
        metric = config.early_stopping_metric
        if metric is None:
            return False
        value = loss if metric == "loss" else scores.get(metric)
        if value is None:
            raise DataError(f"early_stopping_metric={metric!r} is not computed; use 'loss' or one of {list(scores)}")
        better = best is None or (value < best if metric == "loss" else value > best)
        if better:
            best, bad_evals = value, 0
            return False
        bad_evals += 1
        return bad_evals >= config.early_stopping_patience

    model.train()
    stop = False
    t_log, seen = time.perf_counter(), 0
    epoch = start_epoch
    while epoch < math.ceil(config.epochs) and not stop:
        batches = bucketed_batches(lengths, config.batch_size, seed=config.seed, epoch=epoch)
        batches = batches[: len(batches) // world * world][accelerator.process_index::world]
        limit = len(batches)
        if epoch + 1 > config.epochs:  # a fractional last epoch
            limit = int(len(batches) * (config.epochs - epoch))
        for b, local in enumerate(batches[:limit]):
            if _cancelled or (run_dir / CANCEL_FILE).exists():
                raise KeyboardInterrupt
            if caller_ended(caller):
                raise CallerEnded(f"cancelled: the process it was started for (pid {caller}) has ended")
            rows = train_rows[local]
            batch = prep.batch(rows, pad_id)
            tensors = to_device(batch, accelerator.device)
            target = tensors.pop("labels")
            with accelerator.accumulate(model), accelerator.autocast():
                logits = forward(**tensors).logits
                loss = loss_fn(logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1))
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, 1.0)
                optimizer.step()
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad()
            seen += len(rows)
            if accelerator.sync_gradients:
                if average is not None:
                    average.update()
                step += 1
                if step % config.log_every == 0:
                    now = time.perf_counter()
                    log({"step": step, "epoch": round(epoch + (b + 1) / max(len(batches), 1), 4),
                         "loss": float(loss.detach()), "learning_rate": scheduler.get_last_lr()[0],
                         "samples_per_s": seen * world / max(now - t_log, 1e-9)})
                    t_log, seen = now, 0
                if config.eval_every and step % config.eval_every == 0:
                    stop = evaluate_now(epoch + (b + 1) / max(len(batches), 1))
                    if stop:
                        break
        epoch += 1
        if not stop:
            stop = evaluate_now(min(float(epoch), config.epochs))
        if main:
            _save_checkpoint(ckpt, accelerator.unwrap_model(model), optimizer, scheduler,
                             {"epoch": epoch, "step": step, "best": best, "bad_evals": bad_evals}, average=average)
    accelerator.wait_for_everyone()
    if average is not None:
        average.swap()  # from here on the model holds the average: it is what is saved and predicts
    if main:
        unwrapped = accelerator.unwrap_model(model)
        if config.lora is not None:
            unwrapped = unwrapped.merge_and_unload()
        unwrapped.save_pretrained(run_dir / "model", safe_serialization=True)
        tokenizer.save_pretrained(run_dir / "model")
        headline = _write_predictions(run_dir, unwrapped, prep, config, accelerator, pad_id)
        if metrics_file is not None:
            metrics_file.close()
        # A finished run cannot be resumed, and its checkpoint (weights plus optimizer state) is twice the
        # model's size: k-fold scans would otherwise leave hundreds of MB per fold behind.
        shutil.rmtree(ckpt, ignore_errors=True)
        set_status(run_dir, "finished", finished=time.time(), steps=step, **headline)


def _load_weights(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return dict(load_file(str(path)))


def parameter_groups(model: Any, *, weight_decay: float, learning_rate: float,
                     layer_lr_decay: float = 1.0) -> list[dict[str, Any]]:
    """AdamW parameter groups: weight decay on matrices only, and with ``layer_lr_decay`` < 1 a lower rate
    the deeper a parameter sits (encoder layer ``i`` of ``L``: ``decay ** (L - i)``; embeddings
    ``decay ** (L + 1)``; anything above the encoder, like the head: the full rate). Trainable ones only;
    the first group trains at the full rate (the rate the metrics log)."""
    import re

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    layer_of = {n: int(m.group(1)) for n, _ in named if (m := re.search(r"\.layers?\.(\d+)\.", n))}
    depth = max(layer_of.values(), default=-1) + 1

    def scale(name: str) -> float:
        if layer_lr_decay == 1.0:
            return 1.0
        if name in layer_of:
            return float(layer_lr_decay ** (depth - layer_of[name]))
        return float(layer_lr_decay ** (depth + 1)) if "embeddings" in name else 1.0

    groups: dict[tuple[float, bool], list[Any]] = {}
    for name, p in named:
        groups.setdefault((scale(name), p.ndim > 1), []).append(p)
    return [{"params": ps, "lr": learning_rate * sc, "weight_decay": weight_decay if decayed else 0.0}
            for (sc, decayed), ps in sorted(groups.items(), key=lambda kv: (-kv[0][0], not kv[0][1]))]


def _set_aside_metrics_after(run_dir: Path, step: int) -> None:
    """Before a resume from ``step``: move the metrics logged past it (by the attempt that stopped before its next
    checkpoint, and that the resume trains again) to ``metrics.superseded.jsonl``, so ``metrics.jsonl`` keeps one
    row per step of the model that is being trained, its curves run forward, and nothing logged is lost."""
    file = run_dir / "metrics.jsonl"
    if not file.exists():
        return
    kept: list[str] = []
    superseded: list[str] = []
    for line in file.read_text().splitlines():
        try:
            past = int(json.loads(line).get("step", 0)) > step
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
            past = True  # a line cut short by a kill
        (superseded if past else kept).append(line)
    if superseded:
        with (run_dir / "metrics.superseded.jsonl").open("a") as aside:
            aside.write("".join(f"{line}\n" for line in superseded))
        write_text_atomic(file, "".join(f"{line}\n" for line in kept))


def _save_checkpoint(folder: Path, model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any], *,
                     average: WeightAverage | None = None) -> None:
    """Weights as safetensors, optimizer, scheduler (and weight average) as tensors; state.json written last."""
    import torch
    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(weights, str(tmp / "model.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    if average is not None:
        torch.save(average.state_dict(), tmp / "average.pt")
    write_json(tmp / "state.json", state)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def _write_predictions(run_dir: Path, model: Any, prep: Prepared, config: FineTuneConfig, accelerator: Any,
                       pad_id: int) -> dict[str, Any]:
    out_dir = run_dir / "predictions"
    out_dir.mkdir(exist_ok=True)
    headline: dict[str, Any] = {}
    splits = list(dict.fromkeys([config.eval_split, *config.predict_splits]))
    for split in splits:
        rows = prep.rows(split)
        if not len(rows):
            continue
        probs, _ = _evaluate(model, prep, rows, accelerator=accelerator, pad_id=pad_id, batch_size=config.batch_size)
        part = prep.frame.iloc[rows]
        if prep.token_task:
            frame = pd.DataFrame({"item_id": part["item_id"].astype(str).to_numpy(),
                                  "tags": part["label"].tolist(),
                                  "pred_tags": [decode_tags(p, prep.labels) for p in probs],
                                  "token_probs": [p.astype(np.float32).tolist() for p in probs]})
            if "original_label" in part.columns:
                frame["original_tags"] = part["original_label"].tolist()
        else:
            frame = pd.DataFrame({"item_id": part["item_id"].astype(str).to_numpy(), "label": part["label"].tolist(),
                                  "pred": [prep.labels[k] for k in probs.argmax(1)]})
            if "original_label" in part.columns:
                frame["original_label"] = part["original_label"].tolist()
            for j, c in enumerate(prep.labels):
                frame[f"prob_{c}"] = probs[:, j]
        frame.to_parquet(out_dir / f"{split}.parquet", index=False)
        labelled = np.array([prep.y[i] is not None for i in rows])
        if labelled.any() and split == config.eval_split:
            scored = _scores(prep, rows[labelled], [probs[i] for i in np.flatnonzero(labelled)]
                             if prep.token_task else probs[labelled])
            headline.update({f"{split}_{k}": v for k, v in scored.items()})
    return headline


def _environment(run_dir: Path, config: FineTuneConfig, device: str, world: int,
                 resolved: dict[str, Any]) -> dict[str, Any]:
    import importlib.metadata as md

    def version(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    snapshot = {}
    meta = run_dir / "snapshot.json"  # written by the launcher: the store snapshot this run trains on
    if meta.exists():
        snapshot = json.loads(meta.read_text())
    return {"python": platform.python_version(), "platform": platform.platform(), "device": device,
            **resolved, "processes": world, "seed": config.seed,
            "libraries": {n: version(n) for n in ("torch", "transformers", "accelerate", "peft", "numpy", "pandas",
                                                  "label-workbench")}, **snapshot}


def _on_term(signum: int, frame: Any) -> None:
    global _cancelled
    _cancelled = True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.train", description="Run one fine-tune.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir.resolve()
    os.chdir(run_dir)
    signal.signal(signal.SIGTERM, _on_term)
    main_process = os.environ.get("RANK", "0") == "0"
    try:
        run(run_dir, resume=args.resume)
        return 0
    except KeyboardInterrupt as exc:
        if main_process:
            set_status(run_dir, "cancelled", finished=time.time(), message=str(exc) or "cancelled on request")
        return 0
    except BaseException as exc:  # the run's outcome must reach status.json whatever happened
        if main_process:
            traceback.print_exc()
            message = str(exc) if isinstance(exc, WorkbenchError) else f"{type(exc).__name__}: {exc}"
            set_status(run_dir, "failed", finished=time.time(), message=message, hint=hint_for(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
