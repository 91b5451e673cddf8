"""Fine-tuning in a child process with a tiny random BERT: lifecycle, files, cancel, kill and resume, errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from workbench import LabelStore, load_dataset
from workbench.cli import main
from workbench.config import FineTuneConfig
from workbench.errors import DataError
from workbench.launch import Run, fresh_run_id, launch, list_runs, load_run
from workbench.sample import make_classification_sample, make_ner_sample
from workbench.train import align_word_tags, bucketed_batches, hint_for


@pytest.fixture
def small_store(tmp_path):
    store = LabelStore.open(tmp_path / "labels.db")
    store.import_dataset(load_dataset(make_classification_sample(n_items=240, seed=4), id_column="id"))
    yield store
    store.close()


def _config(tiny_bert, **kw):
    base = dict(model=str(tiny_bert), epochs=2, batch_size=16, max_length=32, learning_rate=1e-3, log_every=2,
                precision="fp32")
    base.update(kw)
    return FineTuneConfig(**base)


def test_config_round_trips_and_validates(tmp_path):
    cfg = FineTuneConfig(epochs=2, lora={"r": 4}, class_weights="balanced", early_stopping_metric="f1_macro")
    again = FineTuneConfig.from_json(cfg.to_json(tmp_path / "c.json"))
    assert again == cfg and again.lora.r == 4
    with pytest.raises(DataError, match="max_length=0"):
        FineTuneConfig(max_length=0)
    with pytest.raises(DataError, match="unknown FineTuneConfig field"):
        FineTuneConfig.from_dict({"epoch": 3})
    with pytest.raises(DataError, match="dropout=1.5"):
        FineTuneConfig(dropout=1.5)
    with pytest.raises(DataError, match="dropout='lots'"):
        FineTuneConfig(dropout="lots")
    assert FineTuneConfig(dropout="0.2").dropout == 0.2  # typed into the panel's form
    assert FineTuneConfig().effective_dropout() == 0.0
    assert FineTuneConfig(task="token-classification").effective_dropout() is None
    with pytest.raises(DataError, match="attention='fast'"):
        FineTuneConfig(attention="fast")
    with pytest.raises(DataError, match="compile='yes'"):
        FineTuneConfig(compile="yes")
    assert hint_for(RuntimeError("BackendCompilerFailed: inductor raised CppCompileError: g++ not found")).startswith(
        "torch.compile failed")
    # a message that names what to fix needs no traceback
    assert hint_for(DataError("the evaluation split 'dev' is empty")) == "fix what the message names and launch again"
    assert "traceback" in hint_for(RuntimeError("CUDA error: an illegal memory access"))


def test_config_numbers_typed_as_text_become_numbers_and_others_are_named():
    """A form, a papermill parameter or hand-written JSON gives text; a TypeError from inside validation did not say
    which field."""
    cfg = FineTuneConfig(learning_rate="3e-5", batch_size="32", epochs=2, grad_accum=2.0, ema_decay="0.99",
                         lora={"r": "4", "target_modules": "query"}, augment={"copies": "1", "delete_rate": "0.1"})
    assert (cfg.learning_rate, cfg.batch_size, cfg.epochs, cfg.grad_accum, cfg.ema_decay) == (3e-5, 32, 2.0, 2, 0.99)
    assert type(cfg.batch_size) is int and type(cfg.epochs) is float
    assert cfg.lora.r == 4 and cfg.lora.target_modules == ["query"] and cfg.augment.copies == 1
    assert FineTuneConfig.from_json(cfg.to_json()) == cfg
    # flags typed as text (`--set compile=False`) were refused with "use True or False"
    flags = FineTuneConfig(compile="false", freeze_embeddings="False")
    assert flags.compile is False and flags.freeze_embeddings is False
    assert FineTuneConfig(freeze_embeddings="auto").freeze_embeddings == "auto"
    for kwargs, says in [({"learning_rate": "fast"}, "learning_rate='fast': use a number"),
                         ({"compile": "maybe"}, "compile='maybe': use True or False"),
                         ({"batch_size": 16.5}, "batch_size=16.5: use a whole number"),
                         ({"seed": True}, "seed=True: use a whole number"),
                         ({"weight_decay": -0.1}, "weight_decay=-0.1"),
                         ({"num_workers": -1}, "num_workers=-1"),
                         ({"lora": {"r": 0}}, "LoraConfig.r=0"),
                         ({"lora": {"dropout": 1.0}}, "LoraConfig.dropout=1.0"),
                         ({"lora": {"target_modules": []}}, "LoraConfig.target_modules=[]")]:
        with pytest.raises(DataError, match=re.escape(says)):
            FineTuneConfig(**kwargs)


def test_model_settings_set_attention_and_every_dropout_rate_the_model_has(tiny_bert):
    from workbench.train import model_settings

    assert model_settings(FineTuneConfig(dropout=None, attention="sdpa"), tiny_bert, device="cpu") == {
        "attn_implementation": "sdpa"}
    assert model_settings(FineTuneConfig(dropout=0.2), tiny_bert, device="cpu") == {
        "attn_implementation": "eager", "hidden_dropout_prob": 0.2, "attention_probs_dropout_prob": 0.2}
    assert model_settings(FineTuneConfig(task="token-classification"), tiny_bert, device="cpu") == {
        "attn_implementation": "eager"}


def test_bucketed_batches_are_shuffled_and_cover_everything():
    lengths = np.random.default_rng(0).integers(3, 100, 1000)
    batches = bucketed_batches(lengths, 16, seed=0, epoch=0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 10  # little padding
    firsts = [lengths[b].max() for b in batches[:20]]
    assert not (np.all(np.diff(firsts) <= 0) or np.all(np.diff(firsts) >= 0))  # not sorted across batches
    assert [b.tolist() for b in bucketed_batches(lengths, 16, seed=0, epoch=1)] != [b.tolist() for b in batches]


def test_launch_from_a_fresh_kernel_does_not_import_torch(small_store, tiny_bert, tmp_path):
    """A notebook's first launch() returned in 2.4-3.4 s: checking the model and the device imported transformers
    and torch into the kernel. The launch is timed in a new interpreter, where nothing is imported yet."""
    script = f"""
