"""The quality, fine-tune and metrics panels and the Workbench tabs, driven without a browser."""

from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
import pytest

from tests.test_metrics import make_run
from widgets import FineTunePanel, LabelBrowser, MetricsPanel, QualityPanel, Workbench
from workbench import LabelStore, load_dataset
from workbench.sample import make_classification_sample, make_ner_sample


@pytest.fixture
def store(tmp_path):
    s = LabelStore.open(tmp_path / "labels.db")
    s.import_dataset(load_dataset(make_classification_sample(n_items=300, seed=8), id_column="id"))
    yield s
    s.close()


def test_quality_panel_scans_in_the_background_and_opens_issues(store, tmp_path):
    browser = LabelBrowser(store, page_size=10)
    panel = QualityPanel(store, browser=browser, cache_dir=tmp_path / "cache")
    assert "no scan yet" in panel.last_scan.value
    panel.button.click()
    panel._thread.join(timeout=600)
    assert "estimated noise rate" in panel.report.value and panel.progress.value == 4
    assert "<b>estimated noise matrix</b>" in panel.report.value and "title='P(given " in panel.report.value
    assert f"{len(store)} items scored" in panel.last_scan.value and "changed since" not in panel.last_scan.value
    # the most frequent (given, suggested) pair of the flagged labels opens in the browser, as many items as it says
    mixups = panel.result.report.mixups
    top = panel.mixup_buttons.children[1]
    assert top.description == f"{mixups['given'][0]} → {mixups['suggested'][0]} ({mixups['items'][0]})"
    top.click()
    assert browser.total == mixups["items"][0] > 0
    assert {(r["label"], r["suggested_label"]) for r in browser.rows} == {(mixups["given"][0], mixups["suggested"][0])}
    # two of them fixed in the Labels tab: back on the Quality tab, the buttons say how many are left
    n, label_issues = int(mixups["items"][0]), panel._issue_counts["label"]
    for row in browser.rows[:2]:
        store.set_label(row["item_id"], row["suggested_label"], author="ann")
    assert top.description.endswith(f"({n})")  # as of the scan, until the tab is opened again
    panel.refresh()
    top = panel.mixup_buttons.children[1]
    assert top.description == f"{mixups['given'][0]} → {mixups['suggested'][0]} ({n - 2} of {n} left)"
    assert f"Review label ({label_issues - 2} of {label_issues} left)" in [
        b.description for b in panel.issue_buttons.children]
    assert "2 label(s) changed since" in panel.last_scan.value
    for _ in range(2):
        store.undo(author="ann")
    panel.refresh()
    assert panel.mixup_buttons.children[1].description.endswith(f"({n})")
    assert "changed since" not in panel.last_scan.value  # both undone: the scan judged the labels there are
    item = store.page(0, 1)["item_id"][0]
    store.set_label(item, next(lab for lab in store.labels if lab != store.get(item)["label"]), author="ann")
    reopened = QualityPanel(store)  # the notebook opened again the next day: it says the ranking is stale
    assert "1 label(s) changed since" in reopened.last_scan.value and "scan again" in reopened.last_scan.value
    labels = [b for b in panel.issue_buttons.children if b.description.startswith("Review label (")]
    assert labels, [b.description for b in panel.issue_buttons.children]
    labels[0].click()
    assert browser.total == store.count({"issue": "label"}) > 0
    assert all("label" in r["issues"] for r in browser.rows)


def test_quality_panel_runs_the_fine_tune_scan_when_toggled(store, tiny_bert, tmp_path):
    panel = QualityPanel(store, model=tiny_bert, folds=2, cache_dir=tmp_path / "cache",
                         finetune={"max_length": 32, "precision": "fp32"})
    assert panel.mode.value == "quick"
    panel.mode.value = "finetune"
    panel.scan(wait=True)
    assert "estimated noise rate" in panel.report.value, panel.report.value
    params = panel.result.oof.params
    assert params["mode"] == "finetune" and params["model"] == str(tiny_bert) and params["max_length"] == 32
    assert not panel.mode.disabled and not panel.button.disabled


