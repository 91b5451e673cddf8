"""What every benchmark shares: where the data is, how the machine is named, how results are recorded."""

from __future__ import annotations

import os
import platform
from pathlib import Path

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


def oof_options(mode: str, dataset: str, overrides: list[str]) -> dict:
    """``out_of_fold_probs`` keywords for a benchmark's ``--mode``: none for ``quick``; for ``finetune``, the
    dataset's recipe from ``finetune_accuracy.RECIPES`` with ``FIELD=JSON`` overrides (``--finetune-set``)."""
    if mode == "quick":
        return {}
    if mode != "finetune":
        raise SystemExit(f"--mode {mode!r}: use quick or finetune")
    import json

    from finetune_accuracy import RECIPES

    if dataset not in RECIPES:
        raise SystemExit(f"--mode finetune: no fine-tune recipe for {dataset!r} in finetune_accuracy.RECIPES")
    params = dict(RECIPES[dataset][3])
    for item in overrides:
        field, _, value = item.partition("=")
        params[field] = json.loads(value)
    return {"mode": "finetune", "progress": False, **params}


def mode_flags(mode: str, overrides: list[str]) -> str:
    """The ``--mode`` / ``--finetune-set`` part of a benchmark's command line, for its section in BENCHMARKS.md."""
    return "" if mode == "quick" else f" --mode {mode}" + "".join(f" --finetune-set {s}" for s in overrides)