import sys, time
from workbench import LabelStore
from workbench.config import FineTuneConfig
from workbench.launch import launch
store = LabelStore.open({str(tmp_path / "labels.db")!r})
t = time.perf_counter()
run = launch(FineTuneConfig(model={str(tiny_bert)!r}, epochs=1, max_length=32), store=store,
             runs_dir={str(tmp_path / "runs")!r})
took = time.perf_counter() - t
run.cancel()
print(took, "torch" in sys.modules, "transformers" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    took, torch_loaded, transformers_loaded = done.stdout.split()[-3:]
    assert (torch_loaded, transformers_loaded) == ("False", "False")
    assert float(took) < 1.0


def test_a_cuda_run_where_torch_sees_no_gpu_fails_with_the_reason(small_store, tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the worker inherits it: no GPU, on any machine
    run = launch(_config(tiny_bert, device="cuda"), store=small_store, runs_dir=tmp_path / "runs")
    status = run.wait(timeout=120)
    assert status["state"] == "failed", status
    assert "device='cuda' but torch" in status["message"] and "sees no CUDA GPU" in status["message"]


def test_the_dict_fields_take_json_text_and_refuse_what_they_cannot_use():
    """LoRA and augmentation typed into the panel's form (or a papermill parameter) arrive as JSON text: it passed
    through as a string and failed in the worker; an unknown key raised a TypeError."""
    from workbench.config import AugmentConfig, LoraConfig

    cfg = FineTuneConfig(lora='{"r": 4, "alpha": 8}', augment='{"copies": 1, "swap_rate": 0.1}')
    assert cfg.lora == LoraConfig(r=4, alpha=8) and cfg.augment == AugmentConfig(copies=1, swap_rate=0.1)
    assert FineTuneConfig(lora="", augment="  ").lora is None  # an emptied box: off
    with pytest.raises(DataError, match=r"FineTuneConfig.lora='r=8': give a dict \(or JSON object\) of LoraConfig"):
        FineTuneConfig(lora="r=8")
    with pytest.raises(DataError, match=r"FineTuneConfig.lora has unknown field\(s\) \['rank'\]"):
        FineTuneConfig(lora={"rank": 8})
    with pytest.raises(DataError, match=r"FineTuneConfig.augment=\[1, 2\]"):
        FineTuneConfig(augment=[1, 2])
    with pytest.raises(DataError, match="FineTuneConfig.labels='a,b': give a list of class names"):
        FineTuneConfig(labels="a,b")
    assert FineTuneConfig(class_weights='{"refund": 2.0}').class_weights == {"refund": 2.0}
    with pytest.raises(DataError, match="class_weights='{refund: 2}': use 'none', 'balanced' or a dict"):
        FineTuneConfig(class_weights="{refund: 2}")
    with pytest.raises(DataError, match="each class's weight must be a positive number"):
        FineTuneConfig(class_weights={"refund": "high"})


def test_align_word_tags_first_subtoken():
    assert align_word_tags([None, 0, 0, 1, None], [3, 5]) == [-100, 3, -100, 5, -100]


def test_run_lifecycle_writes_every_file(small_store, tiny_bert, tmp_path):
    t = time.perf_counter()
    run = launch(_config(tiny_bert, dropout=0.05), store=small_store, runs_dir=tmp_path / "runs",
                 snapshot="before-run")
    assert time.perf_counter() - t < 1.0  # the kernel-side call returns at once
    assert run.status()["state"] in ("queued", "running")
    # the launcher's pid has its own file: status.json is written by the worker alone (read-add-write from the
    # launcher could have overwritten a fast worker's first status)
    assert int((run.path / "launcher.pid").read_text()) == run._proc.pid
    assert "launcher_pid" not in json.loads((run.path / "status.json").read_text())
    status = run.wait(timeout=300)
    assert status["state"] == "finished", run.logs()
    for name in ("config.json", "status.json", "metrics.jsonl", "environment.json", "labels.json",
                 "model/model.safetensors", "model/config.json", "predictions/validation.parquet",
                 "predictions/test.parquet"):
        assert (run.path / name).exists(), name
    assert not (run.path / "checkpoint").exists()  # only an unfinished run can resume from it
    frame = small_store.to_pandas()
    assert status["n_train"] + status["n_eval"] == int((frame["split"] != "test").sum())  # what it learned from
    assert status["n_unlabelled"] == 0
    metrics = run.metrics()
    assert {"step", "epoch", "loss", "learning_rate", "samples_per_s"} <= set(metrics.columns)
    assert metrics["eval_accuracy"].notna().sum() == 2  # one evaluation per epoch
    env = json.loads((run.path / "environment.json").read_text())
    assert env["snapshot_hash"] == small_store.snapshot_hash() and env["libraries"]["torch"]
    assert env["attention"] == ("sdpa" if env["device"].startswith("cuda") else "eager")
    saved = json.loads((run.path / "model" / "config.json").read_text())
    assert saved["hidden_dropout_prob"] == saved["attention_probs_dropout_prob"] == 0.05
    assert small_store.snapshots()["name"].tolist() == ["before-run"]
    preds = run.predictions("test")
    assert {"item_id", "label", "pred", "original_label"} <= set(preds.columns)
    probs = preds.filter(like="prob_").to_numpy()
    assert np.allclose(probs.sum(1), 1, atol=1e-4)
    table = list_runs(tmp_path / "runs")
    assert table["state"].tolist() == ["finished"] and table["snapshot"][0] == env["snapshot_hash"]
    model = load_run(run.path)
    n_classes = len(small_store.labels)
    assert repr(model) == (f"TrainedModel({str(run.path)!r}, {n_classes} classes, device='cpu', precision='fp32', "
                           "max_length=32)")
    scored = model.predict(["where is my order", "refund please"], progress=False)
    assert scored.shape == (2, 1 + len(small_store.labels))
    # a file, by path or by name, is read as workbench predict reads it (not scored as one text, its name)
    pd.DataFrame({"text": ["where is my order", "refund please", "hello"]}).to_csv(tmp_path / "new.csv", index=False)
    for path in (tmp_path / "new.csv", str(tmp_path / "new.csv")):
        from_file = run.predict(path, progress=False)
        assert len(from_file) == 3 and from_file.columns[0] == "item_id", path
        assert np.allclose(from_file.filter(like="prob_").to_numpy()[:2], scored.filter(like="prob_").to_numpy(),
                           atol=1e-5)
    with pytest.raises(DataError, match="nothere.csv: no such file"):
        model.predict("nothere.csv", progress=False)
    assert len(model.predict("see new.csv for more", progress=False)) == 1  # words and a name: a text


def test_launch_takes_a_store_s_path(small_store, tiny_bert, tmp_path):
    run = launch(_config(tiny_bert, epochs=1), store=str(tmp_path / "labels.db"), runs_dir=tmp_path / "runs",
                 snapshot="by-path")
    assert run.wait(timeout=300)["state"] == "finished", run.logs()
    assert "by-path" in small_store.snapshots()["name"].tolist()
    make_classification_sample(n_items=20, seed=1).to_csv(tmp_path / "data.csv", index=False)
    with pytest.raises(DataError, match=r"launch\(store=\.\.\.\) takes a label store; .*data.csv is a dataset file: "
                                        "import it into one first"):
        launch(_config(tiny_bert), store=tmp_path / "data.csv", runs_dir=tmp_path / "runs")


def test_a_relative_runs_dir_works(small_store, tiny_bert, tmp_path, monkeypatch):
    # runs_dir="runs", the default, relative to the notebook's folder; the worker starts inside the run folder
    monkeypatch.chdir(tmp_path)
    run = launch(_config(tiny_bert, epochs=1), store=small_store, run_id="rel")
    assert run.wait(timeout=300)["state"] == "finished", run.logs()
    assert run.path == tmp_path / "runs" / "rel" and (run.path / "model" / "model.safetensors").exists()
    assert list_runs("runs")["state"].tolist() == ["finished"]
    # a name already taken: refused before anything is written, with the next free name offered
    with pytest.raises(DataError, match=r"runs/rel already exists; .* gives the next free one: 'rel-2'"):
        launch(_config(tiny_bert, epochs=1), store=small_store, run_id="rel")
    assert fresh_run_id("runs", "rel") == "rel-2" and fresh_run_id("runs", "other") == "other"
    (tmp_path / "runs" / "rel-2").mkdir()
    assert fresh_run_id("runs", "rel") == "rel-3"


def test_a_dev_split_is_the_validation_split_and_unused_splits_are_named(tiny_bert, tmp_path, capsys):
    # data whose validation split is called "dev", and a split no config field names
    frame = make_classification_sample(n_items=240, seed=4)
    frame.loc[frame.index[:40], "split"] = "dev"
    frame.loc[frame.index[40:50], "split"] = "holdout"
    frame.to_csv(tmp_path / "data.csv", index=False)
    flags = [f for k, v in {"model": tiny_bert, "epochs": 1, "max_length": 32, "precision": "fp32"}.items()
             for f in ("--set", f"{k}={v}")]
    assert main(["train", str(tmp_path / "data.csv"), "--id-column", "id", "--runs-dir", str(tmp_path / "runs"),
                 "--run-id", "dev", "--no-progress", *flags]) == 0
    out = capsys.readouterr().out
    assert "not used: split(s) 'holdout' (10 items), neither trained on, evaluated nor predicted" in out
    run = Run(tmp_path / "runs" / "dev")
    status = run.status()
    # evaluated on the data's own dev items, not on a slice held out of train (which would leave dev unused)
    assert run.config()["eval_split"] == "dev" and status["n_eval"] == 40
    assert status["n_train"] == int((frame["split"] == "train").sum())
    assert status["unused_splits"] == {"holdout": 10}
    assert "dev" in run.splits() and "holdout" not in run.splits()


def test_a_compiled_run_trains_like_an_eager_one(small_store, tiny_bert, tmp_path):
    runs = {}
    for compiled in (False, True):
        runs[compiled] = launch(_config(tiny_bert, epochs=1, compile=compiled), store=small_store,
                                runs_dir=tmp_path / "runs", run_id=f"compile-{compiled}")
        assert runs[compiled].wait(timeout=600)["state"] == "finished", runs[compiled].logs()
    losses = [runs[c].metrics()["loss"].dropna().to_numpy() for c in (False, True)]
    assert len(losses[0]) == len(losses[1]) > 2 and np.allclose(losses[0], losses[1], atol=2e-3)
    saved = runs[True].path / "model" / "model.safetensors"
    from safetensors import safe_open

    with safe_open(str(saved), "pt") as f:  # the plain module's weights, no torch.compile wrapper prefix
        assert not [k for k in f.keys() if "_orig_mod" in k]  # noqa: SIM118 (safe_open is not iterable)
    probs = [runs[c].predictions("test").filter(like="prob_").to_numpy() for c in (False, True)]
    assert np.allclose(probs[0], probs[1], atol=2e-3)


def test_cancel(small_store, tiny_bert, tmp_path):
    run = launch(_config(tiny_bert, epochs=200), store=small_store, runs_dir=tmp_path / "runs")
    deadline = time.time() + 120
    while run.status()["state"] != "running" and time.time() < deadline:
        time.sleep(0.2)
    status = run.cancel(timeout=60)
    assert status["state"] == "cancelled", run.logs()


def test_sigkill_is_reported_as_failed_and_resume_continues(small_store, tiny_bert, tmp_path):
    # with a weight average, so its checkpoint is written and read back too
    run = launch(_config(tiny_bert, epochs=30, ema_decay=0.9), store=small_store, runs_dir=tmp_path / "runs")
    deadline = time.time() + 180
    while not (run.path / "checkpoint" / "state.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    assert (run.path / "checkpoint" / "state.json").exists(), run.logs()
    assert (run.path / "checkpoint" / "average.pt").exists()
    os.kill(run.status()["pid"], signal.SIGKILL)
    run._proc.wait()
    status = run.status()
    assert status["state"] == "failed" and "without reporting" in status["message"]
    done_epochs = json.loads((run.path / "checkpoint" / "state.json").read_text())["epoch"]
    run.resume()

    def evaluated_past_checkpoint() -> bool:
        if not run.status().get("resumed_from_step"):  # the killed attempt's rows past the checkpoint not set aside
            return False
        m = run.metrics()
        return "eval_accuracy" in m and (m.dropna(subset=["eval_accuracy"])["epoch"] > done_epochs).any()

    deadline = time.time() + 180
    while not evaluated_past_checkpoint() and time.time() < deadline:
        time.sleep(0.3)
    run.cancel(timeout=120)
    evals = run.metrics().dropna(subset=["eval_accuracy"])
    assert evals["epoch"].is_monotonic_increasing  # continued, not restarted
    assert run.metrics()["step"].dropna().is_monotonic_increasing  # the killed attempt's later steps set aside
    assert evals["epoch"].iloc[-1] > done_epochs
    assert json.loads((run.path / "status.json").read_text())["resumed_from_step"] > 0


def test_a_resume_sets_aside_the_metrics_past_its_checkpoint(tmp_path):
    """Rows logged after the last checkpoint belong to steps the resume trains again: left in place, the curves ran
    back from step 210 to 137 and `workbench cancel` named a step the model never kept."""
    from workbench.train import _set_aside_metrics_after

    rows = [{"step": 10, "loss": 0.9}, {"step": 20, "eval_accuracy": 0.5, "epoch": 1.0}, {"step": 30, "loss": 0.5}]
    lines = [json.dumps(r) for r in rows]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 4')  # the last line cut by a kill
    _set_aside_metrics_after(tmp_path, 20)
    assert (tmp_path / "metrics.jsonl").read_text().splitlines() == lines[:2]
    assert (tmp_path / "metrics.superseded.jsonl").read_text().splitlines() == [lines[2], '{"step": 4']
    _set_aside_metrics_after(tmp_path, 0)  # a second resume, from the start: appended beside the first
    assert (tmp_path / "metrics.jsonl").read_text() == ""
    assert len((tmp_path / "metrics.superseded.jsonl").read_text().splitlines()) == 4


def test_worker_error_lands_in_status(small_store, tiny_bert, tmp_path):
    run = launch(_config(tiny_bert, freeze_layers=9), store=small_store, runs_dir=tmp_path / "runs")
    status = run.wait(timeout=120)
    assert status["state"] == "failed"
    assert "freeze_layers=9" in status["message"] and status["hint"]


def test_a_batch_too_large_for_memory_fails_with_the_out_of_memory_hint(tiny_bert, tmp_path):
    """The worker runs under a 4.5 GB address-space limit; one batch of 256 x 512 tokens needs more."""
    import torch
    import transformers

    if torch.cuda.is_available():
        pytest.skip("host-memory limit test: with a CUDA build and a visible GPU, loading the CUDA libraries alone "
                    "reserves more address space than the 4.5 GB limit (seen on an H100 machine); it runs on CPU CI")

    from workbench.models import resolve_model

    model_dir = tmp_path / "bert-256"
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(resolve_model(None)))
    config = transformers.BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=256, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=1024, max_position_embeddings=512)
    transformers.BertModel(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    wrapper = tmp_path / "python-limited"
    wrapper.write_text(f"#!/bin/sh\nulimit -v 4500000\nexec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    frame = make_classification_sample(n_items=300, seed=1)
    frame["text"] = frame["text"] + " word" * 600
    table = load_dataset(frame, id_column="id")
    run = launch(FineTuneConfig(model=str(model_dir), epochs=1, batch_size=256, max_length=512, precision="fp32",
                                predict_splits=[]), data=table, runs_dir=tmp_path / "runs", python=str(wrapper))
    status = run.wait(timeout=300)
    assert status["state"] == "failed" and "allocate memory" in status["message"].lower(), status
    assert status["hint"].startswith("out of memory: lower batch_size or max_length")


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"model": "/nonexistent/model"}, "does not exist"),
    ({"labels": ["only", "these"]}, "not in config.labels"),
    ({"max_length": 129}, r"max_length=129 but .* reads at most 128 tokens"),  # the tiny BERT has 128 positions
])
def test_bad_launches_fail_in_the_kernel(small_store, tiny_bert, tmp_path, kwargs, says):
    from workbench.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match=says):
        launch(_config(tiny_bert, **kwargs), store=small_store, runs_dir=tmp_path / "runs")


