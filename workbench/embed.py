"""Sentence embeddings from any encoder: length-sorted batches, dynamic padding, mean pooling, a disk cache.

Besides the sentence embedding (the last layer), several layers can be pooled in the same forward
pass: a scan's classifier view can read the top four (:data:`TOP_LAYERS`). The same pass can also keep
each text's token vectors, for the attention view (:func:`embed_with_tokens`); they are cached beside
the sentence embeddings, as float16, about ten times their size.

The cache is keyed by (model, max length, content hash), so a re-scan embeds only
texts that are new or changed. On a CPU with AVX-512 bf16 the encoder runs under
bf16 autocast (measured faster here, see BENCHMARKS.md); on CUDA under bf16 or fp16.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workbench.corpus_cache import mark_used
from workbench.devices import configure_cuda, default_device, to_device
from workbench.errors import Cancelled, DataError, require
from workbench.models import DEFAULT_MODEL, check_max_length, choose_attention, quiet_loading, resolve_model
from workbench.normalize import content_hash, text_list
from workbench.pooling import sentence_transformers_pooling

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: Texts embedded between two writes to the cache (a shard each): what a stopped scan keeps, at most this many lost.
SAVE_EVERY = 8192
# The top four layers, for a scan's classifier view when accuracy matters more than time
# (``scan(classifier_layers=TOP_LAYERS)``). Measured on MiniLM (out-of-fold accuracy of the embedding head,
# 5-fold), last layer vs top four: SST-2 0.807 vs 0.824, TREC 0.856 vs 0.889, emotion 0.673 vs 0.698,
# banking77 0.921 vs 0.921; it doubles the cross-validation time, so the scan's default stays the last
# layer (BENCHMARKS.md). All six layers were no better pooled and cost 1.5x more again.
TOP_LAYERS = (-4, -3, -2, -1)


def default_cache_dir() -> Path:
    """``$WORKBENCH_CACHE`` or ``~/.cache/label-workbench``."""
    return Path(os.environ.get("WORKBENCH_CACHE", Path.home() / ".cache" / "label-workbench"))


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AVX-512 BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def products_in_bf16(precision: str, *, owner: str) -> bool:
    """Whether a CPU head's matrix products run in bf16: ``auto`` where the CPU has native bf16
    (:func:`cpu_has_bf16`; emulated bf16 is slower than float32), ``bf16``, or ``fp32``.

    Parameters
    ----------
    precision : {"auto", "bf16", "fp32"}
    owner : str
        The head, for the error message (e.g. "the attention view").
    """
    if precision not in ("auto", "bf16", "fp32"):
        raise DataError(f"unknown precision {precision!r} for {owner}; use 'auto', 'bf16' or 'fp32'")
    return cpu_has_bf16() if precision == "auto" else precision == "bf16"


def choose_precision(precision: str, device: str) -> str:
    """Resolve ``auto`` to the precision that measured fastest for the device."""
    if precision not in PRECISIONS:
        raise DataError(f"unknown precision {precision!r}; use one of {list(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        torch = require("torch", extra="train", purpose="embedding texts")
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"  # type: ignore[attr-defined]
    return "bf16" if cpu_has_bf16() else "fp32"


def embedding_pooling(model_dir: str | Path) -> str:
    """How a model's token vectors become a text's: ``cls`` where its sentence-transformers pooling config
    says the first token (and not the mean), else ``mean``, which suits the packaged MiniLM and any plain
    encoder."""
    found = sentence_transformers_pooling(model_dir) if Path(model_dir).is_dir() else None
    return "cls" if found == "cls" else "mean"


class EmbeddingCache:
    """Vectors on disk by content hash, one folder per (model, max length, precision, attention).

    New vectors go to a new shard file, so two processes adding to the same cache
    never overwrite each other's work.
    """

    def __init__(self, root: str | os.PathLike[str], *, model_key: str, max_length: int, precision: str,
                 attention: str) -> None:
        # attention is part of the key: eager and SDPA round differently in bf16
        key = hashlib.sha256(f"{model_key}|{max_length}|{precision}|{attention}".encode()).hexdigest()[:16]
        self.folder = Path(root) / "embeddings" / key
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "key.txt").write_text(f"{model_key}\nmax_length={max_length}\nprecision={precision}\n"
                                             f"attention={attention}\n")

    def load(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors of those of ``hashes`` any shard holds; a shard that supplies one is marked used
        (:func:`workbench.corpus_cache.mark_used`)."""
        wanted = set(hashes)
        found: dict[str, np.ndarray] = {}
        for shard in sorted(self.folder.glob("shard-*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as data:
                    keys = data["hashes"]
                    # a shard of other texts (another dataset in the same cache) is passed over on its hashes
                    # alone: reading its vectors cost a warm scan 0.3 s per other dataset
                    if wanted.isdisjoint(keys.tolist()):
                        continue
                    vecs = data["vectors"]
                    # token vectors: one block of rows per text, ``lengths`` rows each
                    if "lengths" in data:
                        vecs = np.split(vecs, np.cumsum(data["lengths"])[:-1])
            except (OSError, ValueError, KeyError):
                continue  # a shard cut short by a crash is ignored and recomputed
            for h, v in zip(keys.tolist(), vecs):
                if h in wanted:
                    found[h] = v
            mark_used(shard)
        return found

    def save(self, hashes: Sequence[str], vectors: np.ndarray | Sequence[np.ndarray]) -> None:
        """Write one shard: ``vectors`` ``(n, d)``, kept as float32, or a ``(n_tokens_i, d)`` array per text, kept
        as float16 (token vectors, 10x the bytes of a sentence's)."""
        if not len(hashes):
            return
        tmp = self.folder / f".tmp-{uuid.uuid4().hex}.npz"
        if isinstance(vectors, np.ndarray):
            np.savez(tmp, hashes=np.array(list(hashes)), vectors=vectors.astype(np.float32))
        else:
            np.savez(tmp, hashes=np.array(list(hashes)), lengths=np.array([len(v) for v in vectors]),
                     vectors=np.concatenate(vectors).astype(np.float16))
        os.replace(tmp, self.folder / f"shard-{uuid.uuid4().hex}.npz")


class Encoder:
    """A loaded encoder that embeds texts; keep one around to embed several sets."""

    def __init__(self, model: str | os.PathLike[str] | None = None, *, max_length: int = 128,
                 device: str | None = None, precision: str = "auto", attention: str = "auto") -> None:
        transformers = require("transformers", extra="train", purpose="embedding texts")
        self.torch = require("torch", extra="train", purpose="embedding texts")
        self.path = resolve_model(model)
        self.model_key = DEFAULT_MODEL if model is None else str(model)
        self.device = device or default_device()
        configure_cuda(self.device)
        self.precision = choose_precision(precision, self.device)
        self.max_length = int(max_length)
        if self.max_length <= 0:
            raise DataError(f"max_length must be positive, got {max_length}")
        check_max_length(self.max_length, model)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.path))  # type: ignore[attr-defined]
        self.pooling = embedding_pooling(self.path)
        # eager on CPU: 10-20% more texts/s than SDPA here (see workbench.models.choose_attention)
        self.attention = choose_attention(attention, self.device)
        with quiet_loading():
            self.model = transformers.AutoModel.from_pretrained(  # type: ignore[attr-defined]
                str(self.path), attn_implementation=self.attention).to(self.device).eval()

    def check_layers(self, layers: Sequence[int]) -> tuple[int, ...]:
        """``layers`` as a tuple, or a DataError naming the model's range."""
        count = int(self.model.config.num_hidden_layers) + 1  # hidden_states: the embedding layer, then each layer
        out = tuple(int(i) for i in layers)
        bad = [i for i in out if not -count <= i < count]
        if not out or bad:
            raise DataError(f"layers {list(out)}: {self.model_key} has hidden states 0..{count - 1} (or -{count}..-1; "
                            "0 is the word-embedding layer, -1 the last)")
        return out

    def encode(self, texts: Sequence[str], *, layers: Sequence[int] = (-1,), batch_size: int = 64,
               progress: bool = True, stop: threading.Event | None = None,
               save: Callable[[np.ndarray, np.ndarray], None] | None = None) -> np.ndarray:
        """Embed texts.

        Parameters
        ----------
        texts : sequence of str
        layers : sequence of int
            Hidden states to pool (``-1`` the last layer, the sentence embedding; ``0`` the word embeddings).
            Several are concatenated in the order given, each pooled and L2-normalised on its own.
            Pooled as the model is read: the first token's vector for a sentence-transformers model whose
            pooling config says ``cls`` (BGE, for one), else the mean over the tokens.
        stop : threading.Event, optional
            Set from another thread to stop between two batches with :class:`~workbench.errors.Cancelled`.
        save : callable, optional
            ``save(positions, vectors)``: the input positions embedded since its last call, ``(m,)``, and their
            vectors, ``(m, len(layers) * hidden)``; called every :data:`SAVE_EVERY` texts and at the end, so that
            a stopped or interrupted run keeps what it embedded (the cache's writer).

        Returns
        -------
        numpy.ndarray
            ``(len(texts), len(layers) * hidden)`` float32, pooled vectors, in input order.
        """
        layers = self.check_layers(layers)
        return self.encode_with_tokens(texts, layers=layers, token_layers=(), batch_size=batch_size,
                                       progress=progress, stop=stop,
                                       save=None if save is None else lambda done, vecs, _: save(done, vecs))[0]

    def token_states(self, texts: Sequence[str], *, layers: Sequence[int] | None = None, batch_size: int = 64,
                     progress: bool = True, stop: threading.Event | None = None) -> list[np.ndarray]:
        """Each text's token vectors, for a head that reads tokens (:mod:`workbench.attention_view`).

        Parameters
        ----------
        texts : sequence of str
        layers : sequence of int, optional
            Hidden states averaged per token, each first scaled to unit length; default the top four layers (all of
            a model with fewer).
        stop : threading.Event, optional
            As :meth:`encode`.

        Returns
        -------
        list of numpy.ndarray
            ``(n_tokens_i, hidden)`` float16 per text, in input order, its special tokens included, no padding.
        """
        if layers is not None:
            layers = self.check_layers(layers)
        return self.encode_with_tokens(texts, layers=(), token_layers=layers, batch_size=batch_size,
                                       progress=progress, stop=stop)[1]

    def encode_with_tokens(self, texts: Sequence[str], *, layers: Sequence[int] = (-1,),
                           token_layers: Sequence[int] | None = None, batch_size: int = 64, progress: bool = True,
                           stop: threading.Event | None = None,
                           save: Callable[[np.ndarray, np.ndarray, list[np.ndarray]], None] | None = None,
                           ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Pooled vectors (:meth:`encode`) and token vectors (:meth:`token_states`) from one forward pass.

        Parameters
        ----------
        texts : sequence of str
        layers : sequence of int
            As :meth:`encode`; empty: no pooled vectors (a ``(n, 0)`` array).
        token_layers : sequence of int, optional
            As :meth:`token_states` (default the top four layers); empty: no token vectors (empty arrays).
        save : callable, optional
            ``save(positions, vectors, token_vectors)``, as :meth:`encode`'s, with the positions' token vectors.

        Returns
        -------
        vectors : numpy.ndarray
            ``(len(texts), len(layers) * hidden)`` float32.
        token_vectors : list of numpy.ndarray
            ``(n_tokens_i, hidden)`` float16 per text.
        """
        torch: Any = self.torch
        hidden = int(self.model.config.hidden_size)
        depth = int(self.model.config.num_hidden_layers)
        pooled_layers = self.check_layers(layers) if len(layers) else ()
        if token_layers is None:
            tokens = self.check_layers(TOP_LAYERS[-depth:])
        else:
            tokens = self.check_layers(token_layers) if len(token_layers) else ()
        union = tuple(dict.fromkeys((*pooled_layers, *tokens)))
        out = np.zeros((len(texts), len(pooled_layers) * hidden), dtype=np.float32)
        token_out: list[np.ndarray] = [np.zeros((0, hidden), dtype=np.float16)] * len(texts)
        unsaved: list[np.ndarray] = []

        def flush() -> None:
            if save is not None and unsaved:
                done = np.concatenate(unsaved)
                save(done, out[done], [token_out[i] for i in done])
            unsaved.clear()

        for idx, states, attn in self._hidden_states(texts, layers=union, batch_size=batch_size, progress=progress,
                                                     stop=stop):
            by_layer = dict(zip(union, states, strict=True))
            if pooled_layers:
                m = attn.unsqueeze(-1).float()
                pooled = [torch.nn.functional.normalize(
                    h[:, 0].float() if self.pooling == "cls" else (h.float() * m).sum(1) / m.sum(1).clamp(min=1.0),
                    dim=-1) for h in (by_layer[i] for i in pooled_layers)]
                out[idx] = torch.cat(pooled, 1).cpu().numpy()
            if tokens:
                mean = torch.stack([torch.nn.functional.normalize(by_layer[i].float(), dim=-1) for i in tokens]).mean(0)
                vectors = mean.cpu().numpy().astype(np.float16)
                for row, (i, length) in enumerate(zip(idx, attn.sum(1).tolist(), strict=True)):
                    token_out[i] = vectors[row, :int(length)]
            unsaved.append(idx)
            if sum(len(i) for i in unsaved) >= SAVE_EVERY:
                flush()
        flush()
        return out, token_out

    def _hidden_states(self, texts: Sequence[str], *, layers: tuple[int, ...], batch_size: int, progress: bool,
                       stop: threading.Event | None) -> Iterator[tuple[np.ndarray, list[Any], Any]]:
        """The asked layers' hidden states batch by batch, longest texts first, under inference mode and the
        encoder's autocast: ``(positions, states, mask)``, ``states`` one ``(b, width, hidden)`` tensor per layer,
        ``mask`` ``(b, width)``."""
        torch: Any = self.torch
        tqdm = require("tqdm.auto", extra="train", purpose="progress bars").tqdm  # type: ignore[attr-defined]
        n = len(texts)
        if n == 0:
            return
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, padding=False)["input_ids"]
        # Longest first: the first batch shows the memory peak at once, and batches pad little.
        order = np.argsort([-len(x) for x in ids], kind="stable")
        every_layer = layers != (-1,)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        device_type = "cuda" if self.device.startswith("cuda") else "cpu"
        pad = self.tokenizer.pad_token_id or 0
        bar = tqdm(total=n, desc="embedding", unit="text", disable=not progress, leave=False)
        try:
            with torch.inference_mode(), torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
                for start in range(0, n, batch_size):
                    if stop is not None and stop.is_set():
                        raise Cancelled(f"embedding stopped after {start} of {n} texts")
                    idx = order[start:start + batch_size]
                    width = max(len(ids[i]) for i in idx)
                    batch = np.full((len(idx), width), pad, dtype=np.int64)
                    mask = np.zeros((len(idx), width), dtype=np.int64)
                    for row, i in enumerate(idx):
                        batch[row, :len(ids[i])] = ids[i]
                        mask[row, :len(ids[i])] = 1
                    tensors = to_device({"input_ids": batch, "attention_mask": mask}, self.device)
                    input_ids, attn = tensors["input_ids"], tensors["attention_mask"]
                    result = self.model(input_ids=input_ids, attention_mask=attn, output_hidden_states=every_layer)
                    yield idx, ([result.hidden_states[i] for i in layers] if every_layer else
                                [result.last_hidden_state]), attn
                    bar.update(len(idx))
        finally:
            bar.close()


def embed_texts(texts: Sequence[str], *, model: str | os.PathLike[str] | None = None, max_length: int = 128,
                batch_size: int = 64, device: str | None = None, precision: str = "auto",
                cache_dir: str | os.PathLike[str] | None = None, use_cache: bool = True, progress: bool = True,
                encoder: Encoder | None = None, layers: Sequence[int] = (-1,),
                stop: threading.Event | None = None) -> np.ndarray:
    """Embed texts, reusing cached vectors for texts seen before with the same model and settings.

    Parameters
    ----------
    texts : sequence of str
    model : str or path, optional
        Any encoder; default the packaged all-MiniLM-L6-v2.
    max_length : int
        Tokens kept per text.
    precision : {"auto", "fp32", "bf16", "fp16"}
    cache_dir : path, optional
        Default :func:`default_cache_dir`.
    encoder : Encoder, optional
        An already loaded encoder (its model, length and precision win).
    layers : sequence of int
        Hidden states to pool and concatenate (see :meth:`Encoder.encode`); default the last layer.
    stop : threading.Event, optional
        Set from another thread to stop with :class:`~workbench.errors.Cancelled`; what was embedded by then is
        cached, as it is when the call is interrupted.

    Returns
    -------
    numpy.ndarray
        ``(len(texts), len(layers) * hidden)`` float32, each block L2-normalised.
    """
    if not len(layers):
        raise DataError("layers is empty: give at least one hidden state to pool (-1 is the last layer)")
    return _embed_cached(texts, layers=layers, token_layers=None, with_tokens=False, model=model,
                         max_length=max_length, batch_size=batch_size, device=device, precision=precision,
                         cache_dir=cache_dir, use_cache=use_cache, progress=progress, encoder=encoder, stop=stop)[0]


def embed_with_tokens(texts: Sequence[str], *, layers: Sequence[int] = (-1,), token_layers: Sequence[int] | None = None,
                      **options: Any) -> tuple[np.ndarray, list[np.ndarray]]:
    """:func:`embed_texts` and each text's token vectors (:meth:`Encoder.token_states`), both cached, from one forward
    pass over the texts missing from either cache.

    Parameters
    ----------
    texts : sequence of str
    layers : sequence of int
        As :func:`embed_texts`.
    token_layers : sequence of int, optional
        As :meth:`Encoder.token_states` (default the top four layers).
    **options
        :func:`embed_texts`'s (model, cache_dir, precision, progress, stop, ...).

    Returns
    -------
    vectors : numpy.ndarray
        ``(len(texts), len(layers) * hidden)`` float32.
    token_vectors : list of numpy.ndarray
        ``(n_tokens_i, hidden)`` float16 per text: about 0.8 KB per token, 15-20 KB per short text, so the cache
        grows ten times faster than with sentence vectors alone.
    """
    return _embed_cached(texts, layers=layers, token_layers=token_layers, with_tokens=True, **options)


def _embed_cached(texts: Sequence[str], *, layers: Sequence[int], token_layers: Sequence[int] | None,
                  with_tokens: bool, model: str | os.PathLike[str] | None = None, max_length: int = 128,
                  batch_size: int = 64, device: str | None = None, precision: str = "auto",
                  cache_dir: str | os.PathLike[str] | None = None, use_cache: bool = True, progress: bool = True,
                  encoder: Encoder | None = None, stop: threading.Event | None = None,
                  ) -> tuple[np.ndarray, list[np.ndarray]]:
    texts = text_list(texts)
    hashes = [content_hash(t, normalization="none") for t in texts]
    enc_settings = encoder
    model_key = enc_settings.model_key if enc_settings else (DEFAULT_MODEL if model is None else str(model))
    if enc_settings:
        max_length, prec, attention = enc_settings.max_length, enc_settings.precision, enc_settings.attention
    else:
        prec = choose_precision(precision, device or default_device())
        attention = choose_attention("auto", device or default_device())
    layers = tuple(int(i) for i in layers)
    # the last layer alone keeps the key it always had, so existing caches stay valid
    key = model_key if layers == (-1,) else f"{model_key}|layers={','.join(map(str, layers))}"
    pooling = enc_settings.pooling if enc_settings else embedding_pooling(resolve_model(model))
    if pooling != "mean":  # likewise mean-pooled vectors; a CLS-read model's own, cached before, are not these
        key += f"|pooling={pooling}"
    token_key = f"{model_key}|tokens={'top' if token_layers is None else ','.join(map(str, token_layers))}"

    def open_cache(cache_key: str) -> EmbeddingCache:
        return EmbeddingCache(cache_dir or default_cache_dir(), model_key=cache_key, max_length=max_length,
                              precision=prec, attention=attention)

    cache = open_cache(key) if use_cache and layers else None  # no layers: token vectors only
    token_cache = open_cache(token_key) if use_cache and with_tokens else None
    found = cache.load(hashes) if cache else {}
    found_tokens = token_cache.load(hashes) if token_cache else {}
    unique_missing = [h for h in dict.fromkeys(hashes)
                      if (layers and h not in found) or (with_tokens and h not in found_tokens)]
    if unique_missing:
        first = {h: i for i, h in reversed(list(enumerate(hashes)))}
        todo = [texts[first[h]] for h in unique_missing]
        encoder = encoder or Encoder(model, max_length=max_length, device=device, precision=prec)

        def save(done: np.ndarray, vectors: np.ndarray, token_vectors: list[np.ndarray]) -> None:
            # saved every few thousand texts: a long embedding stopped or interrupted keeps what it did; each cache
            # gets only what it lacked
            done_hashes = [unique_missing[i] for i in done]
            if cache:
                new = [j for j, h in enumerate(done_hashes) if h not in found]
                cache.save([done_hashes[j] for j in new], vectors[new])
            if token_cache:
                new = [j for j, h in enumerate(done_hashes) if h not in found_tokens]
                token_cache.save([done_hashes[j] for j in new], [token_vectors[j] for j in new])

        vectors, token_vectors = encoder.encode_with_tokens(
            todo, layers=layers, token_layers=token_layers if with_tokens else (), batch_size=batch_size,
            progress=progress, stop=stop, save=save if use_cache else None)
        found.update(zip(unique_missing, vectors))
        found_tokens.update(zip(unique_missing, token_vectors))
    dim = next(iter(found.values())).shape[0] if found and layers else 0
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if dim:
        for i, h in enumerate(hashes):
            out[i] = found[h]
    return out, [found_tokens[h] for h in hashes] if with_tokens else []


def take_layer(features: np.ndarray, *, layers: Sequence[int], layer: int = -1) -> np.ndarray:
    """One hidden state's block of features embedded with ``layers``.

    Parameters
    ----------
    features : numpy.ndarray
        ``(n, len(layers) * hidden)`` from :func:`embed_texts` or :meth:`Encoder.encode`.
    layers : sequence of int
        The ``layers`` they were made with.
    layer : int
        The block wanted (default the last layer: the sentence embedding).

    Returns
    -------
    numpy.ndarray
        ``(n, hidden)``, a contiguous copy.
    """
    order = [int(i) for i in layers]
    if layer not in order:
        raise DataError(f"layer {layer} is not among the embedded layers {order}")
    width = features.shape[1] // len(order)
    pos = order.index(layer)
    return np.ascontiguousarray(features[:, pos * width:(pos + 1) * width])


def embed_views(texts: Sequence[str], *, classifier_layers: Sequence[int] = (-1,),
                **options: Any) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's features and the sentence embeddings of the same texts, from one forward pass.

    Parameters
    ----------
    texts : sequence of str
    classifier_layers : sequence of int
        Hidden states for the classifier (default the last layer, i.e. the sentence embedding itself).
    **options
        Passed to :func:`embed_texts` (model, cache_dir, precision, progress, ...).

    Returns
    -------
    features : numpy.ndarray
        ``(n, len(classifier_layers) * hidden)``
    sentences : numpy.ndarray
        ``(n, hidden)`` the last layer, what neighbours, duplicates and outliers read.
    """
    layers = _with_sentence_layer(classifier_layers)
    return _split_views(embed_texts(texts, layers=layers, **options), classifier_layers)


def embed_views_with_tokens(texts: Sequence[str], *, classifier_layers: Sequence[int] = (-1,),
                            **options: Any) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """:func:`embed_views` and the texts' token vectors (:func:`embed_with_tokens`), from one forward pass.

    Returns
    -------
    features : numpy.ndarray
        ``(n, len(classifier_layers) * hidden)``
    sentences : numpy.ndarray
        ``(n, hidden)``
    token_vectors : list of numpy.ndarray
        ``(n_tokens_i, hidden)`` per text, the top four layers' (what :mod:`workbench.attention_view` reads).
    """
    both, token_vectors = embed_with_tokens(texts, layers=_with_sentence_layer(classifier_layers), **options)
    return (*_split_views(both, classifier_layers), token_vectors)


def _with_sentence_layer(classifier_layers: Sequence[int]) -> tuple[int, ...]:
    """The layers to embed for a classifier's: its own, and the last (the sentence embedding) after them."""
    classifier = tuple(int(i) for i in classifier_layers)
    return classifier if -1 in classifier else (*classifier, -1)


def _split_views(both: np.ndarray, classifier_layers: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """``both`` (embedded with :func:`_with_sentence_layer`'s layers) as the classifier's features and the sentence
    embeddings."""
    layers = _with_sentence_layer(classifier_layers)
    sentences = take_layer(both, layers=layers)
    return (both if layers == tuple(int(i) for i in classifier_layers) else both[:, :-sentences.shape[1]]), sentences
