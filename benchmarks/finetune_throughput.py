"""Fine-tuning throughput on 2,000 SST-2 sentences with the packaged MiniLM, batch 16, 1 epoch, in one run:

(a) the common tutorial recipe: HF Trainer, padding="max_length", max length 128, fp32;
(b) the best stock Trainer settings found here that keep accuracy: dynamic padding, bf16 where the CPU
    supports it (and, reported separately, Trainer's own length grouping);
(c) ours: ``workbench.launch`` with the default ``FineTuneConfig`` (length-bucketed shuffled batches,
    dynamic padding, bf16 autocast, eager attention on CPU, dropout 0, frozen embeddings, fused AdamW);
(b'') not a stock setup: Trainer with its length grouping and bf16, loading the model with our default
    model settings (eager attention, dropout 0, frozen embeddings), to separate what the settings buy
    from what our loop buys.

Reports train samples/s, dev accuracy (SST-2 validation, 872 sentences), and the ratios c/a and c/b.
Usage: python benchmarks/finetune_throughput.py [--n 2000] [--seeds 0,1,2] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SHARED, machine, record  # noqa: E402

from workbench import load_dataset  # noqa: E402
from workbench.config import FineTuneConfig  # noqa: E402
from workbench.devices import default_device  # noqa: E402
from workbench.embed import choose_precision  # noqa: E402
from workbench.launch import launch  # noqa: E402
from workbench.models import resolve_model  # noqa: E402
from workbench.train import model_settings  # noqa: E402

LR = 5e-5


def trainer_run(train: pd.DataFrame, dev: pd.DataFrame, *, padding: str, bf16: bool, group: bool, seed: int,
                like_ours: bool = False) -> dict:
    """One Trainer fine-tune; ``like_ours`` loads the model with our default model settings (see (b''))."""
    import torch
    import transformers
    from datasets import Dataset

    path = str(resolve_model(None))
    labels = sorted(train["label"].unique())
    tok = transformers.AutoTokenizer.from_pretrained(path)
    ours = FineTuneConfig()
    settings = model_settings(ours, path, device=default_device()) if like_ours else {}
    model = transformers.AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels), **settings)
    if like_ours and ours.effective_freeze_embeddings():
        for p in model.bert.embeddings.parameters():
            p.requires_grad = False

    def encode(frame: pd.DataFrame) -> Dataset:
        enc = tok(frame["text"].tolist(), truncation=True, max_length=128,
                  padding="max_length" if padding == "max_length" else False)
        enc["labels"] = [labels.index(v) for v in frame["label"]]
        return Dataset.from_dict(dict(enc))

    args = dict(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=16, per_device_eval_batch_size=64,
                num_train_epochs=1, learning_rate=LR, bf16=bf16, use_cpu=not torch.cuda.is_available(),
                report_to=[], save_strategy="no", logging_steps=50, seed=seed, dataloader_num_workers=0)
    if group:
        args["train_sampling_strategy"] = "group_by_length"
    trainer = transformers.Trainer(model=model, args=transformers.TrainingArguments(**args),
                                   train_dataset=encode(train),
                                   data_collator=transformers.DataCollatorWithPadding(tok))
    t = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t
    # Compare with the label_ids predict() returns, not the dev labels in file order: with
    # train_sampling_strategy="group_by_length" Trainer's *evaluation* sampler is length-grouped and
    # shuffled too, so predictions come back permuted (this is why that row looked like chance before).
    out = trainer.predict(encode(dev))
    acc = float((out.predictions.argmax(1) == out.label_ids).mean())
    shutil.rmtree(args["output_dir"], ignore_errors=True)
    return {"samples_per_s": len(train) / seconds, "seconds": seconds, "dev_accuracy": acc}


def ours_run(train: pd.DataFrame, dev: pd.DataFrame, *, precision: str, seed: int, **fields: object) -> dict:
    """One run of our engine; ``fields``: FineTuneConfig fields over this benchmark's (e.g. ``compile=True``).

    Also returns ``steady_samples_per_s``, the median of the logged windows in the second half of training
    (past any warm-up or compilation), and ``run_s``, the worker's whole time from start to finish.
    """
    frame = pd.concat([train.assign(split="train"), dev.assign(split="validation")], ignore_index=True)
    table = load_dataset(frame)
    cfg = FineTuneConfig(**{"epochs": 1, "batch_size": 16, "learning_rate": LR, "max_length": 128,
                            "precision": precision, "warmup_ratio": 0.0, "weight_decay": 0.0, "log_every": 5,
                            "predict_splits": ["validation"], "seed": seed, **fields})
    t = time.perf_counter()
    run = launch(cfg, data=table, runs_dir=tempfile.mkdtemp())
    status = run.wait()
    if status["state"] != "finished":
        raise RuntimeError(run.logs())
    metrics = run.metrics()
    train_s = status["finished"] - status["started"]
    # samples/s over the training steps only (the worker logs each window of 5 steps), like Trainer.train()
    logged = metrics.dropna(subset=["samples_per_s"])
    train_only_s = float((5 * 16 / logged["samples_per_s"]).sum())
    samples = 5 * 16 * len(logged)
    shutil.rmtree(run.path.parent, ignore_errors=True)  # 15 runs would leave GBs of models in the temp folder
    return {"samples_per_s": samples / train_only_s, "seconds": train_only_s, "run_s": train_s,
            "wall_s": time.perf_counter() - t, "dev_accuracy": float(status["validation_accuracy"]),
            "steady_samples_per_s": float(logged["samples_per_s"].iloc[len(logged) // 2:].median())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seeds", default="0,1,2", help="each setup runs once per seed; means are reported")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    train = pd.read_parquet(SHARED / "sst2" / "train.parquet").head(args.n)[["text", "label"]]
    dev = pd.read_parquet(SHARED / "sst2" / "validation.parquet")[["text", "label"]]
    # bf16 where our "auto" precision picks it: a GPU that supports it, or a CPU with AVX-512 bf16
    bf16 = choose_precision("auto", default_device()) == "bf16"
    setups = {
        "(a) Trainer, max_length padding, fp32": lambda seed: trainer_run(
            train, dev, padding="max_length", bf16=False, group=False, seed=seed),
        "(b) Trainer, dynamic padding" + (", bf16" if bf16 else ""): lambda seed: trainer_run(
            train, dev, padding="dynamic", bf16=bf16, group=False, seed=seed),
        "(b') Trainer, dynamic padding, group_by_length" + (", bf16" if bf16 else ""): lambda seed: trainer_run(
            train, dev, padding="dynamic", bf16=bf16, group=True, seed=seed),
        "(c) ours" + (", bf16" if bf16 else ""): lambda seed: ours_run(train, dev, precision="auto", seed=seed),
        # Not a stock setup: Trainer given our model settings, to show what our loop adds beyond them.
        "(b'') Trainer, group_by_length" + (", bf16" if bf16 else "") + ", our model settings": lambda seed:
            trainer_run(train, dev, padding="dynamic", bf16=bf16, group=True, seed=seed, like_ours=True),
    }
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = {}
    for name, run in setups.items():
        per_seed = [run(seed) for seed in seeds]
        rows[name] = {key: float(np.mean([r[key] for r in per_seed])) for key in ("samples_per_s", "seconds",
                                                                              "dev_accuracy")}
        rows[name]["accuracies"] = [round(r["dev_accuracy"], 3) for r in per_seed]
    for k, v in rows.items():
        print(k, v, flush=True)
    a = rows["(a) Trainer, max_length padding, fp32"]
    # (b) = the fastest stock Trainer setup whose dev accuracy is within 1 pt of (a)'s.
    stock = ("(b)", "(b')")
    keeping = {k: v for k, v in rows.items() if k.startswith(stock) and v["dev_accuracy"] >= a["dev_accuracy"] - 0.01}
    b_name = max(keeping, key=lambda k: keeping[k]["samples_per_s"]) if keeping else "(b) Trainer, dynamic padding"
    b = rows.get(b_name) or next(v for k, v in rows.items() if k.startswith("(b)"))
    c = next(v for k, v in rows.items() if k.startswith("(c)"))
    machine_name = machine()
    lines = [f"\n## Fine-tuning throughput, {args.n} SST-2 sentences, MiniLM, batch 16, 1 epoch "
             f"({dt.date.today().isoformat()})\n",
             f"Machine: {machine_name}. "
             f"Command: `python benchmarks/finetune_throughput.py --n {args.n} --seeds {args.seeds}`. "
             f"Learning rate {LR}, dev = SST-2 validation (872). Means over seeds {seeds}.\n",
             "| setup | train samples/s | train s | dev accuracy (mean) | per seed |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['samples_per_s']:.1f} | {v['seconds']:.0f} | {v['dev_accuracy']:.3f} | {v['accuracies']} |"
              for k, v in rows.items()]
    lines.append(f"\nRatios of train samples/s: c/a = {c['samples_per_s'] / a['samples_per_s']:.2f}, "
                 f"c/b = {c['samples_per_s'] / b['samples_per_s']:.2f} with b = {b_name.split(')')[0]}) (the "
                 "fastest Trainer setup within 1 pt of (a)'s accuracy); dev accuracy c - a = "
                 f"{100 * (c['dev_accuracy'] - a['dev_accuracy']):+.1f} pt.")
    like = next((v for k, v in rows.items() if k.startswith("(b'')")), None)
    if like is not None:
        lines.append(f"Against Trainer given our model settings (b''): c/b'' = "
                     f"{c['samples_per_s'] / like['samples_per_s']:.2f}.\n")
    text = "\n".join(lines) + "\n"
    record(text, write=not args.no_write)


if __name__ == "__main__":
    main()
