"""Look after the on-disk caches a scan writes: what they hold, and dropping what was used longest ago.

The embedding cache (:class:`workbench.embed.EmbeddingCache`) only ever adds: a scan of new texts writes
new shards, and the attention view's token vectors take about 8 KB per short text, ten times a sentence
vector. Nothing in a scan deletes them, since a re-scan of any dataset seen before should stay warm.
These functions let a user see the cost and cut it: :func:`describe_cache` lists every part of the cache,
:func:`prune_cache` removes the files used longest ago (by age, or down to a size). Each cache file's
modification time is its last use: loading a shard or a corpus entry sets it to now
(:func:`workbench.corpus_cache.mark_used`). A removed file only costs the next scan that needs it the time
to compute it again; nothing a user labelled lives here.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.errors import DataError

#: A writer's temporary file older than this (seconds) was left by a process that died mid-write.
STALE_TEMP_S = 3600.0
_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


@dataclass(frozen=True)
class CacheFile:
    """One file of the cache: ``part`` names the folder it belongs to (as :func:`describe_cache` lists it)."""

    path: Path
    part: str
    size: int
    last_used: float
    temporary: bool = False


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``cache_dir``, or :func:`workbench.embed.default_cache_dir` when None."""
    from workbench.embed import default_cache_dir

    return Path(cache_dir) if cache_dir is not None else default_cache_dir()


def list_cache_files(cache_dir: str | os.PathLike[str] | None = None) -> list[CacheFile]:
    """Every file a scan wrote under ``cache_dir`` (default :func:`workbench.embed.default_cache_dir`): embedding
    shards, corpus entries (TF-IDF features, neighbour lists) and writers' temporary files, oldest use first."""
    root = cache_root(cache_dir)
    found: list[CacheFile] = []
    for folder in sorted((root / "embeddings").glob("*/")) + sorted((root / "corpus").glob("*/")):
        part = f"{folder.parent.name}/{folder.name}"
        for path in folder.iterdir():
            temporary = path.name.startswith(".") and path.name.endswith(".tmp") or path.name.startswith(".tmp-")
            if not (temporary or path.suffix == ".npz"):
                continue  # key.txt and anything a user put there
            try:
                stat = path.stat()
            except OSError:
                continue  # removed by another process meanwhile
            found.append(CacheFile(path, part, stat.st_size, stat.st_mtime, temporary))
    return sorted(found, key=lambda f: f.last_used)


def _folder_settings(folder: Path) -> dict[str, str]:
    """What an embedding folder's ``key.txt`` says: the model key (with layers or tokens), max length, precision,
    attention."""
    try:
        lines = (folder / "key.txt").read_text().splitlines()
    except OSError:
        return {}
    settings = {"model": lines[0] if lines else ""}
    for line in lines[1:]:
        name, _, value = line.partition("=")
        settings[name] = value
    return settings