def test_empty_eval_split_is_reported(tiny_bert, tmp_path, monkeypatch):
    frame = make_classification_sample(n_items=60, seed=1).assign(split="train")
    frame.loc[:5, "split"] = "validation"
    labelled = load_dataset(frame, id_column="id")
    frame.loc[:5, "label"] = None
    table = load_dataset(frame, id_column="id", allow_missing_labels=True)
    # what the data lacks is said by launch(), before a run folder exists to be marked failed
    with pytest.raises(DataError, match="evaluation split 'validation' is empty: none of its 6 items has a label"):
        launch(_config(tiny_bert), data=table, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
    # the worker checks the same, for data changed under a run folder: a run written, its validation labels removed
    with monkeypatch.context() as patched:
        patched.setattr(Run, "_start", lambda self, resume, caller=None: None)
        run = launch(_config(tiny_bert), data=labelled, runs_dir=tmp_path / "by-hand")
    data = pd.read_parquet(run.path / "data.parquet")
    data.loc[data["split"] == "validation", "label"] = None
    data.to_parquet(run.path / "data.parquet", index=False)
    worker = subprocess.run([sys.executable, "-m", "workbench.train", str(run.path)], capture_output=True, text=True)
    status = run.status()
    assert status["state"] == "failed" and "none of its 6 items has a label" in status["message"], worker.stderr
    assert status["hint"] == "fix what the message names and launch again"
    # too few labels to hold any out: the message says how many there are
    two = sorted(set(frame["label"].dropna()))[:2]
    few = load_dataset(frame.assign(split="train", label=two + [None] * 58), id_column="id", allow_missing_labels=True)
    with pytest.raises(DataError, match="2 of the 60 items carry a label, too few to hold some out"):
        launch(_config(tiny_bert), data=few, runs_dir=tmp_path / "runs")
    # a dev file imported on its own: no train split; the message says how to train on the split there is
    dev = load_dataset(frame.assign(split="validation", label=frame["label"].fillna(two[0])), id_column="id")
    with pytest.raises(DataError) as caught:
        launch(_config(tiny_bert), data=dev, runs_dir=tmp_path / "runs")
    assert ("the split 'train' has no labelled items; nothing to train on (splits in the data: ['validation']); to "
            "train on another, set train_split (FineTuneConfig(train_split='validation'), workbench train --set "
            "train_split=validation)") in str(caught.value)
    # a pool with no label yet
    pool = load_dataset(frame.drop(columns="split").assign(label=None), id_column="id", allow_missing_labels=True,
                        labels=two)
    with pytest.raises(DataError, match="none of the 60 items has a label; nothing to train on: label some first"):
        launch(_config(tiny_bert), data=pool, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def _finished_tagger_run(model, tmp_path, *, n_sentences):
    """A one-epoch tagger run on the NER sample, every fifth sentence in validation, waited for."""
    table = load_dataset(make_ner_sample(n_sentences=n_sentences), task="token-classification", id_column="id")
    table["split"] = ["validation" if i % 5 == 0 else "train" for i in range(len(table))]
    run = launch(_config(model, task="token-classification", epochs=1), data=table, runs_dir=tmp_path / "runs")
    status = run.wait(timeout=300)
    assert status["state"] == "finished", run.logs()
    return table, run, status


def test_token_classification_run(tiny_bert, tmp_path):
    table, run, status = _finished_tagger_run(tiny_bert, tmp_path, n_sentences=80)
    preds = run.predictions("validation")
    assert all(len(a) == len(b) for a, b in zip(preds["tags"], preds["pred_tags"]))
    assert "validation_f1_micro" in status
    # the tiny tokenizer lowercases, so the tagger gets the word-case channel (workbench.casing)
    assert status["case_feature"] is True
    assert json.loads((run.path / "environment.json").read_text())["case_feature"] is True
    saved = json.loads((run.path / "model" / "config.json").read_text())
    assert saved["type_vocab_size"] == 3 and saved["workbench_case_feature"] is True
    # the loaded tagger (case channel included) tags the same sentences as the worker did
    model = load_run(run.path)
    assert repr(model).startswith(f"TrainedModel({str(run.path)!r}, {len(run.labels())} tags")
    rows = table.set_index("item_id").loc[preds["item_id"]].reset_index()
    again = model.predict(rows[["item_id", "tokens"]], progress=False)
    assert again["item_id"].tolist() == preds["item_id"].tolist()
    assert again["pred_tags"].tolist() == preds["pred_tags"].map(list).tolist()
    for mine, theirs in zip(again["token_probs"], preds["token_probs"]):
        assert np.allclose(np.array(mine), np.stack(theirs), atol=1e-4)
    model.case_feature = False  # without the word-case types the same weights read other inputs
    blind = model.predict(rows["tokens"].tolist(), progress=False)
    assert not all(np.allclose(np.array(a), np.array(b), atol=1e-4)
                   for a, b in zip(blind["token_probs"], again["token_probs"]))
    # a run written before the worker decoded valid IOB2 holds each word's argmax: read back, it is decoded too, so
    # two runs compare on the same decoding
    saved_path = run.path / "predictions" / "validation.parquet"
    old_style = pd.read_parquet(saved_path)
    labels = run.labels()
    old_style["pred_tags"] = [[labels[k] for k in np.stack(p).argmax(1)] for p in old_style["token_probs"]]
    old_style.to_parquet(saved_path)
    assert run.predictions("validation")["pred_tags"].map(list).tolist() == preds["pred_tags"].map(list).tolist()
    assert model.predict([], progress=False).columns.tolist() == ["pred_tags", "token_probs"]
    with pytest.raises(DataError, match="takes sentences as lists of words"):
        model.predict("Paris is nice", progress=False)
    with pytest.raises(DataError, match="sentence 1 to tag is a str"):
        model.predict([["Paris"], "is nice"], progress=False)
    with pytest.raises(DataError, match="sentence 0 to tag: word 1 is ''"):
        model.predict([["Paris", ""]], progress=False)
    with pytest.raises(DataError, match=r"no 'tokens' column; its columns are \['text'\]"):
        model.predict(pd.DataFrame({"text": ["Paris is nice"]}), progress=False)


def test_word_probabilities_come_from_each_word_s_first_sub_token():
    from workbench.train import word_probs

    token_probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4], [0.0, 1.0]])
    # [CLS] w0 w1 w1 w2 [SEP]: w1's second piece is not read; w3 was cut off by max_length
    got = word_probs(token_probs, [None, 0, 1, 1, 2, None], 4)
    assert np.allclose(got, [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])


