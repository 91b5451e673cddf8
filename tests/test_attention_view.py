"""The attention view: a head per fold over token vectors finds the one token that decides the class."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.attention_view import fit_attention_oof
from workbench.crossval import out_of_fold_probs, pool_views, stratified_folds
from workbench.errors import Cancelled, DataError


def _key_token_states(n: int = 400, dim: int = 16, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Texts of 5-40 noise tokens, one of them (anywhere) the class's key token: the mean over the tokens dilutes it
    by the text's length, attention can pick it out."""
    rng = np.random.default_rng(seed)
    keys = rng.normal(size=(2, dim)) * 3
    y = rng.integers(0, 2, n)
    states = []
    for label in y:
        tokens = rng.normal(size=(int(rng.integers(5, 41)), dim))
        tokens[rng.integers(len(tokens))] = keys[label]
        states.append(tokens.astype(np.float16))
    return states, y


def test_the_head_learns_where_to_look_and_keeps_the_callers_random_state():
    states, y = _key_token_states()
    splits = stratified_folds(y, 5, 0)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    probs = fit_attention_oof(states, y, 2, splits, seed=0, epochs=30)
    assert torch.equal(torch.rand(3), expected_next)  # the user's torch random state is as it was
    assert probs.shape == (len(y), 2) and np.allclose(probs.sum(1), 1)
    accuracy = (probs.argmax(1) == y).mean()
    # the mean over the tokens, the embedding view's reading of the same vectors, for comparison
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    means = np.stack([s.astype(np.float32).mean(0) for s in states])
    mean_accuracy = (cross_val_predict(LogisticRegression(max_iter=1000), means, y, cv=5) == y).mean()
    assert accuracy >= 0.95 and accuracy > mean_accuracy + 0.05, (accuracy, mean_accuracy)
    again = fit_attention_oof(states, y, 2, splits, seed=0, epochs=30)
    assert np.array_equal(probs, again)  # determined by the seed


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_folds_heads_train_together_yet_no_head_reads_its_own_test_labels(precision):
    """The heads share batches: every label of a fold's test items may change and that fold's probabilities must not,
    to the bit."""
    states, y = _key_token_states(n=200)
    splits = stratified_folds(y, 5, 0)
    probs = fit_attention_oof(states, y, 2, splits, seed=0, epochs=3, precision=precision)
    test = splits[2][1]
    flipped = y.copy()
    flipped[test] = 1 - flipped[test]
    again = fit_attention_oof(states, flipped, 2, splits, seed=0, epochs=3, precision=precision)
    assert np.array_equal(probs[test], again[test])
    others = np.setdiff1d(np.arange(len(y)), test)
    assert not np.allclose(probs[others], again[others])  # the other folds' heads did train on those labels


def test_bf16_products_learn_as_float32_does_and_auto_follows_the_cpu(monkeypatch):
    import workbench.embed as E

    states, y = _key_token_states()
    splits = stratified_folds(y, 5, 0)
    full = fit_attention_oof(states, y, 2, splits, seed=0, epochs=30, precision="fp32")
    half = fit_attention_oof(states, y, 2, splits, seed=0, epochs=30, precision="bf16")
    assert not np.array_equal(full, half)  # the products did run in bf16
    assert np.abs(full - half).max() < 0.1 and (half.argmax(1) == y).mean() >= 0.95
    assert abs((half.argmax(1) == y).mean() - (full.argmax(1) == y).mean()) <= 0.01
    for native, same in ((True, half), (False, full)):
        monkeypatch.setattr(E, "cpu_has_bf16", lambda native=native: native)
        assert np.array_equal(fit_attention_oof(states, y, 2, splits, seed=0, epochs=30), same)
    with pytest.raises(DataError, match="unknown precision 'fp8' for the attention view"):
        fit_attention_oof(states, y, 2, splits, precision="fp8")