def test_cancel_stops_a_fine_tune_scan_and_the_store_keeps_its_last_scan(store, tiny_bert, tmp_path):
    """A fine-tune per fold is minutes on a CPU; before, the Quality tab had no way to stop it but a kernel restart."""
    import json
    import time

    runs = tmp_path / "folds"
    panel = QualityPanel(store, model=tiny_bert, folds=2, cache_dir=tmp_path / "cache",
                         finetune={"max_length": 32, "precision": "fp32", "epochs": 2000, "runs_dir": str(runs)})
    panel.mode.value = "finetune"
    before = store.active_scan()
    assert panel.cancel_button.disabled
    panel.scan()
    assert not panel.cancel_button.disabled and panel.button.disabled
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not any('"running"' in p.read_text() for p in runs.glob("*/status.json")):
        time.sleep(0.2)
    panel.cancel(wait=True)
    assert panel.stage.value.startswith("scan cancelled"), panel.stage.value
    states = [json.loads(p.read_text())["state"] for p in runs.glob("*/status.json")]
    assert states == ["cancelled"], states
    assert store.active_scan() == before
    assert panel.cancel_button.disabled and not panel.button.disabled and not panel.mode.disabled


def test_quality_panel_shows_errors_in_the_panel(tmp_path):
    s = LabelStore.open(tmp_path / "one.db")
    s.import_dataset(load_dataset(pd.DataFrame({"text": [f"text {i}" for i in range(10)], "label": ["x"] * 10})))
    panel = QualityPanel(s, cache_dir=tmp_path / "cache")
    panel.scan(wait=True)
    assert "Error" in panel.report.value and "two classes" in panel.report.value


def test_quality_panel_says_which_classes_are_too_thin_to_trust(tmp_path):
    frame = make_classification_sample(n_items=300, seed=8)
    frame.loc[frame.index[frame["label"] == "refund_request"][3:], "label"] = None  # a pool, 3 refund requests
    s = LabelStore.open(tmp_path / "pool.db")
    s.import_dataset(load_dataset(frame, id_column="id", allow_missing_labels=True))
    panel = QualityPanel(s, cache_dir=tmp_path / "cache")
    panel.scan(wait=True)
    assert "few examples: 1 class(es) have fewer than 10 labelled items (&#x27;refund_request&#x27; 3)" in \
        panel.report.value, panel.report.value


def _launch_tiny(panel, tiny_bert):
    """Fill the fine-tune form for a one-epoch run of the tiny BERT, launch it and wait until it finishes."""
    panel.inputs["model"].value = str(tiny_bert)
    panel.inputs["epochs"].value = 1.0
    panel.inputs["max_length"].value = 32
    panel.inputs["precision"].value = "fp32"
    panel.launch(wait=True)
    assert "finished" in panel.state.value, panel.run.logs()


def test_fine_tune_panel_form_launch_and_run_list(store, tiny_bert, tmp_path):
    panel = FineTunePanel(store, tmp_path / "runs", poll_seconds=0.2)
    assert "device: cpu" in panel.state.value
    _launch_tiny(panel, tiny_bert)
    assert panel.progress.value == panel.progress.max
    assert panel.resume_button.disabled  # a finished run has nothing to continue
    assert len(panel.curves.data[0].x) > 0
    assert "finished" in panel.runs.value
    panel.inputs["device"].value, panel.inputs["pooling"].value = "", ""  # emptied boxes mean the defaults
    assert (panel.config().device, panel.config().pooling) == ("auto", "auto")
    panel.inputs["device"].value = "cpu"
    assert panel.config().device == "cpu"
    panel.inputs["ema_decay"].value = "0.99"  # a number-or-None field is a text box: typed text becomes a number
    assert panel.config().ema_decay == 0.99
    panel.inputs["ema_decay"].value = "soon"
    panel.launch()
    assert "ema_decay=&#x27;soon&#x27;: use a number" in panel.state.value
    panel.inputs["ema_decay"].value = ""
    assert "labels" not in panel.inputs  # the store's label set
    panel.inputs["lora"].value = '{"r": 4}'  # a dict field takes a JSON object
    assert panel.config().lora.r == 4
    panel.inputs["lora"].value = "rank 4"
    panel.launch()
    assert "FineTuneConfig.lora=&#x27;rank 4&#x27;: give a dict" in panel.state.value
    panel.inputs["lora"].value = ""
    panel.inputs["max_length"].value = 0
    panel.launch()
    assert "max_length=0" in panel.state.value


