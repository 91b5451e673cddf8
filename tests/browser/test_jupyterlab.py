"""The quickstart in a real JupyterLab, driven by Chromium through Playwright: run all cells, use the grid's keys.

Needs Debian's Chromium at /usr/bin/chromium (``make test`` installs it) and the
Playwright Python package; fails with a message, never skips, when either is missing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from workbench import LabelStore

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "build" / "artifacts"
XSS = 'please refund my money now <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script>'
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make test does: apt-get install chromium)")
    import nbformat
    import papermill.iorw as pmio
    import papermill.parameterize as pmp

    from workbench.notebooks import NOTEBOOK_DIR
    from workbench.sample import make_classification_sample

    work = tmp_path_factory.mktemp("lab")
    frame = make_classification_sample(n_items=500, seed=11)
    frame.loc[0, ["text", "label"]] = [XSS, "account_access"]  # a wrong label, so it ranks near the top
    frame.to_parquet(work / "data.parquet")
    nb = pmio.load_notebook_node(str(NOTEBOOK_DIR / "00_quickstart.ipynb"))
    nb = pmp.parameterize_notebook(nb, {"DATA_PATH": str(work / "data.parquet"), "ID_COLUMN": "id",
                                        "OUTPUT_DIR": str(work / "out"), "STORE_PATH": str(work / "labels.db"),
                                        "AUTHOR": "browser-test", "TRAIN": False})
    nbformat.write(nb, work / "quickstart.ipynb")
    port, token = _free_port(), uuid.uuid4().hex
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           "--LabApp.news_url=", "--ServerApp.disable_check_xsrf=False"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    # No "news?" toast over the screenshots: answer it in the user settings up front.
    settings = work / ".jupyter" / "lab" / "user-settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(os.environ, HF_HUB_OFFLINE="1", JUPYTER_CONFIG_DIR=str(work / ".jupyter"),
               JUPYTERLAB_SETTINGS_DIR=str(settings))
    log = (work / "lab.log").open("w")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("JupyterLab did not start: " + (work / "lab.log").read_text()[-2000:])
    yield {"url": f"http://127.0.0.1:{port}", "token": token, "work": work}
    server.send_signal(signal.SIGTERM)  # its own PID, not a wrapper's
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def open_and_run_all(p, lab, notebook: str, *, viewport: dict[str, int]):
    """Open ``notebook`` in a fresh JupyterLab workspace and start Run All Cells; returns (browser, page)."""
    workspace = f"t{uuid.uuid4().hex[:8]}"
    browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
    page = browser.new_page(viewport=viewport)
    page.goto(f"{lab['url']}/lab/workspaces/{workspace}/tree/{notebook}?token={lab['token']}")
    page.wait_for_selector(f"{PANEL} .jp-Notebook", timeout=120_000)
    page.wait_for_selector("#jp-main-statusbar >> text=Idle", timeout=120_000)
    page.click("text=Run", timeout=30_000)
    page.click("text=Run All Cells", timeout=30_000)
    return browser, page


def test_quickstart_runs_and_the_grid_takes_keys(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    panel = PANEL
    with sync_playwright() as p:
        browser, page = open_and_run_all(p, lab, "quickstart.ipynb", viewport={"width": 1500, "height": 1000})
        page.wait_for_selector(f"{panel} .wb-browser table.wb-grid", timeout=600_000)
        page.wait_for_function("() => !document.body.innerText.includes('Loading widget')", timeout=60_000)
        page.wait_for_selector("#jp-main-statusbar >> text=Idle", timeout=600_000)
        page.screenshot(path=str(ARTIFACTS / "quickstart-browser.png"), full_page=False)
        assert page.evaluate("() => window.__pwned") is None
        # the worst label is under the cursor, and the line above the grid says why it was flagged
        why = page.inner_text(f"{panel} .wb-browser .wb-why")
        assert why.startswith("why") and "out-of-fold probability of the given label" in why, why

        page.click(f"{panel} .wb-browser .wb-bar")  # focus the grid without moving its cursor
        first = page.get_attribute(f"{panel} tr.wb-row[data-row='1']", "data-item")
        latencies = {}
        for key, wait_for in (("j", "tr.wb-row.wb-cursor[data-row='1']"), ("2", None), ("a", None), ("u", None)):
            before = page.inner_html(f"{panel} .wb-browser table")
            start = time.perf_counter()
            page.keyboard.press(key)
            if wait_for:
                page.wait_for_selector(f"{panel} {wait_for}", timeout=10_000)
            else:
                page.wait_for_function(
                    "([sel, old]) => document.querySelector(sel).innerHTML !== old",
                    arg=[f"{panel} .wb-browser table", before], timeout=10_000)
            latencies[key] = round((time.perf_counter() - start) * 1000, 1)
        page.screenshot(path=str(ARTIFACTS / "quickstart-after-keys.png"))
        # "l" opens a box to type a class into (the way past the 9 digit keys); Enter assigns it to the cursor's row
        with LabelStore.open(lab["work"] / "labels.db") as store:
            third = store.labels[2]
        before = page.inner_html(f"{panel} .wb-browser table")
        page.keyboard.press("l")
        page.wait_for_selector(f"{panel} .wb-picker input", state="visible", timeout=10_000)
        page.keyboard.type(third.replace("_", " ").upper())
        page.keyboard.press("Enter")
        page.wait_for_function("([sel, old]) => document.querySelector(sel).innerHTML !== old",
                               arg=[f"{panel} .wb-browser table", before], timeout=10_000)
        assert page.inner_text(f"{panel} tr.wb-row.wb-cursor .wb-label") == third
        assert not page.is_visible(f"{panel} .wb-picker")
        # the row with markup in its text: page until it shows, then it must read as text and run nothing
        for _ in range(40):
            if "please refund my money now" in page.inner_text(f"{panel} .wb-browser"):
                break
            before = page.inner_html(f"{panel} .wb-browser table")
            page.keyboard.press("n")
            page.wait_for_function("([sel, old]) => document.querySelector(sel).innerHTML !== old",
                                   arg=[f"{panel} .wb-browser table", before], timeout=10_000)
        body = page.inner_text(f"{panel} .wb-browser")
        assert '<img src=x onerror="window.__pwned=1">' in body and "<script>window.__pwned=2</script>" in body
        assert page.evaluate("() => window.__pwned") is None
        page.screenshot(path=str(ARTIFACTS / "quickstart-markup-row.png"))
        # the filter bar offers the store's splits; picking one narrows the grid to it
        with LabelStore.open(lab["work"] / "labels.db") as store:
            n_test = store.count({"split": "test"})
        page.select_option(f"{panel} .wb-filters select[name='split']", "test")
        page.wait_for_selector(f"{panel} .wb-browser >> text=· {n_test} items ·", timeout=10_000)
        browser.close()

    store = LabelStore.open(lab["work"] / "labels.db")
    history = store.history(author="browser-test")
    rows = history[history["field"] == "label"]
    assert list(rows["source"])[-4:] == ["human", "suggestion", "undo", "human"], history
    assert rows.iloc[-4]["item_id"] == first and rows.iloc[-4]["new_value"] == store.labels[1]
    # "2", then the accepted suggestion undone, then the class typed into the "l" box
    assert rows.iloc[-1]["item_id"] == first and store.get(first)["label"] == store.labels[2]
    (ARTIFACTS / "key_latency_ms.json").write_text(json.dumps(latencies, indent=2))
    print("key press to grid update, ms:", latencies)


PANELS_SETUP = '''
import numpy as np
import pandas as pd
from pathlib import Path
from widgets import LabelBrowser, SentenceView, Workbench
from workbench import LabelStore, load_dataset
from workbench.annotations import import_annotations
from workbench.config import FineTuneConfig
from workbench.launch import launch
from workbench.sample import make_classification_sample, make_ner_sample
from workbench.token_scan import scan_tokens

work = Path(".").resolve()
store = LabelStore.open(work / "panels.db")
store.import_dataset(load_dataset(make_classification_sample(n_items=400, seed=4), id_column="id"))
config = FineTuneConfig(epochs=3, batch_size=16, learning_rate=2e-4, max_length=48, predict_splits=["test"])
launch(config, store=store, runs_dir=work / "runs", run_id="demo-run").wait()
wb = Workbench(store, runs_dir=work / "runs", author="docs", page_size=8)
wb.quality.scan(wait=True)
wb.finetune.refresh_runs()
wb.metrics.refresh()
wb.active.pool.value = "unreviewed"
wb.active.batch.value = 8
wb.active.query(wait=True)

sample = make_classification_sample(n_items=120, seed=6)
rng = np.random.default_rng(0)
labels = sorted(sample["true_label"].unique())
rows = [(str(i), t, f"annotator_{a}", y if rng.random() < 0.8 else labels[rng.integers(len(labels))])
        for i, t, y in zip(sample["id"], sample["text"], sample["true_label"]) for a in rng.choice(5, 3, replace=False)]
team = LabelStore.open(work / "team.db")
import_annotations(team, pd.DataFrame(rows, columns=["item_id", "text", "annotator", "label"]))
adjudication = LabelBrowser(team, author="judge", source="adjudication", filters={"disagree": True},
                            order_by="score", page_size=8)

ner = LabelStore.open(work / "ner.db")
ner.import_dataset(load_dataset(make_ner_sample(n_sentences=120), task="token-classification", id_column="id"))
scan_tokens(ner, runs_dir=work / "runs", config=FineTuneConfig(task="token-classification", epochs=2,
                                                               learning_rate=3e-4, max_length=48))
sentences = SentenceView(ner, author="docs", filters={"issue": "label"})

many = LabelStore.open(work / "many.db")
intents = [f"intent_{i:02d}" for i in range(30)]
many.import_dataset(load_dataset(pd.DataFrame({"text": [f"message {i}" for i in range(60)], "label": intents * 2}),
                                 labels=intents))
wide = LabelBrowser(many, author="docs", page_size=4)

onto = LabelStore.open(work / "onto.db")
onto_types = ["PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE",
              "DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL"]
onto.import_dataset(load_dataset(pd.DataFrame({"tokens": [["Hamlet", "opened", "on", "Monday"]],
                                               "tags": [["B-PERSON", "O", "O", "O"]]}),
                                 task="token-classification", labels=onto_types))
wide_types = SentenceView(onto, author="docs")
'''
PANEL_CELLS = {"label-browser": "wb.browser", "quality": "wb.quality", "fine-tune": "wb.finetune",
               "metrics": "wb.metrics", "active-learning": "wb.active", "adjudication": "adjudication",
               "sentence-view": "sentences", "many-classes": "wide", "many-entity-types": "wide_types"}


def test_every_panel_renders_in_jupyterlab(lab):
    """Each panel in its own cell: all render (no 'Loading widget...'), each is screenshotted for docs/."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    cells = [new_code_cell(PANELS_SETUP.strip())] + [new_code_cell(expr) for expr in PANEL_CELLS.values()]
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                     "language": "python"}}),
                   lab["work"] / "panels.ipynb")
    panel = PANEL
    with sync_playwright() as p:
        # A tall window, so each panel is in view for its screenshot.
        browser, page = open_and_run_all(p, lab, "panels.ipynb", viewport={"width": 1400, "height": 2400})
        page.wait_for_function(  # the last panel drawn, or a traceback: fail at once, not at the timeout
            "() => document.querySelector('.wb-sentence .wb-more-names') || "
            "document.body.innerText.includes('Traceback (most recent call last)')", timeout=600_000)
        body = page.inner_text(f"{panel} .jp-Notebook")
        assert "Traceback (most recent call last)" not in body, body[body.find("Traceback") - 2000:][:4000]
        page.wait_for_selector("#jp-main-statusbar >> text=Idle", timeout=600_000)
        page.wait_for_function("() => !document.body.innerText.includes('Loading widget')", timeout=60_000)
        outputs = page.locator(f"{panel} .jp-CodeCell .jp-OutputArea")
        assert outputs.count() == len(PANEL_CELLS) + 1
        for i, name in enumerate(PANEL_CELLS, start=1):
            area = outputs.nth(i)
            area.scroll_into_view_if_needed()
            text = area.inner_text()
            assert "Error" not in text.split("\n")[0] and "Traceback" not in text, (name, text[:500])
            area.screenshot(path=str(ARTIFACTS / f"panel-{name}.png"))
        expected = {"label-browser": ".wb-grid tr.wb-row", "quality": "table", "fine-tune": ".js-plotly-plot",
                    "metrics": "select", "active-learning": "button", "adjudication": ".wb-vote",
                    "sentence-view": ".wb-chip-suggested", "many-classes": ".wb-more-names",
                    "many-entity-types": ".wb-more-names"}
        for i, (name, selector) in enumerate(expected.items(), start=1):
            assert outputs.nth(i).locator(selector).count() > 0, f"{name}: nothing matches {selector}"
        # the sentence view's "t": type an entity type, Enter retags the entity under the token cursor
        sentence = outputs.nth(list(PANEL_CELLS).index("sentence-view") + 1).locator(".wb-sentence")
        sentence.locator(".wb-bar").click()
        first_tag = sentence.locator(".wb-chip").first.get_attribute("title").split(" ")[0]  # "B-PER → suggested ..."
        wanted = next(t for t in ("ORG", "PER", "LOC") if not first_tag.endswith(t))
        page.keyboard.press("t")
        sentence.locator(".wb-picker input").wait_for(state="visible", timeout=10_000)
        page.keyboard.type(wanted.lower())
        page.keyboard.press("Enter")
        page.wait_for_function("([sel, tag]) => document.querySelector(sel).getAttribute('title').startsWith(tag)",
                               arg=[".wb-sentence .wb-chip", f"B-{wanted}"], timeout=10_000)
        assert not sentence.locator(".wb-picker").is_visible()
        # 30 classes: nine buttons with their digits and one for the rest, which opens the type-a-name box
        wide = outputs.nth(list(PANEL_CELLS).index("many-classes") + 1)
        assert wide.locator("button.wb-assign").count() == 9
        assert wide.locator(".wb-more-names").inner_text() == "l: 21 more…"
        wide.locator(".wb-more-names").click()
        wide.locator(".wb-picker input").wait_for(state="visible", timeout=10_000)
        page.keyboard.type("intent 27")
        page.keyboard.press("Enter")
        wide.locator("tr.wb-cursor .wb-label >> text=intent_27").wait_for(timeout=10_000)
        # 18 entity types: the same in the sentence view
        types = outputs.nth(list(PANEL_CELLS).index("many-entity-types") + 1)
        assert types.locator("button.wb-type").count() == 10  # nine types and O
        types.locator(".wb-more-names").click()
        types.locator(".wb-picker input").wait_for(state="visible", timeout=10_000)
        page.keyboard.type("work of")
        page.keyboard.press("Enter")
        page.wait_for_function("(el) => el.querySelector('.wb-chip').getAttribute('title') === 'B-WORK_OF_ART'",
                               arg=types.element_handle(), timeout=10_000)
        browser.close()
    with LabelStore.open(lab["work"] / "ner.db") as ner:
        assert ner.history(author="docs").iloc[-1]["field"] == "label"  # written under the view's author
