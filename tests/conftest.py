"""Shared fixtures: the real datasets beside the checkout, and stores on temporary files."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WORKBENCH_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    """Scans in tests (and the notebooks and servers they start, which inherit the variable) cache under a folder of
    this session, never the user's ``~/.cache/label-workbench``: tiny test models' vectors piled up there, a folder
    per session. A test that needs a cache of its own still sets ``WORKBENCH_CACHE`` itself."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("workbench-cache")
        patch.setenv("WORKBENCH_CACHE", str(path))
        yield path


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
    # `vocab=`: transformers 5 ignores `vocab_file=` here without a word, and every word became [UNK]
    tokenizer = transformers.BertTokenizerFast(vocab=str(folder / "vocab.txt"))
    assert tokenizer.tokenize("where is my order") == ["where", "is", "my", "order"], "the tiny vocabulary is unread"
    config = transformers.BertConfig(vocab_size=len(dict.fromkeys(vocab)), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    transformers.set_seed(0)
    model = transformers.BertModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory) -> Path:
    """A tiny random RoBERTa with a byte-level BPE tokenizer learnt here from sample texts (no download).

    The other tokenizer family taggers meet: words after a space carry a prefix (``Ġin``), unlike BERT's.
    """
    import tokenizers
    import transformers

    from workbench.sample import make_classification_sample, make_ner_sample

    folder = tmp_path_factory.mktemp("tiny-roberta")
    texts = [*make_classification_sample(n_items=400)["text"],
             *(" ".join(t) for t in make_ner_sample(n_sentences=100)["tokens"])]
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=600, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    tokenizer = transformers.RobertaTokenizerFast(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))
    config = transformers.RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=130,
                                        pad_token_id=1, bos_token_id=0, eos_token_id=2)
    transformers.set_seed(0)
    transformers.RobertaModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def hub_cache(tmp_path, tiny_bert, monkeypatch) -> Path:
    """A Hugging Face cache holding ``test-org/tiny-st``: the tiny BERT as a sentence-transformers model
    (mean pooling), laid out as ``huggingface-cli download`` leaves it. Child processes see it too."""
    import huggingface_hub.constants

    cache = tmp_path / "hf-cache"
    repo = cache / "models--test-org--tiny-st"
    snapshot = repo / "snapshots" / "0123abcd"
    shutil.copytree(tiny_bert, snapshot)
    (snapshot / "1_Pooling").mkdir()
    (snapshot / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return snapshot


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the store tests: ``WORKBENCH_TEST_POSTGRES_URL`` if set, else a throwaway
    cluster started here on 127.0.0.1 (as the ``postgres`` user when the tests run as root). Fails, with
    what to install, when PostgreSQL is missing."""
    url = os.environ.get("WORKBENCH_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    bindir = _postgres_bin()
    if bindir is None:
        pytest.fail("the store tests also run on PostgreSQL and need its server programs: install them "
                    "(Debian: apt-get install -y postgresql; `make test` does it) or set "
                    "WORKBENCH_TEST_POSTGRES_URL=postgresql://user@host:port/db")
    root = Path(tempfile.mkdtemp(prefix="wb-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "workbench",
                    "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
                              "-o", f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=200",
                              "start"], capture_output=True, text=True)
    if started.returncode != 0:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        pytest.fail(f"could not start PostgreSQL: {started.stderr.strip()} {log[-2000:]}")
    try:
        yield f"postgresql://workbench@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def fresh_postgres_database(server_url: str) -> str:
    """Create an empty database on the server; returns its URL."""
    import sqlalchemy as sa

    name = f"wb_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url.replace("postgresql://", "postgresql+psycopg://", 1),
                              isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """Where a test's store lives: a SQLite file, or a fresh database on the test PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "labels.db")
    return fresh_postgres_database(request.getfixturevalue("postgres_server"))