def test_fine_tune_panel_follows_a_run_launched_before_the_kernel_restarted(store, tiny_bert, tmp_path):
    from workbench.config import FineTuneConfig
    from workbench.launch import launch
    from workbench.runs import list_runs

    runs = tmp_path / "runs"
    fields = {"model": str(tiny_bert), "max_length": 32, "precision": "fp32"}
    launch(FineTuneConfig(epochs=1, **fields), store=store, runs_dir=runs, run_id="zz-first").wait(300)
    long = launch(FineTuneConfig(epochs=500, **fields), store=store, runs_dir=runs, run_id="aa-second")
    # a new kernel's panel: the latest run by start time (not the last by name) is followed and can be cancelled
    panel = FineTunePanel(store, runs, poll_seconds=0.2)
    assert panel.run.run_id == "aa-second" and not panel.cancel_button.disabled and panel.launch_button.disabled
    assert list_runs(runs)["run_id"].tolist() == ["zz-first", "aa-second"]  # by start, so the CLI lists them so too
    deadline = time.monotonic() + 120
    while "left" not in panel.state.value and time.monotonic() < deadline:  # once a step is logged
        time.sleep(0.2)
    assert re.search(r"aa-second: running \d+%, ~\d+ (s|min) left", panel.state.value), panel.state.value
    while long.checkpoint() is None and time.monotonic() < deadline:  # an epoch done, for Resume below
        time.sleep(0.2)
    started = time.monotonic()
    panel.cancel()
    assert time.monotonic() - started < 1  # the kernel does not wait for the worker to stop
    panel.cancel(wait=True)
    assert long.status()["state"] == "cancelled" and "aa-second: cancelled" in panel.state.value, panel.state.value
    assert not panel.launch_button.disabled and panel.cancel_button.disabled

    # Resume: offered for the cancelled run, in this kernel and in the next one; it continues at the checkpoint
    assert not panel.resume_button.disabled
    panel = FineTunePanel(store, runs, poll_seconds=0.2)
    assert panel.run.run_id == "aa-second" and not panel.resume_button.disabled
    saved = long.checkpoint()
    assert saved is not None, long.logs()
    panel.resume()
    assert panel.resume_button.disabled and panel.launch_button.disabled and not panel.cancel_button.disabled
    deadline = time.monotonic() + 120
    while "running" not in panel.state.value and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "aa-second: running" in panel.state.value and f"resumed at step {saved['step']}" in panel.state.value
    panel.cancel(wait=True)
    assert long.status()["state"] == "cancelled" and not panel.resume_button.disabled


def test_fine_tune_panel_draws_entity_f1_for_a_tagger(tiny_bert, tmp_path):
    from workbench.sample import make_ner_sample

    ner = LabelStore.open(tmp_path / "ner.db")
    ner.import_dataset(load_dataset(make_ner_sample(n_sentences=60), id_column="id", task="token-classification"))
    panel = FineTunePanel(ner, tmp_path / "runs", poll_seconds=0.2)
    assert panel.curves.data[1].name == "eval entity F1"  # token accuracy sits near 1 whatever a tagger does
    _launch_tiny(panel, tiny_bert)
    assert len(panel.curves.data[1].y) > 0 and all(0 <= v <= 1 for v in panel.curves.data[1].y)


def test_metrics_panel_compares_and_opens_mistakes(store, tmp_path):
    rng = np.random.default_rng(0)
    table = store.to_pandas()
    ids = table["item_id"].tolist()
    labels = store.labels
    y = table["label"].to_numpy()
    a = make_run(tmp_path / "runs", "a", y, np.where(rng.random(len(y)) < 0.7, y, rng.choice(labels, len(y))),
                 labels)
    b = make_run(tmp_path / "runs", "b", y, np.where(rng.random(len(y)) < 0.9, y, rng.choice(labels, len(y))),
                 labels)
    for run in (a, b):  # tie the synthetic runs to the store's items
        frame = pd.read_parquet(run / "predictions" / "test.parquet")
        frame["item_id"] = ids
        frame.to_parquet(run / "predictions" / "test.parquet")
    browser = LabelBrowser(store, page_size=500)
    panel = MetricsPanel(tmp_path / "runs", store, browser=browser)
    panel.run_picker.value = "b"
    panel.base_picker.value = "a"
    panel.wait()
    assert len(panel.figures.children) == 3
    cls = labels[0]
    panel.class_picker.value = cls
    panel.open_button.click()
    wrong = set(panel.mistakes(cls))
    assert wrong and {r["item_id"] for r in browser.rows} == wrong
    # a new run: Refresh lists it and keeps the comparison on screen (new options used to reset both picks)
    c = make_run(tmp_path / "runs", "c", y, y, labels)
    frame = pd.read_parquet(c / "predictions" / "test.parquet")
    frame.assign(item_id=ids).to_parquet(c / "predictions" / "test.parquet")
    panel.refresh()
    assert "c" in panel.run_picker.options and (panel.run_picker.value, panel.base_picker.value) == ("b", "a")
    panel.run_picker.value = "c"
    panel.wait()
    assert panel.scores.run_id == "c" and panel.class_picker.value == cls  # the class picked stays picked