def test_minilm_fine_tune_beats_the_majority_baseline(tmp_path):
    """Integration: the packaged MiniLM on a few hundred sample items, on CPU."""
    frame = make_classification_sample(n_items=600, seed=7)
    table = load_dataset(frame, id_column="id")
    run = launch(FineTuneConfig(epochs=3, batch_size=16, learning_rate=1e-4, max_length=64, log_every=5),
                 data=table, runs_dir=tmp_path / "runs")
    status = run.wait(timeout=900)
    assert status["state"] == "finished", run.logs()
    preds = run.predictions("test")
    truth = frame.set_index("id").loc[preds["item_id"], "true_label"].to_numpy()
    accuracy = (preds["pred"].to_numpy() == truth).mean()
    majority = pd.Series(truth).value_counts(normalize=True).iloc[0]
    assert accuracy > majority + 0.2, (accuracy, majority)


def test_two_process_ddp_on_cpu_matches_one_process(small_store, tiny_bert, tmp_path, monkeypatch):
    """Two processes (DDP over gloo) run the same worker; their metrics match a single process.

    On CPUs the launcher uses torchrun: ``accelerate launch --cpu --num_processes 2`` starts only one
    process in accelerate 1.15 (its simple launcher; several CPU processes need MPI), checked by hand.
    """
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # where torchrun would leave its folder without --log-dir
    single = launch(_config(tiny_bert, epochs=2, batch_size=8, device="cpu"), store=small_store,
                    runs_dir=tmp_path / "runs")
    double = launch(_config(tiny_bert, epochs=2, batch_size=4, num_processes=2, device="cpu"), store=small_store,
                    runs_dir=tmp_path / "runs")
    s1, s2 = single.wait(timeout=600), double.wait(timeout=600)
    assert s1["state"] == "finished", single.logs()
    assert s2["state"] == "finished", double.logs()
    assert s2["processes"] == 2
    assert (double.path / "torchrun").is_dir() and not list(scratch.glob("torchelastic_*"))
    a = single.metrics().dropna(subset=["eval_accuracy"])["eval_accuracy"].iloc[-1]
    b = double.metrics().dropna(subset=["eval_accuracy"])["eval_accuracy"].iloc[-1]
    assert abs(a - b) < 0.15, (a, b)


