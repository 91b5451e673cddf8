"""Listing and pruning the scan's disk cache: what is there, the files used longest ago go first."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from workbench import cli
from workbench.cache_upkeep import STALE_TEMP_S, describe_cache, list_cache_files, parse_size, prune_cache
from workbench.corpus_cache import cached_arrays
from workbench.embed import EmbeddingCache
from workbench.errors import DataError

DAY = 86400.0


def _age(path, days: float) -> None:
    """Make a file look last used ``days`` ago."""
    when = time.time() - days * DAY
    os.utime(path, (when, when))


def _cache(root):
    """A sentence cache with two shards (10 days and 1 day old), a token cache with one (5 days), a corpus entry."""
    sentences = EmbeddingCache(root, model_key="m", max_length=8, precision="fp32", attention="sdpa")
    sentences.save(["a", "b"], np.ones((2, 3), dtype=np.float32))
    first = next(sentences.folder.glob("shard-*.npz"))
    _age(first, 10)
    sentences.save(["c"], np.zeros((1, 3), dtype=np.float32))
    second = next(p for p in sentences.folder.glob("shard-*.npz") if p != first)
    _age(second, 1)
    tokens = EmbeddingCache(root, model_key="m|tokens=top", max_length=8, precision="fp32", attention="sdpa")
    tokens.save(["a"], [np.ones((4, 3))])
    token_shard = next(tokens.folder.glob("shard-*.npz"))
    _age(token_shard, 5)
    cached_arrays("knn", "k" * 32, lambda: (np.arange(3),), cache_dir=root)
    corpus = next((root / "corpus" / "knn").glob("*.npz"))
    _age(corpus, 3)
    return sentences, first, second, tokens, token_shard, corpus


def test_describe_lists_every_part_with_its_texts_and_last_use(tmp_path):
    sentences, first, second, tokens, token_shard, corpus = _cache(tmp_path)
    table = describe_cache(tmp_path).set_index("holds")
    assert set(table.index) == {"sentence vectors", "token vectors", "corpus: knn"}
    assert table.loc["sentence vectors", "texts"] == 3 and table.loc["sentence vectors", "files"] == 2
    assert table.loc["token vectors", "texts"] == 1 and table.loc["token vectors", "model"] == "m"
    assert table.loc["sentence vectors", "max_length"] == "8" and table.loc["sentence vectors", "precision"] == "fp32"
    assert table.loc["sentence vectors", "last_used"].timestamp() == pytest.approx(second.stat().st_mtime)
    assert describe_cache(tmp_path / "nothing").empty


def test_loading_marks_a_shard_used_and_only_the_shards_that_supplied_vectors(tmp_path):
    sentences, first, second, *_ = _cache(tmp_path)
    before = first.stat().st_mtime
    sentences.load(["c"])  # the second shard holds it, the first does not
    assert first.stat().st_mtime == before
    assert time.time() - second.stat().st_mtime < 60
    corpus = next((tmp_path / "corpus" / "knn").glob("*.npz"))
    cached_arrays("knn", "k" * 32, lambda: pytest.fail("recomputed a cached entry"), cache_dir=tmp_path)
    assert time.time() - corpus.stat().st_mtime < 60


def test_prune_by_age_removes_the_files_not_used_since(tmp_path):
    sentences, first, second, tokens, token_shard, corpus = _cache(tmp_path)
    removed = prune_cache(tmp_path, older_than_days=4)
    assert sorted(removed["file"]) == sorted([first.name, token_shard.name])
    assert not first.exists() and not token_shard.exists() and second.exists() and corpus.exists()
    # the token folder has nothing left but its key: it goes; the next scan that needs it writes it again
    assert not tokens.folder.exists()
    assert set(sentences.load(["a", "b", "c"])) == {"c"}


def test_prune_to_a_size_removes_the_least_recently_used_first(tmp_path):
    sentences, first, second, tokens, token_shard, corpus = _cache(tmp_path)
    sizes = {p: p.stat().st_size for p in (first, second, token_shard, corpus)}
    # room for the two files used last (1 and 3 days ago), not for the third
    removed = prune_cache(tmp_path, max_bytes=sizes[second] + sizes[corpus] + 1)
    assert list(removed["file"]) == [first.name, token_shard.name]  # oldest use first
    dry = prune_cache(tmp_path, max_bytes=0, dry_run=True)
    assert sorted(dry["file"]) == sorted([corpus.name, second.name]) and second.exists() and corpus.exists()
    prune_cache(tmp_path, max_bytes=0)
    assert list_cache_files(tmp_path) == []


def test_prune_removes_writers_temporary_files_only_once_stale(tmp_path):
    sentences, *_ = _cache(tmp_path)
    stale = sentences.folder / ".tmp-0123.npz"
    fresh = sentences.folder / ".tmp-4567.npz"
    for path in (stale, fresh):
        path.write_bytes(b"half written")
    _age(stale, 2 * STALE_TEMP_S / DAY)
    removed = prune_cache(tmp_path, older_than_days=365)
    assert list(removed["file"]) == [stale.name] and fresh.exists()


def test_prune_needs_a_limit_and_sizes_are_read_with_units():
    with pytest.raises(DataError, match="older_than_days=.*or max_bytes="):
        prune_cache("/nonexistent")
    with pytest.raises(DataError, match="cannot be negative"):
        prune_cache("/nonexistent", older_than_days=-1)
    assert parse_size("500M") == 500 * 1024**2 and parse_size("1.5GB") == int(1.5 * 1024**3)
    assert parse_size("2g") == 2 * 1024**3 and parse_size("1000") == 1000 and parse_size("0") == 0
    with pytest.raises(DataError, match="cannot read the size 'lots'"):
        parse_size("lots")


def test_the_cache_command_lists_and_prunes(tmp_path, capsys):
    sentences, first, *_ = _cache(tmp_path)
    assert cli.main(["cache", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "sentence vectors of m (max_length=8, fp32): 2 file(s), 3 texts" in out
    assert "token vectors of m" in out and "corpus: knn" in out
    assert cli.main(["cache", "--dir", str(tmp_path), "--older-than", "7", "--dry-run"]) == 0
    assert "would remove 1 file(s)" in capsys.readouterr().out and first.exists()
    assert cli.main(["cache", "--dir", str(tmp_path), "--max-size", "0"]) == 0
    out = capsys.readouterr().out
    assert "removed 4 file(s)" in out and "(empty)" in out
    assert cli.main(["cache", "--dir", str(tmp_path), "--max-size", "lots"]) == 2
    assert "cannot read the size 'lots'" in capsys.readouterr().err


def test_a_file_the_system_refuses_to_remove_is_named_and_the_rest_still_go(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    sentences, first, second, tokens, token_shard, corpus = _cache(tmp_path)
    real_unlink = Path.unlink

    def unlink(self, missing_ok=False):
        if self == first:
            raise PermissionError(13, "Permission denied", str(self))
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    removed = prune_cache(tmp_path, max_bytes=0)
    assert removed.set_index("file").loc[first.name, "not_removed"] == "Permission denied"
    assert removed["not_removed"].isna().sum() == 3 and first.exists() and not second.exists()
    assert cli.main(["cache", "--dir", str(tmp_path), "--max-size", "0"]) == 0
    captured = capsys.readouterr()
    assert "removed 0 file(s)" in captured.out
    assert f"could not remove 1 file(s) ({sentences.folder.parent.name}/{sentences.folder.name}/{first.name}: " \
           "Permission denied)" in captured.err
