"""Embeddings: dynamic padding gives the same vectors as one-by-one encoding, and the cache skips known texts."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import embed as E
from workbench.errors import DataError

TEXTS = ["where is my order", "refund please", "my card is broken and i want a refund for the order", "help",
         "where is my order"]


def test_encoder_shapes_and_unit_norm(tiny_bert):
    enc = E.Encoder(tiny_bert, precision="fp32", device="cpu")
    vecs = enc.encode(TEXTS, batch_size=2, progress=False)
    assert vecs.shape == (5, 32) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    # padding with longer neighbours in the batch must not change a text's vector
    alone = np.stack([enc.encode([t], progress=False)[0] for t in TEXTS])
    assert np.allclose(vecs, alone, atol=1e-5)
    assert np.allclose(vecs[0], vecs[4])


def test_loading_the_encoder_prints_nothing(tiny_bert, capfd):
    import transformers

    capfd.readouterr()
    E.Encoder(tiny_bert, precision="fp32", device="cpu")
    assert "Loading weights" not in capfd.readouterr().err  # a scan with progress=False stays quiet
    assert transformers.utils.logging.is_progress_bar_enabled()  # and the user's own setting is restored


def test_bf16_is_close_to_fp32(tiny_bert):
    fp32 = E.Encoder(tiny_bert, precision="fp32", device="cpu").encode(TEXTS, progress=False)
    bf16 = E.Encoder(tiny_bert, precision="bf16", device="cpu").encode(TEXTS, progress=False)
    assert (fp32 * bf16).sum(1).min() > 0.99


def test_eager_attention_on_cpu_gives_the_same_vectors_as_sdpa(tiny_bert):
    eager = E.Encoder(tiny_bert, precision="fp32", device="cpu")
    assert eager.attention == "eager" and eager.model.config._attn_implementation == "eager"
    sdpa = E.Encoder(tiny_bert, precision="fp32", device="cpu", attention="sdpa")
    assert np.allclose(eager.encode(TEXTS, progress=False), sdpa.encode(TEXTS, progress=False), atol=1e-5)


def _count_encoded(monkeypatch) -> list[int]:
    """From now on, how many texts each forward pass embeds (the cache's misses), :meth:`Encoder.encode_with_tokens`
    being what :meth:`Encoder.encode`, :meth:`Encoder.token_states` and the caching functions all call."""
    calls: list[int] = []
    real = E.Encoder.encode_with_tokens

    def counting(self, texts, **kw):
        calls.append(len(texts))
        return real(self, texts, **kw)

    monkeypatch.setattr(E.Encoder, "encode_with_tokens", counting)
    return calls


def test_cache_embeds_only_new_texts(tiny_bert, tmp_path, monkeypatch):
    first = E.embed_texts(TEXTS, model=tiny_bert, cache_dir=tmp_path, precision="fp32", device="cpu",
                          progress=False)
    calls = _count_encoded(monkeypatch)
    again = E.embed_texts(TEXTS, model=tiny_bert, cache_dir=tmp_path, precision="fp32", device="cpu",
                          progress=False)
    assert calls == [] and np.allclose(first, again)
    more = E.embed_texts([*TEXTS, "cancel the invoice"], model=tiny_bert, cache_dir=tmp_path, precision="fp32",
                         device="cpu", progress=False)
    assert calls == [1] and np.allclose(more[:5], first)
    # another max length is another cache
    E.embed_texts(TEXTS[:1], model=tiny_bert, cache_dir=tmp_path, precision="fp32", device="cpu", max_length=8,
                  progress=False)
    assert calls == [1, 1]


def test_a_stopped_embedding_keeps_what_it_embedded(tiny_bert, tmp_path, monkeypatch):
    """The cache is written every SAVE_EVERY texts, not once at the end: before, Ctrl-C (or a panel's Cancel) after
    minutes of embedding a large store kept nothing, and the next scan started over."""
    import threading

    from workbench.errors import Cancelled

    texts = [f"message number {i} about order {i * 7}" for i in range(12)]
    monkeypatch.setattr(E, "SAVE_EVERY", 4)
    stop = threading.Event()
    real_save = E.EmbeddingCache.save
    saved: list[int] = []

    def save_then_stop(self, hashes, vectors):
        real_save(self, hashes, vectors)
        saved.append(len(hashes))
        if len(saved) == 2:
            stop.set()  # as a Cancel click between two batches

    monkeypatch.setattr(E.EmbeddingCache, "save", save_then_stop)
    with pytest.raises(Cancelled, match="embedding stopped after 8 of 12 texts"):
        E.embed_texts(texts, model=tiny_bert, cache_dir=tmp_path, precision="fp32", device="cpu", progress=False,
                      batch_size=2, stop=stop)
    assert saved == [4, 4]
    calls = _count_encoded(monkeypatch)
    resumed = E.embed_texts(texts, model=tiny_bert, cache_dir=tmp_path, precision="fp32", device="cpu",
                            progress=False, batch_size=2)
    assert calls == [4]  # only the texts the stopped run had not reached
    fresh = E.Encoder(tiny_bert, precision="fp32", device="cpu").encode(texts, progress=False)
    assert np.allclose(resumed, fresh, atol=1e-5)


def test_a_model_read_by_its_first_token_is_embedded_by_its_first_token(tiny_bert, tmp_path):
    """A sentence-transformers folder whose pooling config says CLS (BGE, for one) is not mean-pooled."""
    import shutil

    import torch

    folder = tmp_path / "cls-model"
    shutil.copytree(tiny_bert, folder)
    cache = tmp_path / "cache"
    mean = E.embed_texts(TEXTS, model=folder, cache_dir=cache, precision="fp32", device="cpu", progress=False)
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text('{"word_embedding_dimension": 32, '
                                                      '"pooling_mode_cls_token": true, '
                                                      '"pooling_mode_mean_tokens": false}')
    enc = E.Encoder(folder, precision="fp32", device="cpu")
    assert enc.pooling == "cls" and E.Encoder(tiny_bert, device="cpu").pooling == "mean"
    with torch.inference_mode():
        states = enc.model(**enc.tokenizer(TEXTS, return_tensors="pt", padding=True)).last_hidden_state
    first = torch.nn.functional.normalize(states[:, 0], dim=-1).numpy()
    assert np.allclose(enc.encode(TEXTS, batch_size=2, progress=False), first, atol=1e-5)
    # the same folder's mean-pooled vectors, cached before the pooling config came, are not served for it
    cls = E.embed_texts(TEXTS, model=folder, cache_dir=cache, precision="fp32", device="cpu", progress=False)
    assert np.allclose(cls, first, atol=1e-5) and not np.allclose(cls, mean, atol=1e-3)


def test_a_damaged_cache_shard_is_ignored(tiny_bert, tmp_path):
    E.embed_texts(TEXTS, model=tiny_bert, cache_dir=tmp_path, precision="fp32", device="cpu", progress=False)
    shard = next((tmp_path / "embeddings").rglob("shard-*.npz"))
    shard.write_bytes(b"cut short")
    vecs = E.embed_texts(TEXTS, model=tiny_bert, cache_dir=tmp_path, precision="fp32", device="cpu",
                         progress=False)
    assert vecs.shape == (5, 32)


def test_the_cache_reads_no_vectors_of_a_shard_of_other_texts(tmp_path, monkeypatch):
    cache = E.EmbeddingCache(tmp_path, model_key="m", max_length=8, precision="fp32", attention="sdpa")
    cache.save(["a", "b"], np.ones((2, 3), dtype=np.float32))
    cache.save(["c"], [np.full((4, 3), 2.0)])  # token vectors of another dataset
    read = []
    real = np.lib.npyio.NpzFile.__getitem__
    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", lambda self, key: read.append(key) or real(self, key))
    found = cache.load(["b"])
    assert list(found) == ["b"] and np.array_equal(found["b"], np.ones(3))
    assert read.count("vectors") == 1
    found = cache.load(["a", "c"])
    assert np.array_equal(found["c"], np.full((4, 3), 2.0)) and found["c"].dtype == np.float16


def test_bad_settings(tiny_bert):
    with pytest.raises(DataError, match="precision"):
        E.choose_precision("int4", "cpu")
    with pytest.raises(DataError, match="max_length"):
        E.Encoder(tiny_bert, max_length=0, device="cpu")
    # past the position embeddings the model would fail on the first long text, deep in its embedding layer
    with pytest.raises(DataError, match="max_length=200 but .* at most 128 tokens"):
        E.Encoder(tiny_bert, max_length=200, device="cpu")
    E.Encoder(tiny_bert, max_length=128, device="cpu")
    # one string is one text, not a text per character; a non-string is named
    assert E.embed_texts("one text", model=tiny_bert, use_cache=False, progress=False, device="cpu").shape[0] == 1
    with pytest.raises(DataError, match="text 1 to embed is a NoneType"):
        E.embed_texts(["fine", None], model=tiny_bert, use_cache=False, progress=False, device="cpu")


def test_several_layers_in_one_pass(tiny_bert, tmp_path):
    enc = E.Encoder(tiny_bert, precision="fp32", device="cpu")
    last = enc.encode(TEXTS, progress=False)
    layers = (0, -2, -1)
    feats = enc.encode(TEXTS, layers=layers, batch_size=2, progress=False)
    assert feats.shape == (5, 3 * 32)
    # each layer's block is pooled and normalised on its own; the last one is the sentence embedding
    for pos in range(3):
        assert np.allclose(np.linalg.norm(feats[:, 32 * pos:32 * (pos + 1)], axis=1), 1, atol=1e-5)
    assert np.allclose(E.take_layer(feats, layers=layers), last, atol=1e-6)
    # another block: a tiny random BERT adds little to its word embeddings, so close, but not the same
    assert not np.allclose(E.take_layer(feats, layers=layers, layer=0), last, atol=1e-4)
    with pytest.raises(DataError, match="not among the embedded layers"):
        E.take_layer(feats, layers=layers, layer=1)
    n_states = enc.model.config.num_hidden_layers + 1
    with pytest.raises(DataError, match=f"hidden states 0..{n_states - 1}"):
        enc.encode(TEXTS, layers=(n_states,), progress=False)
    with pytest.raises(DataError, match="hidden states"):
        enc.encode(TEXTS, layers=(), progress=False)
    # the layer choice is part of the cache key: the same texts with other layers are embedded again
    one = E.embed_texts(TEXTS, model=tiny_bert, cache_dir=tmp_path, precision="fp32", device="cpu", progress=False)
    many = E.embed_texts(TEXTS, model=tiny_bert, cache_dir=tmp_path, precision="fp32", device="cpu",
                         progress=False, layers=layers)
    assert one.shape == (5, 32) and many.shape == (5, 96)
    assert np.allclose(many, feats, atol=1e-5) and np.allclose(one, last, atol=1e-5)
    assert len(list((tmp_path / "embeddings").iterdir())) == 2


def test_embed_views_gives_classifier_features_and_sentence_embeddings_from_one_pass(tiny_bert, tmp_path,
                                                                                       monkeypatch):
    opts = {"model": tiny_bert, "cache_dir": tmp_path, "precision": "fp32", "device": "cpu", "progress": False}
    sentences = E.embed_texts(TEXTS, **opts)
    asked: list[tuple[int, ...]] = []
    real = E.embed_texts

    def spy(texts, **kw):
        asked.append(kw["layers"])
        return real(texts, **kw)

    monkeypatch.setattr(E, "embed_texts", spy)
    feats, sent = E.embed_views(TEXTS, **opts)  # default: the sentence embedding serves both
    assert feats.shape == sent.shape == (5, 32) and np.allclose(feats, sentences, atol=1e-6)
    feats, sent = E.embed_views(TEXTS, classifier_layers=(1, 2), **opts)
    assert feats.shape == (5, 64) and np.allclose(sent, sentences, atol=1e-5)
    assert asked == [(-1,), (1, 2, -1)]  # the last layer rides along in the same pass


def test_token_vectors_are_cached_beside_the_sentence_embeddings(tiny_bert, tmp_path, monkeypatch):
    opts = dict(model=tiny_bert, cache_dir=tmp_path, precision="fp32", device="cpu", progress=False)
    sentences = E.embed_texts(TEXTS[:2], **opts)  # two texts already have sentence embeddings, no token vectors
    calls = _count_encoded(monkeypatch)
    features, sent, tokens = E.embed_views_with_tokens(TEXTS, **opts)
    assert calls == [len(set(TEXTS))]  # one forward pass for what either cache lacked, each text once
    assert np.allclose(sent[:2], sentences, atol=1e-5) and np.array_equal(features, sent)
    enc = E.Encoder(tiny_bert, precision="fp32", device="cpu")
    expected = enc.token_states(TEXTS, progress=False)
    assert [t.shape for t in tokens] == [t.shape for t in expected]
    assert all(t.dtype == np.float16 and np.allclose(t, e, atol=1e-3) for t, e in zip(tokens, expected))
    calls.clear()
    again = E.embed_with_tokens(TEXTS + ["one more text"], layers=(), **opts)
    assert calls == [1] and again[0].shape == (len(TEXTS) + 1, 0)
    assert all(np.array_equal(a, b) for a, b in zip(again[1], tokens))
    calls.clear()
    assert np.array_equal(E.embed_views(TEXTS, **opts)[1], sent) and calls == []
