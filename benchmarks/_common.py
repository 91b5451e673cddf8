"""What every benchmark shares: where the data is, how the machine is named, how results are recorded."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WORKBENCH_SHARED_DATA", ROOT.parent / "shared" / "data"))


def machine() -> str:
    """A one-line description of this machine for BENCHMARKS.md, naming the CPU, and the GPU when one is visible."""
    return (f"{platform.machine()} ({cpu_name()}), {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{accelerator()}")


def cpu_name() -> str:
    """The CPU's model name: hosts of the same machine kind differ (embedding speed varied 2x between them)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU unknown"


def accelerator() -> str:
    """``"GPU <name>, torch <version>"`` when torch sees a CUDA GPU, else ``"CPU only (GPU not measured)"``."""
    try:
        import torch
    except ImportError:
        return "CPU only (GPU not measured)"
    if not torch.cuda.is_available():
        return f"CPU only (GPU not measured), torch {torch.__version__}"
    return f"GPU {torch.cuda.get_device_name(0)}, torch {torch.__version__}"


def record(text: str, *, write: bool = True) -> None:
    """Print a result section and append it to BENCHMARKS.md (unless ``write`` is False)."""
    print(text)
    if write:
        with open(ROOT / "BENCHMARKS.md", "a") as fh:
            fh.write(text)


def parse_fields(items: list[str]) -> dict:
    """``FIELD=JSON_VALUE`` command-line items (``--set``, ``--finetune-set``) as FineTuneConfig fields."""
    import json

    fields = {}
    for item in items:
        field, _, value = item.partition("=")
        fields[field] = json.loads(value)
    return fields


def add_mode_arguments(ap: argparse.ArgumentParser) -> None:
    """``--mode`` and ``--finetune-set``: how a benchmark makes its out-of-fold probabilities."""
    ap.add_argument("--mode", default="quick", choices=("quick", "finetune"),
                    help="quick, or finetune (k-fold fine-tunes with finetune_accuracy.py's recipe for the dataset)")
    ap.add_argument("--finetune-set", action="append", default=[], metavar="FIELD=JSON_VALUE",
                    help="--mode finetune: override a FineTuneConfig field of the recipe")


def oof_options(mode: str, dataset: str, overrides: list[str], *, embeddings: Any) -> dict:
    """``out_of_fold_probs`` keywords for a benchmark's ``--mode``: the precomputed ``embeddings`` for ``quick``;
    for ``finetune``, the dataset's recipe from ``finetune_accuracy.RECIPES`` with ``--finetune-set`` overrides."""
    if mode == "quick":
        return {"embeddings": embeddings, "progress": False}
    from finetune_accuracy import RECIPES

    if dataset not in RECIPES:
        raise SystemExit(f"--mode finetune: no fine-tune recipe for {dataset!r} in finetune_accuracy.RECIPES")
    return {"mode": "finetune", "progress": False, **RECIPES[dataset][3], **parse_fields(overrides)}


def mode_flags(mode: str, overrides: list[str]) -> str:
    """The ``--mode`` / ``--finetune-set`` part of a benchmark's command line, for its section in BENCHMARKS.md."""
    return "" if mode == "quick" else f" --mode {mode}" + "".join(f" --finetune-set {s}" for s in overrides)