def test_stopping_the_attention_views_training():
    import threading

    states, y = _key_token_states(n=100)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled, match="the attention view's training was stopped"):
        fit_attention_oof(states, y, 2, stratified_folds(y, 5, 0), stop=stop)
    with pytest.raises(DataError, match="item 3 is in no test fold; every item must be in one"):
        fit_attention_oof(states, y, 2, [(np.arange(3, 100), np.arange(3))])


def test_a_set_too_large_for_the_memory_is_refused_before_any_work(monkeypatch):
    import workbench.attention_view as A

    assert A.available_memory() > 2**20  # read from /proc/meminfo on Linux
    states, y = _key_token_states(n=300)  # about 6,700 tokens of 16 floats: 0.4 MiB padded in float32
    monkeypatch.setattr(A, "available_memory", lambda: 2**19)
    with pytest.raises(DataError, match=r"the attention view would hold 0\.0 GiB of token vectors for 300 texts "
                                        r"\([\d,]+ tokens\) and 0\.0 GiB is available: scan without it"):
        fit_attention_oof(states, y, 2, stratified_folds(y, 5, 0), precision="fp32")
    monkeypatch.setattr(A, "available_memory", lambda: None)  # unknown: no check
    assert fit_attention_oof(states, y, 2, stratified_folds(y, 5, 0), epochs=1).shape == (300, 2)


def test_a_bf16_copy_of_the_token_vectors_needs_half_the_memory(tiny_bert, monkeypatch):
    import workbench.attention_view as A

    states, y = _key_token_states(n=300)
    padded = sum(int(max(len(states[i]) for i in rows)) * len(rows)
                 for rows in A._length_batches(np.arange(300), np.array([len(s) for s in states]), A.BATCH_SIZE))
    # between the two rules (the copy in at most half the memory): float32 is short, bf16 fits
    monkeypatch.setattr(A, "available_memory", lambda: 2 * padded * 16 * 3)
    assert A.memory_shortage(states, precision="fp32").startswith("the attention view would hold")
    assert A.memory_shortage(states, precision="bf16") is None
    assert fit_attention_oof(states, y, 2, stratified_folds(y, 5, 0), epochs=1, precision="bf16").shape == (300, 2)
    with pytest.raises(DataError, match="the attention view would hold"):
        fit_attention_oof(states, y, 2, stratified_folds(y, 5, 0), epochs=1, precision="fp32")
    # auto follows the CPU, as the training's products do
    import workbench.embed as E

    for native in (True, False):
        monkeypatch.setattr(E, "cpu_has_bf16", lambda native=native: native)
        assert (A.memory_shortage(states) is None) == native
    # the estimate before the forward pass: the float16 vectors kept and twice the copy, 2 + 2 * 2 bytes a value in
    # bf16 against 2 + 2 * 4 in float32. 300 texts of 6, 82 (cut to 64) and 4 tokens at hidden size 32: about 7,400
    # tokens, so 1.4 MB against 2.4 MB
    texts = ["where is my order", "refund please " * 40, "card broken"] * 100
    monkeypatch.setattr(A, "available_memory", lambda: 2_000_000)
    assert A.expected_shortage(texts, model=tiny_bert, max_length=64, precision="bf16") is None
    assert A.expected_shortage(texts, model=tiny_bert, max_length=64, precision="fp32").startswith(
        "the attention view would need about")
    with pytest.raises(DataError, match="unknown precision 'fp64' for the attention view"):
        A.memory_shortage(states, precision="fp64")
    # the plan before a forward pass reads the heads' precision: bf16 keeps the view where float32 leaves it out
    from workbench.crossval import plan_views

    def plan(precision: str) -> tuple[tuple[str, ...], str | None]:
        return plan_views(None, n_items=300, embedded=texts, model=tiny_bert, max_length=64, precision=precision)

    assert plan("bf16") == (("embedding", "tfidf", "attention"), None)
    with pytest.warns(UserWarning, match="this scan leaves the attention view out"):
        views, why = plan("fp32")
    assert views == ("embedding", "tfidf") and why is not None and why.startswith("the attention view would need")