@pytest.mark.parametrize("task, setting, frozen", [("text-classification", "auto", True),
                                                   ("token-classification", "auto", False),
                                                   ("token-classification", "true", True),
                                                   ("text-classification", False, False)])
def test_embeddings_are_frozen_per_task_under_auto(tiny_bert, task, setting, frozen):
    import transformers

    from workbench.train import _build_model

    config = FineTuneConfig(model=str(tiny_bert), task=task, freeze_embeddings=setting)
    assert config.effective_freeze_embeddings() is frozen
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tiny_bert))
    model, _case, _pooling = _build_model(config, ["O", "B-X"], str(tiny_bert), device="cpu", tokenizer=tokenizer)
    words = getattr(model, model.base_model_prefix).embeddings.word_embeddings.weight
    assert words.requires_grad is not frozen
    with pytest.raises(DataError, match="freeze_embeddings='maybe'"):
        FineTuneConfig(freeze_embeddings="maybe")


def test_the_device_setting_is_checked_and_resolved(monkeypatch):
    from workbench import devices

    with pytest.raises(DataError, match="device='tpu'"):
        FineTuneConfig(device="tpu")
    monkeypatch.setattr(devices, "default_device", lambda: "cpu")
    assert devices.resolve_device("auto") == "cpu" and devices.resolve_device("cpu") == "cpu"
    with pytest.raises(DataError, match="device='cuda' but torch .* sees no CUDA GPU"):
        devices.resolve_device("cuda")
    monkeypatch.setattr(devices, "default_device", lambda: "cuda")
    assert devices.resolve_device("auto") == "cuda" and devices.resolve_device("cpu") == "cpu"


