"""On-disk cache for what a scan computes from the texts alone: TF-IDF features and neighbour lists.

A re-scan after label fixes sees the same texts with other labels, so everything that does
not read the labels can be reused. Entries are keyed by a hash of every text (or of the
embedding matrix) and the settings; the few entries per kind used last are kept.
Arrays are stored with numpy / scipy's own formats, never pickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

KEEP_PER_KIND = 4


def corpus_key(texts: Sequence[str], *settings: object) -> str:
    """SHA-256 over every text (in order) and the settings."""
    h = hashlib.sha256(repr(settings).encode())
    for t in texts:
        h.update(hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest())
    return h.hexdigest()


def array_key(x: np.ndarray, *settings: object) -> str:
    """SHA-256 over an array's shape, dtype, bytes and the settings."""
    x = np.ascontiguousarray(x)
    h = hashlib.sha256(repr((x.shape, str(x.dtype), settings)).encode())
    h.update(x.tobytes())
    return h.hexdigest()


def cached_sparse(kind: str, key: str, compute: Callable[[], Any], *,
                  cache_dir: str | os.PathLike[str] | None) -> Any:
    """A scipy CSR matrix from the cache, or computed and stored. No caching when ``cache_dir`` is None."""
    import scipy.sparse as sp

    return _cached(kind, key, compute, cache_dir=cache_dir, load=lambda path: sp.load_npz(path).tocsr(),
                   save=lambda f, value: sp.save_npz(f, value, compressed=False))


def cached_arrays(kind: str, key: str, compute: Callable[[], tuple[np.ndarray, ...]], *,
                  cache_dir: str | os.PathLike[str] | None) -> tuple[np.ndarray, ...]:
    """A tuple of arrays from the cache, or computed and stored. No caching when ``cache_dir`` is None."""
    def load(path: Path) -> tuple[np.ndarray, ...]:
        with np.load(path, allow_pickle=False) as data:
            return tuple(data[f"a{i}"] for i in range(len(data.files)))

    def save(f: Any, value: tuple[np.ndarray, ...]) -> None:
        arrays: dict[str, Any] = {f"a{i}": a for i, a in enumerate(value)}
        np.savez(f, **arrays)

    result: tuple[np.ndarray, ...] = _cached(kind, key, compute, cache_dir=cache_dir, load=load, save=save)
    return result


def _cached(kind: str, key: str, compute: Callable[[], Any], *, cache_dir: str | os.PathLike[str] | None,
            load: Callable[[Path], Any], save: Callable[[Any, Any], None]) -> Any:
    """Load ``cache_dir/corpus/kind/key.npz``, or compute, store and return the value."""
    if cache_dir is None:
        return compute()
    path = Path(cache_dir) / "corpus" / kind / f"{key[:32]}.npz"
    if path.exists():
        try:
            value = load(path)
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a torn or foreign file: recompute
        else:
            mark_used(path)  # the newest few kept are the ones used last, not written last
            return value
    value = compute()
    _store(path, lambda f: save(f, value))
    return value


def mark_used(path: Path) -> None:
    """Set a cache file's modification time to now: the files used longest ago go first, here and in
    :func:`workbench.cache_upkeep.prune_cache`. A read-only cache is read all the same."""
    with contextlib.suppress(OSError):
        os.utime(path)


def _store(path: Path, write: Callable[[Any], None]) -> None:
    """Write to a temporary file and rename, so a reader never sees half a file; prune old entries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full or read-only disk: the value is still returned
        return
    entries = sorted(path.parent.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP_PER_KIND:]:
        old.unlink(missing_ok=True)