def test_a_scan_plans_its_views_in_its_heads_precision(tmp_path, tiny_bert, monkeypatch):
    import workbench.scan as S
    from workbench import load_dataset
    from workbench.sample import make_classification_sample

    asked: list[str] = []
    real = S.plan_views
    monkeypatch.setattr(S, "plan_views", lambda *a, **kw: asked.append(kw["precision"]) or real(*a, **kw))
    table = load_dataset(make_classification_sample(n_items=60, seed=3), id_column="id")
    for precision in ("fp32", "auto"):
        S.scan(table, model=tiny_bert, cache_dir=tmp_path, precision=precision, progress=False,
               views=("embedding", "tfidf"))
    assert asked == ["fp32", "auto"]  # fp32 keeps the heads in float32, the rest leave them to the CPU


def test_three_views_are_pooled_and_an_uninformative_one_gets_no_weight():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 600)
    onehot = np.eye(3)[y]

    def view(signal: float) -> np.ndarray:
        logits = signal * onehot + rng.normal(size=onehot.shape)
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    strong, weak, noise = view(3.0), view(1.0), view(0.0)
    _, weights, _ = pool_views([weak, noise, strong], y)
    assert len(weights) == 3 and abs(sum(weights) - 1) < 1e-9
    assert weights[2] >= 0.5 and weights[1] == 0.0, weights
    pooled2, weights2, t2 = pool_views([weak, strong], y)
    assert weights2[0] + weights2[1] == pytest.approx(1) and weights2[1] > weights2[0]


def test_out_of_fold_probs_adds_the_attention_view_when_asked():
    states, y = _key_token_states(n=200)
    labels = ["yes" if v else "no" for v in y]
    texts = [f"text {i}" for i in range(len(y))]
    embeddings = np.stack([s.astype(np.float32).mean(0) for s in states])
    oof = out_of_fold_probs(texts, labels, views=("embedding", "attention"), embeddings=embeddings,
                            token_states=states, progress=False)
    assert set(oof.views) == {"embedding", "attention"} and oof.params["views"] == ["embedding", "attention"]
    assert set(oof.params["pool_weights"]) == {"embedding", "attention"}
    assert oof.params["pool_weights"]["attention"] > 0.5
    with pytest.raises(DataError, match=r"unknown view\(s\) \['atention'\]; use some of \['embedding', 'tfidf', "
                                        r"'attention'\]"):
        out_of_fold_probs(texts, labels, views=("atention",), progress=False)
    with pytest.raises(DataError, match="token states for 199 items but 200 labels"):
        out_of_fold_probs(texts, labels, views=("attention",), token_states=states[:-1], progress=False)


def test_a_scan_has_the_attention_view_by_default(tmp_path, tiny_bert):
    from workbench import LabelStore, load_dataset
    from workbench.sample import make_classification_sample
    from workbench.scan import scan

    with LabelStore.open(tmp_path / "labels.db") as store:
        store.import_dataset(load_dataset(make_classification_sample(n_items=150, seed=3), id_column="id"))
        result = scan(store, model=tiny_bert, cache_dir=tmp_path / "cache", precision="fp32", progress=False)
        assert set(result.oof.views) == {"embedding", "tfidf", "attention"}
        assert store.active_scan()["params"]["views"] == ["embedding", "tfidf", "attention"]
        assert result.report.overall["views_left_out"] == {}
        # cold, the sentence embeddings and the token vectors came from one forward pass; warm, from the caches
        import workbench.embed as E

        calls: list[int] = []
        real = E.Encoder.encode_with_tokens

        def counting(self, texts, **kw):
            calls.append(len(texts))
            return real(self, texts, **kw)

        E.Encoder.encode_with_tokens = counting
        try:
            again = scan(store, model=tiny_bert, cache_dir=tmp_path / "cache", precision="fp32", progress=False,
                         views=("embedding", "tfidf", "attention"))
            assert calls == []
            fresh = scan(store, model=tiny_bert, cache_dir=tmp_path / "other-cache", precision="fp32",
                         progress=False, views=("embedding", "tfidf", "attention"))
            assert len(calls) == 1  # one pass over the distinct texts for both caches
        finally:
            E.Encoder.encode_with_tokens = real
        assert np.allclose(again.oof.pred_probs, result.oof.pred_probs)
        assert np.allclose(fresh.oof.pred_probs, result.oof.pred_probs, atol=1e-6)
        with pytest.raises(DataError, match=r"views=\['embedding', 'attention'\] choose quick mode's own views; "
                                            "this scan makes its probabilities with fine-tunes: drop views"):
            scan(store, mode="finetune", views=("embedding", "attention"), progress=False)