def test_more_processes_than_gpus_is_refused_before_starting(small_store, tiny_bert, tmp_path, monkeypatch):
    import torch

    from workbench import devices

    monkeypatch.setattr(devices, "default_device", lambda: "cuda")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(DataError, match="num_processes=2 but 1 CUDA GPU"):
        launch(_config(tiny_bert, num_processes=2), store=small_store, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())  # no stale queued run


@pytest.mark.gpu
def test_gpu_path(small_store, tiny_bert, tmp_path):
    """A run trains on the GPU in bf16/fp16 autocast and its model predicts there."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible: the GPU path is measured on a GPU machine (see BENCHMARKS.md)")
    from workbench.embed import choose_precision

    assert choose_precision("auto", "cuda") in ("bf16", "fp16")
    run = launch(_config(tiny_bert, epochs=1, precision="auto", device="cuda"), store=small_store,
                 runs_dir=tmp_path / "runs")
    status = run.wait(timeout=300)
    assert status["state"] == "finished", run.logs()
    assert status["device"].startswith("cuda") and status["precision"] in ("bf16", "fp16")
    assert status["attention"] == "sdpa"
    model = load_run(run.path)
    assert model.device == "cuda"
    probs = model.predict(["a short text", "another, somewhat longer text"], progress=False)
    assert np.allclose(probs.filter(like="prob_").sum(axis=1), 1.0, atol=1e-4)


def test_a_byte_level_bpe_model_tags_each_word_as_it_reads_it_in_a_sentence(tiny_roberta, tmp_path):
    table, run, _ = _finished_tagger_run(tiny_roberta, tmp_path, n_sentences=60)
    # RoBERTa's tokenizer marks a word after a space ("Ġin"): the tagger trained and saved with that mark
    saved = json.loads((run.path / "model" / "tokenizer_config.json").read_text())
    assert saved.get("add_prefix_space") is True
    preds = run.predictions("validation")
    sentences = table.set_index("item_id").loc[preds["item_id"], "tokens"].map(list).tolist()
    again = load_run(run.path).predict(sentences, progress=False)  # one tag per word, as the worker tagged them
    assert again["pred_tags"].tolist() == preds["pred_tags"].map(list).tolist()
    assert [len(tags) for tags in again["pred_tags"]] == [len(words) for words in sentences]


def test_a_roberta_model_fine_tunes_and_scans_text(small_store, tiny_roberta, tmp_path):
    from workbench.scan import scan

    run = launch(_config(tiny_roberta, epochs=1), store=small_store, runs_dir=tmp_path / "runs")
    assert run.wait(timeout=300)["state"] == "finished", run.logs()
    probs = load_run(run.path).predict(["where is my order", "refund please"], progress=False)
    assert np.allclose(probs[[f"prob_{c}" for c in run.labels()]].sum(axis=1), 1, atol=1e-5)
    result = scan(small_store, model=str(tiny_roberta), progress=False)  # embeddings from RoBERTa's positions
    assert len(result.items) == len(small_store) and result.oof is not None


def test_a_model_named_by_its_hub_id_trains_from_the_local_cache(small_store, hub_cache, tmp_path):
    run = launch(_config("test-org/tiny-st", epochs=1), store=small_store, runs_dir=tmp_path / "runs")
    status = run.wait(timeout=300)
    assert status["state"] == "finished", run.logs()
    assert status["pooling"] == "mean"  # read from the cached snapshot's sentence-transformers pooling config


def test_a_table_of_ones_own_trains_as_load_dataset_would_read_it(tiny_bert, tmp_path):
    frame = make_classification_sample(n_items=120, seed=2)[["text", "label"]]  # no item ids: made from the texts
    run = launch(_config(tiny_bert, epochs=1), data=frame, runs_dir=tmp_path / "runs")
    assert run.wait(timeout=300)["state"] == "finished", run.logs()
    assert pd.read_parquet(run.path / "data.parquet")["item_id"].tolist() == load_dataset(frame)["item_id"].tolist()


def _three_architectures(tiny_bert):
    """BERT (2 layers), DistilBERT (1) and ModernBERT (3) sequence classifiers: each names its parts its own way."""
    import transformers

    small = dict(vocab_size=64, max_position_embeddings=64)
    bert = transformers.AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2)
    distil = transformers.DistilBertForSequenceClassification(transformers.DistilBertConfig(
        dim=32, n_layers=1, n_heads=2, hidden_dim=64, **small))
    modern = transformers.ModernBertForSequenceClassification(transformers.ModernBertConfig(
        hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64, pad_token_id=0, **small))
    return bert, distil, modern


def test_freeze_layers_finds_each_architecture_s_blocks(tiny_bert):
    from workbench.train import encoder_layers

    bert, distil, modern = _three_architectures(tiny_bert)
    # before, only BERT's encoder.layer was found: freeze_layers=1 on the others said the model had 0 layers
    assert [len(encoder_layers(m.base_model)) for m in (bert, distil, modern)] == [2, 1, 3]
    assert encoder_layers(distil.base_model)[0] is distil.distilbert.transformer.layer[0]


def test_lora_adapts_the_attention_projections_under_each_architecture_s_names(tiny_bert):
    import torch

    from workbench.train import lora_targets

    bert, distil, modern = _three_architectures(tiny_bert)
    assert lora_targets(bert, "auto") == ["query", "value"]
    assert lora_targets(distil, "auto") == ["q_lin", "v_lin"]  # the old default, query/value, matched nothing here
    assert lora_targets(modern, "auto") == ["Wqkv"]
    assert lora_targets(distil, ["q_lin", "attention.k_lin"]) == ["q_lin", "attention.k_lin"]
    with pytest.raises(DataError, match=r"names \['query'\], which DistilBertForSequenceClassification does not "
                                        r"have; its linear layers are \['classifier', 'k_lin'"):
        lora_targets(distil, ["query", "q_lin"])
    with pytest.raises(DataError, match=r"found no attention projections to adapt in Sequential; name some of its "
                                        r"linear layers: \['0', '1'\]"):
        lora_targets(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)), "auto")


def test_a_lora_run_on_a_distilbert_trains_only_the_adapters_and_saves_a_plain_model(tmp_path):
    import transformers

    folder = tmp_path / "distil"
    words = "where is my order refund please card broken account password cancel new address invoice help".split()
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words,
                                                   *"abcdefghijklmnopqrstuvwxyz"]) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab=str(tmp_path / "vocab.txt"))
    transformers.set_seed(0)
    transformers.DistilBertModel(transformers.DistilBertConfig(
        vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64,
    )).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    table = load_dataset(make_classification_sample(n_items=160, seed=3), id_column="id")
    run = launch(_config(folder, epochs=1, lora={"r": 4}), data=table, runs_dir=tmp_path / "runs")
    assert run.wait(timeout=300)["state"] == "finished", run.logs()
    assert json.loads((run.path / "config.json").read_text())["lora"]["target_modules"] == "auto"
    saved = transformers.AutoModelForSequenceClassification.from_pretrained(str(run.path / "model"))
    assert not any("lora" in name for name, _ in saved.named_parameters())  # merged into the weights
    base = transformers.DistilBertModel.from_pretrained(str(folder))
    layer, before = saved.distilbert.transformer.layer[0].attention, base.transformer.layer[0].attention
    assert not np.allclose(layer.q_lin.weight.detach(), before.q_lin.weight.detach())  # adapted
    assert np.allclose(layer.k_lin.weight.detach(), before.k_lin.weight.detach())  # left as it was
    assert len(load_run(run.path).predict(["where is my order"], progress=False)) == 1


def test_a_sentence_transformers_mpnet_fine_tunes_on_the_mean_of_its_tokens(tiny_bert, tmp_path):
    """all-mpnet-base-v2's kind: mean pooling in its config, and a head that reads the first token."""
    import transformers

    folder = tmp_path / "mpnet"
    tokenizer = transformers.MPNetTokenizerFast(vocab=str(tiny_bert / "vocab.txt"))
    transformers.set_seed(0)
    transformers.MPNetModel(transformers.MPNetConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=130, pad_token_id=tokenizer.pad_token_id)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    table = load_dataset(make_classification_sample(n_items=160, seed=3), id_column="id")
    run = launch(_config(folder, epochs=1), data=table, runs_dir=tmp_path / "runs")
    status = run.wait(timeout=300)
    assert status["state"] == "finished", run.logs()
    assert status["pooling"] == "mean"
    preds = run.predictions("validation")
    texts = table.set_index("item_id").loc[preds["item_id"], "text"].tolist()
    again = load_run(run.path).predict(texts, progress=False)  # reloaded, it pools as the worker did
    columns = [f"prob_{c}" for c in run.labels()]
    assert np.allclose(again[columns].to_numpy(), preds[columns].to_numpy(), atol=1e-4)