def test_metrics_panel_scores_in_the_background_and_the_latest_pick_wins(store, tmp_path, monkeypatch):
    import threading
    import time

    import workbench.metrics

    labels = store.labels
    y = store.to_pandas()["label"].to_numpy()
    for name in ("a", "b"):
        make_run(tmp_path / "runs", name, y, y, labels)
    real = workbench.metrics.evaluate_run
    release = threading.Event()

    def slow(run_dir, *args, **kwargs):
        if run_dir.name == "a":  # the first pick is slow and finishes after the second
            release.wait(5)
        return real(run_dir, *args, **kwargs)

    monkeypatch.setattr(workbench.metrics, "evaluate_run", slow)
    panel = MetricsPanel(tmp_path / "runs", store)
    panel.wait()
    panel.run_picker.value = "a"
    started = time.perf_counter()
    panel.show()  # must return while "a" is still being scored
    assert time.perf_counter() - started < 0.5 and "scoring a" in panel.message.value
    first = panel._thread
    panel.run_picker.value = "b"  # supersedes "a"
    panel.wait()
    release.set()
    first.join()
    assert panel.scores is not None and panel.scores.run_id == "b"

    def broken(*_args, **_kwargs):
        raise RuntimeError("predictions unreadable")

    monkeypatch.setattr(workbench.metrics, "evaluate_run", broken)
    panel.show(wait=True)
    assert "RuntimeError" in panel.message.value and "predictions unreadable" in panel.message.value


def test_a_run_trained_in_the_workbench_reaches_its_metrics_tab(tmp_path, tiny_bert):
    path = tmp_path / "data.parquet"
    make_classification_sample(n_items=120, seed=2).to_parquet(path)
    wb = Workbench(str(path), runs_dir=tmp_path / "runs", id_column="id")
    assert wb.metrics.run_picker.options == ()
    _launch_tiny(wb.finetune, tiny_bert)
    run_id = wb.finetune.run.run_id
    assert wb.metrics.run_picker.options == (run_id,) and wb.metrics.run_picker.value == run_id  # no Refresh click


def test_opening_the_quality_tab_brings_its_counts_up_to_date(tmp_path, monkeypatch):
    """Labels fixed in the Labels tab: the Quality tab's buttons and its stale-scan note said what the scan saw."""
    path = tmp_path / "data.parquet"
    make_classification_sample(n_items=100, seed=2).to_parquet(path)
    wb = Workbench(str(path), runs_dir=tmp_path / "runs", id_column="id")
    opened = []
    monkeypatch.setattr(wb.quality, "refresh", lambda: opened.append(True))
    wb.selected_index = 2  # Fine-tune
    assert wb._refresher is None
    wb.selected_index = 1  # Quality: refreshed in a thread, so the tab opens at once on a large store
    wb._refresher.join(timeout=10)
    assert opened == [True]
    monkeypatch.setattr(wb.active, "refresh", lambda: opened.append("active"))
    wb.selected_index = 4  # Active learning
    wb._refresher.join(timeout=10)
    assert opened == [True, "active"]

    def broken() -> None:
        raise RuntimeError("store unreachable")

    monkeypatch.setattr(wb.quality, "refresh", broken)
    wb.selected_index = 0
    wb.selected_index = 1
    wb._refresher.join(timeout=10)
    assert "store unreachable" in wb.quality.stage.value  # in the panel, not lost in the thread