def test_a_default_scan_goes_without_the_attention_view_past_its_size_or_memory(tmp_path, tiny_bert, monkeypatch):
    import workbench.attention_view as A
    import workbench.crossval as C
    import workbench.embed as E
    from workbench import LabelStore, load_dataset
    from workbench.report import report_notes
    from workbench.sample import make_classification_sample
    from workbench.scan import scan

    token_layers: list[object] = []
    real = E.Encoder.encode_with_tokens
    monkeypatch.setattr(E.Encoder, "encode_with_tokens", lambda self, texts, **kw: token_layers.append(
        kw.get("token_layers")) or real(self, texts, **kw))
    options = {"model": tiny_bert, "cache_dir": tmp_path / "cache", "precision": "fp32", "progress": False}
    with LabelStore.open(tmp_path / "labels.db") as store:
        store.import_dataset(load_dataset(make_classification_sample(n_items=150, seed=3), id_column="id"))
        # more labelled texts than a default scan takes the view for: no token vectors are even computed
        monkeypatch.setattr(C, "ATTENTION_DEFAULT_MAX_ITEMS", 100)
        result = scan(store, **options)
        assert set(result.oof.views) == {"embedding", "tfidf"} and len(token_layers) == 1 and not token_layers[0]
        why = result.report.overall["views_left_out"]["attention"]
        assert why.startswith("a default scan of more than 100 labelled texts goes without it")
        assert result.oof.params["attention_left_out"] == why
        assert f"without the attention view: {why}" in report_notes(result.report.overall)
        monkeypatch.setattr(C, "ATTENTION_DEFAULT_MAX_ITEMS", 50_000)
        # short of memory for the head's token vectors: a default scan warns and goes on with the other two views.
        # Here the shortage shows only in the exact check on the vectors (the estimate before the forward pass has
        # its own test below)
        monkeypatch.setattr(A, "expected_shortage", lambda *args, **kwargs: None)
        monkeypatch.setattr(A, "available_memory", lambda: 2**16)
        with pytest.warns(UserWarning, match=r"the attention view would hold .* GiB is available: this scan leaves "
                                             "the attention view out"):
            result = scan(store, **options)
        assert set(result.oof.views) == {"embedding", "tfidf"}
        assert store.active_scan()["params"]["views"] == ["embedding", "tfidf"]
        assert result.oof.params["attention_left_out"].startswith("the attention view would hold")
        assert result.report.overall["views_left_out"] == {"attention": result.oof.params["attention_left_out"]}
        # asked for by name, the view is not dropped: the shortage is an error, and the store keeps its last scan
        before = store.active_scan()["scan_id"]
        with pytest.raises(DataError, match="the attention view would hold"):
            scan(store, views=("embedding", "tfidf", "attention"), **options)
        assert store.active_scan()["scan_id"] == before