def test_tagger_batches_carry_the_word_case_types(tiny_bert):
    import transformers

    from workbench.train import Prepared

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tiny_bert))
    frame = pd.DataFrame({"tokens": [["Card", "NOT", "broken"], ["where"]], "label": [["B-X", "O", "O"], ["O"]],
                          "split": ["train", "train"]})
    prep = Prepared(frame, FineTuneConfig(task="token-classification"), tokenizer, ["O", "B-X"])
    assert "token_type_ids" not in prep.batch([0, 1], 0)
    prep.add_case_types()
    batch = prep.batch([0, 1], 0)
    types, words = batch["token_type_ids"], prep.word_ids[0]
    assert types.shape == batch["input_ids"].shape
    assert [int(t) for t, w in zip(types[0], words) if w is not None and (w == 0 or w == 1)] == [
        1] * words.count(0) + [2] * words.count(1)
    assert types[1].tolist() == [0] * types.shape[1]  # lower case, specials and padding


def test_a_mean_pooled_run_predicts_the_same_after_loading(small_store, tiny_bert, tmp_path, capfd):
    run = launch(_config(tiny_bert, epochs=1, pooling="mean"), store=small_store, runs_dir=tmp_path / "runs")
    status = run.wait(timeout=300)
    assert status["state"] == "finished" and status["pooling"] == "mean", run.logs()
    preds = run.predictions("test")
    texts = small_store.to_pandas().set_index("item_id").loc[preds["item_id"], "text"].tolist()
    capfd.readouterr()
    again = load_run(run.path).predict(texts, progress=False)
    # no "MISSING pooler ... consider training" report (the pooler is gone by design) and no loading bar
    err = capfd.readouterr().err
    assert "LOAD REPORT" not in err and "Loading weights" not in err, err
    columns = [c for c in preds.columns if c.startswith("prob_")]
    assert np.allclose(again[columns].to_numpy(), preds[columns].to_numpy(), atol=1e-4)
    # another precision on request (autocast), close to the run's own; an unknown one is named
    low = load_run(run.path, precision="bf16")
    assert low.precision == "bf16" and "precision='bf16'" in repr(low)
    assert np.allclose(low.predict(texts, progress=False)[columns].to_numpy(), again[columns].to_numpy(), atol=0.05)
    with pytest.raises(DataError, match="unknown precision 'half'"):
        load_run(run.path, precision="half")
    with pytest.raises(DataError, match="is not a run folder"):
        load_run(tmp_path / "runs" / "no-such-run")
    model = load_run(run.path)
    # one string is one text (it was scored character by character); nothing to score is an empty table
    assert len(model.predict(texts[0], progress=False)) == 1
    empty = model.predict([], progress=False)
    assert empty.empty and list(empty.columns) == list(again.columns)
    with pytest.raises(DataError, match=r"text 1 to predict is a NoneType"):
        model.predict(["fine", None], progress=False)
    with pytest.raises(DataError, match=r"no 'text' column; its columns are \['body'\]"):
        model.predict(pd.DataFrame({"body": ["x"]}), progress=False)


