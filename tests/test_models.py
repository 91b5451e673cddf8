"""Default model resolution works offline and fails clearly."""

from __future__ import annotations

import pytest

from workbench.errors import DataError, ModelNotFoundError
from workbench.models import DEFAULT_MODEL, choose_attention, resolve_model


def test_default_model_is_the_packaged_minilm():
    path = resolve_model(None)
    assert (path / "config.json").exists() and (path / "model.safetensors").exists()
    assert resolve_model(DEFAULT_MODEL) == path


def test_local_folder_without_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match="no weights"):
        resolve_model(tmp_path)


def test_local_folder_with_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert resolve_model(tmp_path) == tmp_path


def test_default_model_loads_offline_with_transformers():
    import transformers  # the 'train' extra; make test installs it
    path = resolve_model(None)
    tok = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModel.from_pretrained(path)
    out = model(**tok(["where is my order?"], return_tensors="pt"))
    assert out.last_hidden_state.shape[-1] == 384


def test_choose_attention_picks_per_device_and_keeps_an_explicit_choice():
    assert choose_attention("auto", "cpu") == "eager"  # SDPA's CPU backward is the slow one
    assert choose_attention("auto", "cuda:0") == "sdpa"
    assert choose_attention("sdpa", "cpu") == "sdpa" and choose_attention("eager", "cuda") == "eager"
    with pytest.raises(DataError, match="attention='flash'"):
        choose_attention("flash", "cpu")


def test_the_token_limit_is_read_from_the_config_file(tmp_path):
    from workbench.models import max_tokens

    assert max_tokens(None) == 512  # the packaged MiniLM
    (tmp_path / "model.safetensors").write_bytes(b"")
    roberta = '{"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}'
    (tmp_path / "config.json").write_text(roberta)
    assert max_tokens(tmp_path) == 512  # RoBERTa numbers positions after the padding index
    (tmp_path / "config.json").write_text('{"model_type": "t5"}')
    assert max_tokens(tmp_path) is None  # no limit stated: not checked
    (tmp_path / "config.json").write_text('{"model_type": "bert", "max_position_')
    with pytest.raises(ModelNotFoundError, match="config.json cannot be read as a model config"):
        max_tokens(tmp_path)


def test_the_width_of_the_token_vectors_is_read_under_each_family_s_name(tmp_path):
    from workbench.models import hidden_size

    assert hidden_size(None) == 384  # the packaged MiniLM
    (tmp_path / "model.safetensors").write_bytes(b"")
    cases = [('{"model_type": "distilbert", "dim": 768}', 768), ('{"d_model": 512}', 512), ('{"n_embd": 1024}', 1024),
             ('{"model_type": "bert"}', None), ('{"hidden_size": true}', None)]
    for config, width in cases:
        (tmp_path / "config.json").write_text(config)
        assert hidden_size(tmp_path) == width, config


def test_a_byte_level_tokenizer_reads_words_as_it_reads_running_text(tiny_roberta, tiny_bert):
    from workbench.models import load_tokenizer

    words = ["where", "is", "my", "order"]
    tagger = load_tokenizer(tiny_roberta, words=True)
    enc = tagger(words, is_split_into_words=True, add_special_tokens=False)
    # each word carries the word-start prefix it has in a sentence (the first as if a space went before it)
    assert enc["input_ids"] == tagger(" where is my order", add_special_tokens=False)["input_ids"]
    tokens, word_ids = tagger.convert_ids_to_tokens(enc["input_ids"]), enc.word_ids()
    starts = [t for i, t in enumerate(tokens) if i == 0 or word_ids[i] != word_ids[i - 1]]
    assert len(starts) == 4 and all(t.startswith("Ġ") for t in starts), tokens
    assert not load_tokenizer(tiny_roberta).add_prefix_space  # running text (text classification): as saved
    bert = load_tokenizer(tiny_bert, words=True)  # word pieces mark word starts themselves: nothing to change
    assert bert(words, is_split_into_words=True)["input_ids"] == bert(" ".join(words))["input_ids"]


def test_a_cached_hub_model_resolves_to_its_snapshot_folder_and_its_files_are_read(hub_cache):
    from workbench.embed import embedding_pooling
    from workbench.models import read_config
    from workbench.pooling import choose_pooling

    assert resolve_model("test-org/tiny-st") == hub_cache
    assert read_config("test-org/tiny-st")["model_type"] == "bert"
    # its sentence-transformers pooling config is found as in any folder: a classifier reads the mean
    assert choose_pooling("auto", task="text-classification", model_dir=resolve_model("test-org/tiny-st")) == "mean"
    assert embedding_pooling(resolve_model("test-org/tiny-st")) == "mean"
