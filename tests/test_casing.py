"""The word-case channel for taggers on uncased models (workbench.casing)."""

from __future__ import annotations

import pytest

from workbench.casing import (
    ALL_CAPS,
    CAPITALISED,
    CONFIG_FLAG,
    LOWER,
    add_case_channel,
    lowercases,
    use_case_feature,
    word_case_types,
    word_shape,
)
from workbench.config import FineTuneConfig
from workbench.errors import DataError


def test_word_shapes():
    assert [word_shape(w) for w in ["paris", "Paris", "EU", "U.S.", "1996", "-", "A", "iPhone", "McDonald"]] == [
        LOWER, CAPITALISED, ALL_CAPS, ALL_CAPS, LOWER, LOWER, CAPITALISED, LOWER, CAPITALISED]


def test_every_sub_token_gets_its_words_shape_and_specials_get_zero():
    assert word_case_types(["Peter", "went", "to", "NATO"], [None, 0, 0, 1, 2, 3, 3, None]) == [
        LOWER, CAPITALISED, CAPITALISED, LOWER, LOWER, ALL_CAPS, ALL_CAPS, LOWER]


@pytest.fixture(scope="module")
def tiny(tiny_bert):
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tiny_bert))
    model = transformers.AutoModelForTokenClassification.from_pretrained(str(tiny_bert), num_labels=3)
    return tokenizer, model


def test_auto_is_on_only_for_taggers_on_uncased_tokenizers(tiny):
    tokenizer, model = tiny
    assert lowercases(tokenizer)
    assert use_case_feature("auto", task="token-classification", tokenizer=tokenizer, model=model)
    assert not use_case_feature("auto", task="text-classification", tokenizer=tokenizer, model=model)
    assert not use_case_feature("off", task="token-classification", tokenizer=tokenizer, model=model)

    class Cased:
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [hash(text)]}

    assert not use_case_feature("auto", task="token-classification", tokenizer=Cased(), model=model)
    assert use_case_feature("on", task="token-classification", tokenizer=Cased(), model=model)


def test_on_needs_a_tagger_and_token_type_embeddings(tiny):
    tokenizer, model = tiny
    with pytest.raises(DataError, match="case_feature"):
        FineTuneConfig(case_feature="on")  # text classification
    with pytest.raises(DataError, match="case_feature='maybe'"):
        FineTuneConfig(task="token-classification", case_feature="maybe")

    class NoTypes:
        base_model_prefix = "model"

    with pytest.raises(DataError, match="token-type embeddings"):
        use_case_feature("on", task="token-classification", tokenizer=tokenizer, model=NoTypes())
    assert not use_case_feature("auto", task="token-classification", tokenizer=tokenizer, model=NoTypes())


def test_the_channel_grows_the_type_table_and_survives_save_and_load(tiny_bert, tmp_path):
    import torch
    import transformers

    model = transformers.AutoModelForTokenClassification.from_pretrained(str(tiny_bert), num_labels=3)
    for p in model.parameters():
        p.requires_grad = False
    old = model.bert.embeddings.token_type_embeddings.weight.detach().clone()
    add_case_channel(model)
    table = model.bert.embeddings.token_type_embeddings
    assert table.weight.shape[0] == 3 and table.weight.requires_grad
    assert torch.equal(table.weight[:2], old) and torch.equal(table.weight[2], old[1])
    model.save_pretrained(tmp_path)
    loaded = transformers.AutoModelForTokenClassification.from_pretrained(str(tmp_path))
    assert loaded.config.type_vocab_size == 3 and getattr(loaded.config, CONFIG_FLAG) is True
    ids = torch.tensor([[2, 5, 6, 3]])
    types = torch.tensor([[0, 1, 2, 0]])
    with torch.no_grad():
        model.eval()
        assert torch.allclose(model(input_ids=ids, token_type_ids=types).logits,
                              loaded.eval()(input_ids=ids, token_type_ids=types).logits, atol=1e-6)