def test_layer_wise_learning_rate_decay_lowers_the_rate_with_depth() -> None:
    import transformers

    from workbench.train import parameter_groups

    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                                     intermediate_size=32, num_labels=2)
    model = transformers.BertForSequenceClassification(config)
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    rate = {id(p): (g["lr"], g["weight_decay"]) for g in parameter_groups(model, weight_decay=0.01,
                                                                          learning_rate=1e-3, layer_lr_decay=0.5)
            for p in g["params"]}
    named = dict(model.named_parameters())
    assert id(named["bert.embeddings.word_embeddings.weight"]) not in rate  # frozen: left out
    assert rate[id(named["classifier.weight"])] == (1e-3, 0.01)
    assert rate[id(named["classifier.bias"])] == (1e-3, 0.0)  # no decay on vectors
    assert rate[id(named["bert.encoder.layer.2.output.dense.weight"])][0] == pytest.approx(5e-4)
    assert rate[id(named["bert.encoder.layer.0.output.dense.weight"])][0] == pytest.approx(1.25e-4)
    assert rate[id(named["bert.embeddings.position_embeddings.weight"])][0] == pytest.approx(6.25e-5)
    flat = parameter_groups(model, weight_decay=0.01, learning_rate=1e-3)
    assert [g["lr"] for g in flat] == [1e-3, 1e-3] and sum(len(g["params"]) for g in flat) == len(rate)
    with pytest.raises(Exception, match="layer_lr_decay"):
        FineTuneConfig(layer_lr_decay=0.0)


def test_a_weight_averaged_run_saves_the_average(small_store, tiny_bert, tmp_path):
    from safetensors.numpy import load_file

    start = load_file(str(tiny_bert / "model.safetensors"))
    name = next(k for k in start if "encoder.layer.1.output.dense.weight" in k)

    def moved(**kw) -> float:
        run = launch(_config(tiny_bert, epochs=1, **kw), store=small_store, runs_dir=tmp_path / "runs")
        status = run.wait(timeout=300)
        assert status["state"] == "finished", run.logs()
        saved = load_file(str(run.path / "model" / "model.safetensors"))
        key = next(k for k in saved if k.endswith(name.split("encoder.", 1)[1]))
        return float(np.abs(saved[key] - start[name]).max())

    # an average that reaches back a million steps barely leaves the start; the last weights do
    assert moved(ema_decay=0.999999) < 1e-4 < 1e-3 < moved()
    with pytest.raises(DataError, match="ema_decay"):
        FineTuneConfig(ema_decay=1.0)



def test_the_loss_smooths_labels_weighs_classes_and_skips_ignored_targets() -> None:
    import torch

    from workbench.train import make_loss

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [5.0, 5.0, 5.0]])
    target = torch.tensor([0, 2, -100])
    logp = logits[:2].log_softmax(1).numpy()
    eps, weights = 0.3, np.array([1.0, 1.0, 4.0])
    smoothed = (1 - eps) * np.eye(3)[[0, 2]] + eps / 3  # the targets: mostly the label, some of every class
    per_item = -(smoothed * weights * logp).sum(1)  # torch weighs each class's term by its weight
    expected = per_item.sum() / weights[[0, 2]].sum()  # ... and averages over the items' label weights
    loss = make_loss(FineTuneConfig(label_smoothing=eps), weights)(logits, target)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    plain = make_loss(FineTuneConfig())(logits, target)
    assert float(plain) == pytest.approx(-(logp[0, 0] + logp[1, 2]) / 2, rel=1e-5)
    with pytest.raises(DataError, match="label_smoothing"):
        FineTuneConfig(label_smoothing=1.0)


def test_a_damaged_status_file_reads_as_unreadable_not_queued(tmp_path):
    from workbench.runs import RunView

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert RunView(run_dir).status()["state"] == "queued"  # the worker has not written one yet
    (run_dir / "status.json").write_text("{broken")  # the worker writes atomically: this is damage
    status = RunView(run_dir).status()
    assert status["state"] == "unreadable" and "not valid JSON" in status["message"]
