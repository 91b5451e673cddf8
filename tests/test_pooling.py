"""Mean pooling for sentence classifiers on sentence-embedding models (workbench.pooling)."""

from __future__ import annotations

import json

import pytest

from workbench.config import FineTuneConfig
from workbench.errors import DataError
from workbench.models import default_model_path
from workbench.pooling import CONFIG_FLAG, apply_pooling, choose_pooling, sentence_transformers_pooling


def test_auto_reads_the_sentence_transformers_pooling_config(tmp_path, tiny_bert):
    assert sentence_transformers_pooling(default_model_path()) == "mean"  # the packaged MiniLM
    assert choose_pooling("auto", task="text-classification", model_dir=default_model_path()) == "mean"
    assert sentence_transformers_pooling(tiny_bert) is None
    assert choose_pooling("auto", task="text-classification", model_dir=tiny_bert) == "cls"
    assert choose_pooling("auto", task="text-classification", model_dir="some/hub-id") == "cls"
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    assert choose_pooling("auto", task="text-classification", model_dir=tmp_path) == "cls"
    assert choose_pooling("mean", task="text-classification", model_dir=tiny_bert) == "mean"
    assert choose_pooling("mean", task="token-classification", model_dir=tiny_bert) == "cls"  # nothing to pool
    with pytest.raises(DataError, match="pooling='max'"):
        FineTuneConfig(pooling="max")


def test_the_mean_pooler_ignores_padding_and_survives_save_and_load(tiny_bert, tmp_path):
    import torch
    import transformers

    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2).eval()
    apply_pooling(model, "mean")
    assert getattr(model.config, CONFIG_FLAG) == "mean"
    assert not any("pooler" in name for name, _ in model.named_parameters())
    ids = torch.tensor([[2, 5, 6, 3]])
    padded = torch.tensor([[2, 5, 6, 3, 0, 0, 0], [2, 7, 3, 0, 0, 0, 0]])
    mask = (padded != 0).long()
    with torch.no_grad():
        alone = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        batch = model(input_ids=padded, attention_mask=mask).logits
        hidden = model.bert(input_ids=ids).last_hidden_state
    assert torch.allclose(alone[0], batch[0], atol=1e-5)  # padding changes nothing
    assert torch.allclose(model.bert(input_ids=ids).pooler_output, hidden.mean(dim=1), atol=1e-6)
    model.save_pretrained(tmp_path)
    loaded = apply_pooling(transformers.AutoModelForSequenceClassification.from_pretrained(str(tmp_path))).eval()
    with torch.no_grad():
        again = loaded(input_ids=padded, attention_mask=mask).logits
    assert torch.allclose(again, batch, atol=1e-5)
    plain = transformers.AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2)
    assert apply_pooling(plain) is plain and type(plain.bert.pooler).__name__ == "BertPooler"  # no flag: kept


def test_a_classifier_without_a_pooler_reads_the_mean_as_its_first_token(tmp_path):
    """DistilBERT, RoBERTa, MPNet (all-mpnet-base-v2), DeBERTa and ModernBERT heads read the first token's vector
    and have no pooler to replace: before, pooling='mean' (auto on their sentence-transformers models) refused
    them."""
    import copy

    import torch
    import transformers

    transformers.set_seed(0)
    model = transformers.DistilBertForSequenceClassification(transformers.DistilBertConfig(
        vocab_size=40, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=32)).eval()
    untouched = copy.deepcopy(model)
    assert apply_pooling(model, "mean") is model and getattr(model.config, CONFIG_FLAG) == "mean"
    apply_pooling(model, "mean")  # twice: one hook
    ids = torch.tensor([[2, 5, 6, 3]])
    padded = torch.tensor([[2, 5, 6, 3, 0, 0, 0], [2, 7, 3, 0, 0, 0, 0]])
    mask = (padded != 0).long()
    with torch.no_grad():
        alone = model(input_ids=ids).logits
        batch = model(input_ids=padded, attention_mask=mask).logits
        states = untouched.distilbert(input_ids=ids).last_hidden_state
        first = model.distilbert(input_ids=ids).last_hidden_state
        by_hand = untouched.classifier(torch.relu(untouched.pre_classifier(states.mean(dim=1))))
    assert torch.allclose(first[:, 0], states.mean(dim=1), atol=1e-6)  # the mean, where the head looks
    assert torch.allclose(first[:, 1:], states[:, 1:])  # the other tokens as they were
    assert torch.allclose(alone, by_hand, atol=1e-5) and torch.allclose(alone[0], batch[0], atol=1e-5)
    model.save_pretrained(tmp_path)
    loaded = apply_pooling(transformers.AutoModelForSequenceClassification.from_pretrained(str(tmp_path))).eval()
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=padded, attention_mask=mask).logits, batch, atol=1e-5)