def _count_texts(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        try:
            with np.load(path, allow_pickle=False) as data:
                total += len(data["hashes"])
        except (OSError, ValueError, KeyError):
            continue  # a torn shard holds nothing a scan reads
    return total


def describe_cache(cache_dir: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """What the cache holds, one row per part.

    Returns
    -------
    pandas.DataFrame
        Columns ``part`` (folder under the cache root), ``holds`` (sentence vectors, token vectors, or a corpus
        kind: TF-IDF features, neighbour lists), ``model``, ``max_length``, ``precision``, ``files``, ``texts``
        (embedding parts: texts with vectors; empty for corpus parts), ``mb`` and ``last_used`` (a timestamp), the
        largest part first. Empty (with those columns) when nothing is cached.
    """
    files = list_cache_files(cache_dir)
    root = cache_root(cache_dir)
    rows = []
    for part in dict.fromkeys(f.part for f in files):
        mine = [f for f in files if f.part == part and not f.temporary]
        folder = root / part
        row: dict[str, object] = {"part": part, "files": len(mine), "mb": sum(f.size for f in mine) / 1e6,
                                  "last_used": pd.Timestamp(max((f.last_used for f in mine), default=0), unit="s")}
        if part.startswith("embeddings/"):
            settings = _folder_settings(folder)
            model = settings.get("model", "")
            row.update(holds="token vectors" if "|tokens=" in model else "sentence vectors",
                       model=model.split("|", 1)[0], max_length=settings.get("max_length", ""),
                       precision=settings.get("precision", ""), texts=_count_texts([f.path for f in mine]))
        else:
            row.update(holds=f"corpus: {folder.name}", model="", max_length="", precision="", texts=None)
        rows.append(row)
    columns = ["part", "holds", "model", "max_length", "precision", "files", "texts", "mb", "last_used"]
    table = pd.DataFrame(rows, columns=columns).astype({"texts": "Int64"})
    return table.sort_values("mb", ascending=False, kind="stable").reset_index(drop=True)


def parse_size(text: str) -> int:
    """Bytes from a size such as ``500M``, ``2G``, ``1.5GB`` or ``1000000`` (powers of 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), flags=re.IGNORECASE)
    if not match:
        raise DataError(f"cannot read the size {text!r}; write a number of bytes or one with a unit, e.g. 500M or 2G")
    return int(float(match[1]) * _UNITS[match[2].upper()])


def prune_cache(cache_dir: str | os.PathLike[str] | None = None, *, older_than_days: float | None = None,
                max_bytes: int | None = None, dry_run: bool = False) -> pd.DataFrame:
    """Remove the cache files used longest ago.

    Parameters
    ----------
    cache_dir : path, optional
        The cache root; default :func:`workbench.embed.default_cache_dir`.
    older_than_days : float, optional
        Remove every file not used for this many days.
    max_bytes : int, optional
        Then remove the files used longest ago until the rest take at most this many bytes (0: everything).
    dry_run : bool
        List what would go, remove nothing.

    Returns
    -------
    pandas.DataFrame
        One row per file removed (or, with ``dry_run``, to remove): ``part``, ``file``, ``mb``, ``last_used``, oldest
        use first, and ``not_removed``: None, or why the system refused (a cache shared read-only). Writers' temporary
        files older than :data:`STALE_TEMP_S` (left by a process that died mid-write) are always among them.

    Raises
    ------
    DataError
        Neither limit given, or a negative one.
    """
    if older_than_days is None and max_bytes is None:
        raise DataError("prune_cache needs older_than_days= (e.g. 30) or max_bytes= (e.g. 2 * 1024**3); "
                        "describe_cache() shows what the cache holds")
    if (older_than_days is not None and older_than_days < 0) or (max_bytes is not None and max_bytes < 0):
        raise DataError(f"older_than_days={older_than_days} and max_bytes={max_bytes} cannot be negative")
    now = time.time()
    files = list_cache_files(cache_dir)
    gone = [f for f in files if f.temporary and now - f.last_used > STALE_TEMP_S]
    kept = [f for f in files if not f.temporary]
    if older_than_days is not None:
        cutoff = now - older_than_days * 86400.0
        gone += [f for f in kept if f.last_used < cutoff]
        kept = [f for f in kept if f.last_used >= cutoff]
    if max_bytes is not None:
        total = sum(f.size for f in kept)
        while kept and total > max_bytes:  # oldest use first
            total -= kept[0].size
            gone.append(kept.pop(0))
    refused: dict[Path, str] = {}
    if not dry_run:
        for f in gone:
            try:
                f.path.unlink(missing_ok=True)
            except OSError as exc:  # a cache shared read-only: the rest still goes, and the table says which stayed
                refused[f.path] = exc.strerror or str(exc)
        _remove_empty_folders(cache_root(cache_dir), {f.part for f in gone})
    return pd.DataFrame({"part": [f.part for f in gone], "file": [f.path.name for f in gone],
                         "mb": [f.size / 1e6 for f in gone],
                         "last_used": [pd.Timestamp(f.last_used, unit="s") for f in gone],
                         "not_removed": [refused.get(f.path) for f in gone]})


def _remove_empty_folders(root: Path, parts: set[str]) -> None:
    """An embedding folder left with only its ``key.txt`` goes too; the next scan that needs it writes it again."""
    for part in parts:
        folder = root / part
        try:
            left = [p.name for p in folder.iterdir()]
            if set(left) <= {"key.txt"}:
                (folder / "key.txt").unlink(missing_ok=True)
                folder.rmdir()
        except OSError:
            continue  # another process wrote to it meanwhile, or it is gone already
