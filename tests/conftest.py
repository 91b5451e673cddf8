"""Shared fixtures: the real datasets beside the checkout, and stores on temporary files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WORKBENCH_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; a test that needs it fails (never skips) when it is missing."""
    if not (SHARED_DATA / "README.md").exists():
        pytest.fail(f"the shared datasets are missing: expected {SHARED_DATA} (set WORKBENCH_SHARED_DATA to "
                    "their folder)")
    return SHARED_DATA


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "labels.db"


@pytest.fixture
def sample_table():
    from workbench import load_dataset
    from workbench.sample import make_classification_sample

    return load_dataset(make_classification_sample(n_items=400, seed=1), id_column="id")


@pytest.fixture
def store(store_path, sample_table):
    from workbench import LabelStore

    s = LabelStore.open(store_path)
    s.import_dataset(sample_table)
    yield s
    s.close()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A tiny random BERT with a word-piece tokenizer, saved like a hub model: loads in milliseconds."""
    import transformers

    folder = tmp_path_factory.mktemp("tiny-bert")
    words = ("where is my order refund please card broken account password cancel new address invoice help "
             "the a to for and not it".split())
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"],
             *list("abcdefghijklmnopqrstuvwxyz0123456789#?!.,'")]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    config = transformers.BertConfig(vocab_size=len(dict.fromkeys(vocab)), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    transformers.set_seed(0)
    model = transformers.BertModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