def test_workbench_in_two_lines(tmp_path):
    path = tmp_path / "data.parquet"
    make_classification_sample(n_items=100, seed=2).to_parquet(path)
    wb = Workbench(str(path), runs_dir=tmp_path / "runs", id_column="id")
    assert [wb.get_title(i) for i in range(5)] == ["Labels", "Quality", "Fine-tune", "Metrics", "Active learning"]
    assert wb.browser.total == 100 and (tmp_path / "data.parquet.labels.db").exists()
    again = Workbench(str(path), runs_dir=tmp_path / "runs", id_column="id")  # re-opening keeps the store
    assert again.browser.total == 100
    assert Workbench(str(tmp_path / "data.parquet.labels.db"), runs_dir=tmp_path / "runs").browser.total == 100
    from workbench.errors import StoreNotFoundError

    with pytest.raises(StoreNotFoundError, match="no store at"):  # a typo, not a new empty store with empty panels
        Workbench(str(tmp_path / "data.parquet.label.db"), runs_dir=tmp_path / "runs")
    assert not (tmp_path / "data.parquet.label.db").exists()


def test_the_quality_tab_takes_scan_options(tmp_path):
    """`Workbench(..., scan_options={"split": "test"})`: the Quality tab scans the held-out labels alone; a misspelt
    option is refused when the panel is built, not minutes later in the background scan."""
    path = tmp_path / "data.parquet"
    frame = make_classification_sample(n_items=200, seed=2)
    frame.to_parquet(path)
    wb = Workbench(str(path), runs_dir=tmp_path / "runs", id_column="id", scan_options={"split": "test"})
    wb.quality.scan(wait=True)
    assert f"<p>{(frame['split'] == 'test').sum()} items, " in wb.quality.report.value
    from workbench.errors import DataError

    with pytest.raises(DataError, match=r"unknown scan option\(s\) \['splits'\] \(splits: did you mean split\?\)"):
        Workbench(str(path), runs_dir=tmp_path / "runs", id_column="id", scan_options={"splits": "test"})
    ner = tmp_path / "ner.parquet"
    make_ner_sample(n_sentences=20).to_parquet(ner)
    with pytest.raises(DataError, match="are the quick scan's, for text classification"):
        Workbench(str(ner), runs_dir=tmp_path / "runs", scan_options={"split": "train"})


def test_each_dataframe_gets_its_own_default_store(tmp_path, monkeypatch):
    """One fixed default name ('workbench.labels.db') mixed a second DataFrame's items into the first one's store."""
    monkeypatch.chdir(tmp_path)
    first = make_classification_sample(n_items=60, seed=2)
    second = make_classification_sample(n_items=40, seed=5)
    a = Workbench(first, runs_dir=tmp_path / "runs", id_column="id")
    b = Workbench(second, runs_dir=tmp_path / "runs", id_column="id")
    assert (a.browser.total, b.browser.total) == (60, 40) and a.store.url != b.store.url
    item = a.store.to_pandas()["item_id"].iloc[0]
    a.store.set_label(item, "refund_request", author="t")
    again = Workbench(first, runs_dir=tmp_path / "runs", id_column="id")  # the same table finds its store again
    assert again.store.url == a.store.url and again.store.get(item)["label"] == "refund_request"


def test_workbench_on_ner_data_has_the_sentence_view(tmp_path):
    from workbench.sample import make_ner_sample

    path = tmp_path / "ner.parquet"
    make_ner_sample(n_sentences=20).to_parquet(path)
    wb = Workbench(str(path), runs_dir=tmp_path / "runs", id_column="id", task="token-classification")
    assert [wb.get_title(i) for i in range(5)] == ["Labels", "Sentences", "Quality", "Fine-tune", "Metrics"]
    assert wb.sentences.sentence["total"] == 20 and wb.active is None


