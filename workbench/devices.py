"""Which device work runs on, and how host batches get there."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.errors import DataError, require

#: Device settings a fine-tune config may ask for ("auto": the GPU when one is visible).
DEVICES = ("auto", "cpu", "cuda")


def default_device() -> str:
    """``"cuda"`` when torch sees a CUDA GPU, else ``"cpu"``."""
    torch = require("torch", extra="train", purpose="choosing a device")
    return "cuda" if torch.cuda.is_available() else "cpu"  # type: ignore[attr-defined]


def resolve_device(device: str) -> str:
    """Turn a config's ``device`` setting into ``"cuda"`` or ``"cpu"``.

    Raises
    ------
    DataError
        For a name outside :data:`DEVICES`, or ``"cuda"`` where torch sees no GPU.
    """
    if device not in DEVICES:
        raise DataError(f"device={device!r}: use one of {list(DEVICES)}")
    if device == "auto":
        return default_device()
    if device == "cuda" and default_device() != "cuda":
        torch: Any = require("torch", extra="train", purpose="choosing a device")
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise DataError(f"device='cuda' but torch {torch.__version__} ({build}) sees no CUDA GPU; use device='auto' "
                        "or 'cpu', or check the driver and CUDA_VISIBLE_DEVICES")
    return device


def configure_cuda(device: Any) -> None:
    """Settings for running our models on ``device`` when it is a CUDA GPU (nothing for the CPU); call
    before the first forward pass.

    cuDNN's attention backend, which SDPA prefers on Hopper for batches without padding, builds an
    execution plan for every new sequence length: with length-bucketed batches (a new width almost
    every step) it cost 14 ms of CPU per forward call and 17 ms per backward on an H100 (torch 2.11),
    against microseconds of GPU work, and made MiniLM fine-tuning 5x slower than Trainer. The flash and
    memory-efficient kernels need no plan.
    """
    if not str(device).startswith("cuda"):
        return
    torch: Any = require("torch", extra="train", purpose="configuring the GPU")
    torch.backends.cuda.enable_cudnn_sdp(False)


def to_device(arrays: dict[str, np.ndarray], device: Any) -> dict[str, Any]:
    """Host arrays as tensors on ``device``.

    On CUDA each array goes through pinned memory so the copy is asynchronous
    (``non_blocking`` from pageable memory silently waits for the copy); on the
    CPU the tensors share the arrays' memory.

    Parameters
    ----------
    arrays : dict of str to numpy.ndarray
        A padded batch, e.g. ``input_ids`` ``(batch, width)``.
    device : str or torch.device

    Returns
    -------
    dict of str to torch.Tensor
        Same keys and shapes.
    """
    torch: Any = require("torch", extra="train", purpose="moving batches to a device")
    if str(device).startswith("cuda"):
        return {k: torch.from_numpy(v).pin_memory().to(device, non_blocking=True) for k, v in arrays.items()}
    return {k: torch.from_numpy(v) for k, v in arrays.items()}
