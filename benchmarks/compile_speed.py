"""torch.compile or not: our engine on SST-2 sentences with the packaged MiniLM, batch 16, both in one run.

Reports, per setting: the steady training speed (median samples/s of the logged windows in the second half,
past the compilation), the worker's time from start to finish (compilation included), and dev accuracy;
then the ratios and the number of steps after which compiling pays on this machine.

Usage: python benchmarks/compile_speed.py [--n 2000] [--epochs 1] [--seed 0] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SHARED, machine, record  # noqa: E402
from finetune_throughput import LR, ours_run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    train = pd.read_parquet(SHARED / "sst2" / "train.parquet").head(args.n)[["text", "label"]]
    dev = pd.read_parquet(SHARED / "sst2" / "validation.parquet")[["text", "label"]]
    rows = {"eager (default)": ours_run(train, dev, precision="auto", seed=args.seed, epochs=args.epochs)}
    # Inductor caches what it compiled: the first compiled run here starts from an empty cache (a first use),
    # the second from the one the first filled (every later run of the same model on this machine).
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # the worker inherits the launcher's environment
        for name in ("compile=True, empty compile cache", "compile=True, cache of the run above"):
            rows[name] = ours_run(train, dev, precision="auto", seed=args.seed, compile=True, epochs=args.epochs)
        del os.environ["TORCHINDUCTOR_CACHE_DIR"]
    for name, row in rows.items():
        print(name, row, flush=True)
    eager = rows["eager (default)"]
    steps = args.n * args.epochs / 16
    lines = [f"\n## torch.compile, {args.n} SST-2 sentences, MiniLM, batch 16, {args.epochs:g} epoch(s) "
             f"({dt.date.today().isoformat()})\n",
             f"Machine: {machine()}. Command: `python benchmarks/compile_speed.py --n {args.n} --epochs "
             f"{args.epochs:g} --seed {args.seed}`. Our engine with its defaults (bf16 autocast where the CPU has "
             f"it), learning rate {LR}, max length 128; `compile=True` wraps the training forward in "
             "`torch.compile(dynamic=True)`. Steady = median samples/s of the logged windows in the second half; "
             "compile cost = the compiled run's start-to-finish time minus what its steps would take at the eager "
             "speed and the eager run's other time; pays after = that cost / the time saved per step.\n",
             "| setting | steady train samples/s | ratio to eager | worker start to finish, s | compile cost, s | "
             "pays after, steps | dev accuracy |", "|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        saving = 16 / eager["steady_samples_per_s"] - 16 / row["steady_samples_per_s"]  # seconds per step
        cost = row["run_s"] - eager["run_s"] + steps * saving
        pays = "-" if row is eager else (f"{cost / saving:,.0f}" if saving > 0 else "never")
        lines.append(f"| {name} | {row['steady_samples_per_s']:.1f} | "
                     f"{row['steady_samples_per_s'] / eager['steady_samples_per_s']:.2f}x | {row['run_s']:.0f} | "
                     f"{'-' if row is eager else f'{cost:.0f}'} | {pays} | {row['dev_accuracy']:.3f} |")
    record("\n".join(lines) + "\n", write=not args.no_write)


if __name__ == "__main__":
    main()