def test_the_ner_quality_panel_checks_tag_consistency_and_opens_the_sentences(tmp_path):
    from workbench.sample import make_ner_sample

    path = tmp_path / "ner.parquet"
    sample = make_ner_sample(seed=0)
    sample.to_parquet(path)
    wb = Workbench(str(path), runs_dir=tmp_path / "runs", id_column="id", task="token-classification")
    panel = wb.quality
    assert panel.mode.value == "consistency" and "no scan yet" in panel.last_scan.value
    panel.button.click()
    panel._thread.join(timeout=120)
    assert "span(s) tagged unlike the same words elsewhere" in panel.report.value and panel.progress.value == 4
    assert "tag consistency" in panel.last_scan.value
    buttons = [b for b in panel.issue_buttons.children if b.description.startswith("Review inconsistent_tag (")]
    assert buttons, [b.description for b in panel.issue_buttons.children]
    buttons[0].click()
    shown = wb.sentences.sentence
    assert shown["total"] == wb.store.count({"issue": "inconsistent_tag"}) > 0
    assert shown["item_id"] in set(sample.loc[sample["has_error"], "id"])  # the worst is a planted error


def test_cancel_on_the_ner_quality_panel_stops_its_fold_tagger(tmp_path, tiny_bert):
    import json
    import time

    from workbench.sample import make_ner_sample
    from workbench.token_scan import tagger_config

    path = tmp_path / "ner.parquet"
    make_ner_sample(seed=0).to_parquet(path)
    wb = Workbench(str(path), runs_dir=tmp_path / "runs", id_column="id", task="token-classification")
    panel = wb.quality
    panel.config = tagger_config(model=str(tiny_bert), epochs=2000, max_length=32, precision="fp32")
    panel.mode.value = "taggers"
    panel.button.click()
    deadline = time.monotonic() + 90
    statuses = tmp_path / "runs"
    while time.monotonic() < deadline and not any('"running"' in p.read_text()
                                                  for p in statuses.glob("*/status.json")):
        time.sleep(0.2)
    panel.cancel_button.click()
    panel._thread.join(timeout=90)
    assert panel.stage.value.startswith("scan cancelled"), panel.stage.value
    assert [json.loads(p.read_text())["state"] for p in statuses.glob("*/status.json")] == ["cancelled"]
    assert "no scan yet" in panel.last_scan.value  # nothing written


def test_metrics_panel_clicks_on_a_bar_and_a_confusion_cell_open_the_browser(store, tmp_path):
    from plotly.callbacks import InputDeviceState, Points

    table = store.to_pandas()
    labels = store.labels
    y = table["label"].to_numpy()
    pred = np.where(np.arange(len(y)) % 5 == 0, labels[1], y)  # every fifth item predicted as the second class
    run = make_run(tmp_path / "runs", "r", y, pred, labels)
    frame = pd.read_parquet(run / "predictions" / "test.parquet")
    frame["item_id"] = table["item_id"].tolist()
    frame.to_parquet(run / "predictions" / "test.parquet")
    browser = LabelBrowser(store, page_size=500)
    panel = MetricsPanel(tmp_path / "runs", store, browser=browser)
    panel.wait()
    bars, heatmap = panel.figures.children[:2]
    trace = bars.data[2]  # the F1 bars
    row = list(trace.customdata).index(labels[0])
    state = InputDeviceState(ctrl=False, alt=False, shift=False, meta=False, button=0, buttons=1)
    trace._dispatch_on_click(Points(point_inds=[row], xs=[0.5], ys=[trace.y[row]], trace_name="f1", trace_index=2),
                             state)
    assert {r["item_id"] for r in browser.rows} == set(panel.mistakes(labels[0])) != set()
    cells = heatmap.data[0].customdata
    i = next(i for i, r in enumerate(cells) if r[0][0] == labels[0])
    j = next(j for j, c in enumerate(cells[i]) if c[1] == labels[1])
    heatmap.data[0]._dispatch_on_click(Points(point_inds=[[i, j]], xs=[j], ys=[i], trace_name="", trace_index=0),
                                       state)
    expected = set(table["item_id"][(y == labels[0]) & (pred == labels[1])])
    assert expected and {r["item_id"] for r in browser.rows} == expected
    assert "predicted as" in panel.message.value


def test_an_unexpected_error_in_a_background_thread_is_shown_not_lost(store, monkeypatch):
    """A bug inside a panel's worker thread ends in the panel's error box, and the button comes back."""
    import workbench.scan

    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(workbench.scan, "scan", broken)
    panel = QualityPanel(store)
    panel.scan(wait=True)
    assert "unexpected KeyError" in panel.report.value and "boom" in panel.report.value
    assert "labels are saved" in panel.report.value
    assert panel.button.disabled is False