def test_a_memory_shortage_is_foreseen_before_the_forward_pass(tmp_path, tiny_bert, monkeypatch):
    import workbench.attention_view as A
    import workbench.embed as E
    import workbench.vocab as V
    from workbench import LabelStore, load_dataset
    from workbench.sample import make_classification_sample
    from workbench.scan import scan

    texts = ["where is my order", "refund please " * 40, "card broken"] * 100
    # plenty of memory: the bound at max_length settles it and nothing is tokenised
    monkeypatch.setattr(V, "sample_token_counts", lambda *args, **kwargs: pytest.fail("tokenised for nothing"))
    assert A.expected_shortage(texts, model=tiny_bert) is None
    monkeypatch.undo()
    monkeypatch.setattr(A, "available_memory", lambda: 2**20)
    # 300 texts of 6, 82 (cut to 64) and 4 tokens: about 25 KiB of vectors per text at hidden size 32, 10 bytes a float
    why = A.expected_shortage(texts, model=tiny_bert, max_length=64, precision="fp32")
    assert why == ("the attention view would need about 0.0 GiB for the token vectors of 300 texts (about 7,400 "
                   "tokens, estimated from 300 of the texts) and 0.0 GiB is available: scan without it "
                   "(views=('embedding', 'tfidf')) or scan a sample of the texts")
    assert A.expected_shortage(texts[:20], model=tiny_bert, max_length=64) is None  # 20 texts fit in 1 MiB
    monkeypatch.setattr(A, "available_memory", lambda: None)  # unknown: no estimate
    assert A.expected_shortage(texts, model=tiny_bert) is None

    passes: list[object] = []
    real = E.Encoder.encode_with_tokens
    monkeypatch.setattr(E.Encoder, "encode_with_tokens", lambda self, texts, **kw: passes.append(
        kw.get("token_layers")) or real(self, texts, **kw))
    monkeypatch.setattr(A, "available_memory", lambda: 2**16)
    options = {"model": tiny_bert, "cache_dir": tmp_path / "cache", "precision": "fp32", "progress": False}
    with LabelStore.open(tmp_path / "labels.db") as store:
        store.import_dataset(load_dataset(make_classification_sample(n_items=150, seed=3), id_column="id"))
        scan(store, views=("embedding", "tfidf"), **options)
        before = store.active_scan()["scan_id"]
        passes.clear()
        # asked for by name: an error before the forward pass, and the store keeps its last scan
        with pytest.raises(DataError, match=r"^the attention view would need about 0\.0 GiB for the token vectors "
                                            r"of 150 texts \(about [\d,]+ tokens, estimated from 150 of the texts\)"):
            scan(store, views=("embedding", "tfidf", "attention"), **{**options, "cache_dir": tmp_path / "fresh"})
        assert passes == [] and store.active_scan()["scan_id"] == before
        # a default scan leaves the view out before the forward pass: no token vectors are computed or cached
        with pytest.warns(UserWarning, match=r"^the attention view would need .* GiB is available: this scan leaves "
                                             "the attention view out$"):
            result = scan(store, **{**options, "cache_dir": tmp_path / "fresh"})
        assert passes == [()] and set(result.oof.views) == {"embedding", "tfidf"}
        assert result.oof.params["attention_left_out"].startswith("the attention view would need about")
        assert result.report.overall["views_left_out"] == {"attention": result.oof.params["attention_left_out"]}
        assert store.active_scan()["params"]["views"] == ["embedding", "tfidf"]
        keys = [k.read_text() for k in (tmp_path / "fresh").rglob("key.txt")]
        assert keys and not [k for k in keys if "|tokens=" in k]  # sentence vectors cached, token vectors not
    # out_of_fold_probs computing the token vectors itself estimates them first too
    monkeypatch.setattr(E, "embed_with_tokens", lambda *args, **kwargs: pytest.fail("forward pass before the estimate"))
    with pytest.raises(DataError, match="the attention view would need about"):
        out_of_fold_probs(texts, ["a", "b", "c"] * 100, views=("tfidf", "attention"), progress=False)
