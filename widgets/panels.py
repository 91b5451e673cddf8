"""QualityPanel, FineTunePanel, MetricsPanel and Workbench: thin ipywidgets views over the core.

Heavy work never runs in the kernel's thread: scans run in a background thread, fine-tunes in a
child process (``workbench.launch``) that a background thread polls.
"""

from __future__ import annotations

import html
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import ipywidgets as W
import pandas as pd

from widgets.browser import LabelBrowser
from workbench.config import FineTuneConfig
from workbench.errors import DataError, WorkbenchError, near_misses
from workbench.run_report import html_table
from workbench.runs import last_step
from workbench.store import LabelStore, is_store


def _error_box(message: str) -> str:
    return f"<div style='color:#c0392b'><b>Error:</b> {html.escape(message)}</div>"


def _failure_box(exc: BaseException) -> str:
    """A message for any exception in a background thread, which would otherwise vanish silently."""
    if isinstance(exc, WorkbenchError):
        return _error_box(str(exc))
    # Not a user error: show the type and the last frames so the report of the bug is useful.
    tail = "".join(traceback.format_exception(exc)[-3:])
    return _error_box(f"unexpected {type(exc).__name__}: {exc}. Your labels are saved. This is a bug in the "
                      f"workbench; please report it with this text:\n{tail}")


class _ScanPanel(W.VBox):
    """What the scan panels share: a mode toggle and a button that start a scan in a background thread, which scan
    the store's scores come from, the outcome, and a button per issue type that opens a view on those items.

    A subclass gives ``MODES`` (label, value), ``BUTTON``, and ``_work`` (run the scan, stopping when ``self._stop``
    is set), ``_stage`` (what is running), ``_show`` (the outcome) and, optionally, ``_done`` (what follows a scan).
    """

    MODES: list[tuple[str, str]] = []
    BUTTON = "Scan"
    #: What keeps an item undecided: not marked reviewed, and its label as first given (a change is a decision)
    UNDECIDED = {"status": ["unreviewed", "skipped", "flagged", "queued"], "changed": False}

    def __init__(self, store: LabelStore, *, view: Any, mode: str) -> None:
        self.store = store
        self._view = view  # the browser or sentence view an issue button filters
        self.mode = W.ToggleButtons(options=self.MODES, value=mode, style={"button_width": "auto"})
        self.button = W.Button(description=self.BUTTON, icon="search", button_style="primary")
        # a fine-tune per fold, or the embedding of a large store, is minutes on a CPU
        self.cancel_button = W.Button(description="Cancel", icon="stop", disabled=True)
        self._stop = threading.Event()
        self.progress = W.IntProgress(min=0, max=4, description="", layout=W.Layout(width="300px"))
        self.stage = W.HTML("")
        self.report = W.HTML("")
        self.issue_buttons = W.HBox([])
        self._issue_counts: dict[str, int] = {}
        self.result: Any = None
        self._thread: threading.Thread | None = None
        self.button.on_click(lambda _b: self.scan())
        self.cancel_button.on_click(lambda _b: self.cancel())
        self.last_scan = W.HTML("")
        self.show_last_scan()
        super().__init__([W.HBox([self.mode, self.button, self.cancel_button, self.progress]), self.last_scan,
                          self.stage, self.report, self.issue_buttons])

    def show_last_scan(self) -> None:
        """Say which scan the store's scores come from and how many labels changed since (a reopened store)."""
        from workbench.report import scan_note

        self.last_scan.value = f"<i>{html.escape(scan_note(self.store.active_scan()))}</i>"

    def refresh(self) -> None:
        """Catch up with the store after work in another tab: the labels changed since the scan, and on each button
        how many of its items are still to decide (the Workbench calls this when the tab is opened)."""
        self.show_last_scan()
        self._show_issue_buttons(self._issue_counts)

    def _counted(self, what: str, count: int, filters: dict[str, Any]) -> str:
        """``what`` with its count, and how many of those items are still undecided once some are."""
        left = self.store.count({**filters, **self.UNDECIDED})
        return f"{what} ({count})" if left >= count else f"{what} ({left} of {count} left)"

    def scan(self, *, wait: bool = False) -> None:
        """Start a scan in a background thread (``wait=True`` blocks, for tests and scripts)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.button.disabled = self.mode.disabled = True
        self._stop.clear()
        self.cancel_button.disabled = False
        self.progress.value = 0
        self.stage.value = self._stage()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if wait:
            self._thread.join()

    def cancel(self, *, wait: bool = False) -> None:
        """Stop the scan under way: a fold fine-tune is cancelled (it finishes its step), the embedding stops after
        its batch (what it embedded stays cached), and the store keeps its last scan."""
        if self._thread is None or not self._thread.is_alive():
            return
        self._stop.set()
        self.cancel_button.disabled = True
        self.stage.value = "stopping the scan..."
        if wait:
            self._thread.join()

    def _run(self) -> None:
        from workbench.errors import Cancelled

        try:
            self.progress.value = 1
            self.result = self._work()
            self.progress.value = 4
            self._show(self.result)
            self.show_last_scan()
            self._done()
        except Cancelled:
            self.progress.value = 0
            self.stage.value = "scan cancelled; the scores shown are the last scan's"
        except Exception as exc:  # a thread's exception would otherwise be lost
            self.stage.value = ""
            self.report.value = _failure_box(exc)
        finally:
            self.cancel_button.disabled = True
            self.button.disabled = self.mode.disabled = False

    def _show_issue_buttons(self, counts: dict[str, int]) -> None:
        self._issue_counts = dict(counts)
        buttons = []
        for kind, count in counts.items():
            b = W.Button(description=self._counted(f"Review {kind}", count, {"issue": kind}),
                         layout=W.Layout(width="auto"))
            b.on_click(lambda _b, k=kind: self.open_issue(k))
            buttons.append(b)
        self.issue_buttons.children = buttons

    def open_issue(self, kind: str) -> None:
        """Filter the view to items with this issue type."""
        if self._view is not None:
            self._view.set_filters({"issue": kind})

    def _stage(self) -> str:
        raise NotImplementedError

    def _work(self) -> Any:
        raise NotImplementedError

    def _show(self, result: Any) -> None:
        raise NotImplementedError

    def _done(self) -> None:
        """After a scan succeeded: nothing unless a subclass says."""


class QualityPanel(_ScanPanel):
    """Run a scan in the background; show the report; open the browser on one issue type.

    The toggle picks the out-of-fold probabilities: ``quick`` (frozen embeddings and TF-IDF, seconds) or
    ``finetune`` (one short fine-tune per fold, minutes; ranks wrong labels better where frozen embeddings are
    weak). ``finetune``: FineTuneConfig fields for those fine-tunes; the other options go to :func:`scan`.
    """

    MODES = [("quick (seconds)", "quick"), ("fine-tune (minutes)", "finetune")]
    BUTTON = "Scan labels"

    def __init__(self, store: LabelStore, *, browser: LabelBrowser | None = None,
                 finetune: dict[str, Any] | None = None, **scan_options: Any) -> None:
        import inspect

        from workbench.scan import scan

        # checked here, not minutes later in the background scan
        known = set(inspect.signature(scan).parameters) - {"data", "progress", "finetune"}
        unknown = sorted(set(scan_options) - known)
        if unknown:
            raise DataError(f"unknown scan option(s) {unknown}{near_misses(unknown, known)}; the Quality tab takes "
                            f"those of workbench.scan.scan: {sorted(known)}")
        self.browser = browser
        self.finetune = finetune
        mode = scan_options.pop("mode", "quick")
        self.scan_options = scan_options
        super().__init__(store, view=browser, mode=mode)
        self.mixup_buttons = W.HBox([], layout=W.Layout(flex_flow="row wrap"))
        self._mixups: Any = None
        self.children = (*self.children, self.mixup_buttons)

    def _stage(self) -> str:
        return ("embedding and cross-validating..." if self.mode.value == "quick" else
                "fine-tuning one model per fold (minutes)...")

    def _work(self) -> Any:
        from workbench.scan import scan

        options = dict(self.scan_options, mode=self.mode.value)
        if self.mode.value == "finetune" and self.finetune:
            options["finetune"] = self.finetune
        return scan(self.store, progress=False, stop=self._stop, **options)

    def _show(self, result: Any) -> None:
        from workbench.report import report_notes
        from workbench.scan_report import noise_matrix_html

        seconds = result.seconds
        self.stage.value = (f"done in {sum(seconds.values()):.1f} s ("
                            + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()) + ")")
        report = result.report
        o = report.overall
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in o["issue_counts"].items())
        self.report.value = (
            f"<p>{o['n_items']} items, {o['n_classes']} classes · class balance {o['class_balance']:.3f} · "
            f"estimated noise rate {o['estimated_noise_rate']:.3f} · coverage {o['coverage']:.3f}</p>"
            + (f"<p>{o['agreement']['n_annotators']} annotators · percent agreement "
               f"{o['agreement']['percent_agreement']:.3f} · Fleiss κ {o['agreement']['fleiss_kappa']:.3f} · "
               f"Krippendorff α {o['agreement']['krippendorff_alpha']:.3f}</p>" if o.get("agreement") else "")
            + "".join(f"<p>{html.escape(note)}</p>" for note in report_notes(o))
            + f"<table><tr><th>issue</th><th>items</th></tr>{rows}</table>"
            + html_table(report.per_class, "{:.3f}")
            + (f"<p><b>estimated noise matrix</b></p>{noise_matrix_html(report.noise_matrix)}"
               if not report.noise_matrix.empty else ""))
        self._show_issue_buttons(o["issue_counts"])
        self._show_mixup_buttons(report.mixups)

    #: Mix-ups offered as buttons (the most frequent pairs; the report lists them all).
    MIXUP_BUTTONS = 5

    def refresh(self) -> None:
        super().refresh()
        if self._mixups is not None:
            self._show_mixup_buttons(self._mixups)

    def _show_mixup_buttons(self, mixups: Any) -> None:
        self._mixups = mixups
        buttons: list[W.Widget] = []
        for row in mixups.head(self.MIXUP_BUTTONS).itertuples():
            filters = {"label": row.given, "suggested_label": row.suggested, "issue": "label"}
            b = W.Button(description=self._counted(f"{row.given} → {row.suggested}", row.items, filters),
                         layout=W.Layout(width="auto"),
                         tooltip=f"review the {row.items} items labelled {row.given!r} the scan suggests are "
                                 f"{row.suggested!r}")
            b.on_click(lambda _b, g=row.given, s=row.suggested: self.open_mixup(g, s))
            buttons.append(b)
        self.mixup_buttons.children = ([W.HTML("<b>likely mix-ups:</b>&nbsp;"), *buttons] if buttons else [])

    def open_mixup(self, given: str, suggested: str) -> None:
        """Filter the browser to the flagged items labelled ``given`` whose suggestion is ``suggested``: a
        systematic confusion, reviewed (and often fixed with ``a``) together."""
        if self._view is not None:
            self._view.set_filters({"label": given, "suggested_label": suggested, "issue": "label"})

    def _done(self) -> None:
        if self.browser is not None:
            self.browser.set_order(None)  # worst score first now that scores exist


class TagQualityPanel(_ScanPanel):
    """NER: find suspect tags in the background and open the sentence view on them.

    ``consistency`` compares every span with the same words elsewhere in the store (seconds, no model);
    ``taggers`` cross-fits ``folds`` fold taggers (minutes on a CPU; the consistency check rides along).
    ``config``: the fold taggers' FineTuneConfig (default :func:`workbench.token_scan.tagger_config`).
    """

    MODES = [("consistency (seconds, no model)", "consistency"), ("fold taggers (minutes)", "taggers")]
    BUTTON = "Scan tags"

    def __init__(self, store: LabelStore, *, sentences: Any = None, runs_dir: str | Path = "runs", folds: int = 2,
                 config: FineTuneConfig | None = None, mode: str = "consistency") -> None:
        self.sentences = sentences
        self.runs_dir = Path(runs_dir).expanduser()
        self.folds = folds
        self.config = config
        super().__init__(store, view=sentences, mode=mode)

    def _stage(self) -> str:
        return ("comparing each span with the same words elsewhere..." if self.mode.value == "consistency" else
                f"fine-tuning {self.folds} fold taggers (minutes)...")

    def _work(self) -> Any:
        from workbench.token_scan import check_tag_consistency, scan_tokens

        if self.mode.value == "consistency":
            return check_tag_consistency(self.store)
        return scan_tokens(self.store, folds=self.folds, config=self.config, runs_dir=self.runs_dir, stop=self._stop)

    def _show(self, result: Any) -> None:
        sentences = result.sentences
        counts: dict[str, int] = {}
        for issues in sentences["issues"]:
            for kind in issues:
                counts[kind] = counts.get(kind, 0) + 1
        self.stage.value = f"done in {result.seconds:.1f} s"
        spans = result.inconsistent.head(15)
        self.report.value = (
            f"<p>{len(sentences)} sentences scored · {int((sentences['n_suspect_tokens'] > 0).sum())} with a suspect "
            f"tag · {len(result.inconsistent)} span(s) tagged unlike the same words elsewhere</p>"
            + (spans.to_html(index=False, float_format=lambda v: f"{v:.3f}", escape=True) if len(spans) else ""))
        self._show_issue_buttons(counts)

    def _done(self) -> None:
        if self.sentences is not None:
            self.sentences.set_filters(None)  # worst sentence first now that scores exist


class FineTunePanel(W.VBox):
    """A form over FineTuneConfig, Launch / Cancel / Resume, live progress and curves, and the run list."""

    BASIC = ("model", "epochs", "learning_rate", "batch_size", "max_length")
    # the dict fields take a JSON object; empty is off
    PLACEHOLDERS = {"lora": 'off; e.g. {"r": 8}', "augment": 'off; e.g. {"copies": 1, "swap_rate": 0.1}'}

    def __init__(self, store: LabelStore, runs_dir: str | Path = "runs", *, poll_seconds: float = 2.0) -> None:
        self.store = store
        self.runs_dir = Path(runs_dir).expanduser()
        self.poll_seconds = poll_seconds
        defaults = FineTuneConfig(task=store.task or "text-classification")
        self.inputs: dict[str, W.Widget] = {}
        # wide enough for the longest field name (early_stopping_patience), so no label is cut
        label = {"style": {"description_width": "170px"}, "layout": W.Layout(width="420px")}
        for f in fields(FineTuneConfig):
            if f.name == "labels":
                continue  # the store's label set
            value = getattr(defaults, f.name)
            if isinstance(value, bool):
                widget: W.Widget = W.Checkbox(value=value, description=f.name, **label)
            elif isinstance(value, int):
                widget = W.IntText(value=value, description=f.name, **label)
            elif isinstance(value, float):
                widget = W.FloatText(value=value, description=f.name, **label)
            elif isinstance(value, str) or value is None:
                hint = self.PLACEHOLDERS.get(f.name, "default")
                widget = W.Text(value=value or "", description=f.name, placeholder=hint, **label)
            else:
                continue
            self.inputs[f.name] = widget
        basic = [self.inputs[n] for n in self.BASIC]
        advanced = W.Accordion([W.VBox([w for n, w in self.inputs.items() if n not in self.BASIC])])
        advanced.set_title(0, "Advanced")
        advanced.selected_index = None
        self.launch_button = W.Button(description="Launch", button_style="success", icon="play")
        self.cancel_button = W.Button(description="Cancel", icon="stop", disabled=True)
        # for the run shown when it was cancelled, failed or killed (a kernel or machine that went down)
        self.resume_button = W.Button(description="Resume", icon="repeat", disabled=True,
                                      tooltip="continue the run from its last finished epoch")
        self.progress = W.IntProgress(min=0, max=1, layout=W.Layout(width="300px"))
        self.state = W.HTML(self._device_line())
        self.runs = W.HTML("")
        # taggers: entity-level F1 (token accuracy sits near 1 whatever the tagger does with the entities)
        self.eval_metric, eval_name = (("eval_f1_micro", "eval entity F1") if store.task == "token-classification"
                                       else ("eval_accuracy", "eval accuracy"))
        self.curves = self._figure(eval_name)
        self.run: Any = None
        self._poller: threading.Thread | None = None
        # called (no arguments) when a run this panel follows ends: the Workbench refreshes its Metrics tab
        self.on_finished: list[Callable[[], Any]] = []
        self.launch_button.on_click(lambda _b: self.launch())
        self.cancel_button.on_click(lambda _b: self.cancel())
        self.resume_button.on_click(lambda _b: self.resume())
        super().__init__([W.VBox(basic), advanced,
                          W.HBox([self.launch_button, self.cancel_button, self.resume_button, self.progress]),
                          self.state, self.curves, self.runs])
        self.refresh_runs()

    @staticmethod
    def _device_line() -> str:
        from workbench.devices import default_device
        from workbench.embed import choose_precision

        device = default_device()
        return f"device: {device}, precision for 'auto': {choose_precision('auto', device)}"

    @staticmethod
    def _figure(eval_name: str) -> Any:
        import plotly.graph_objects as go

        fig = go.FigureWidget()
        fig.add_scatter(name="loss", mode="lines")
        fig.add_scatter(name=eval_name, mode="lines+markers", yaxis="y2")
        # the accuracy axis gets its own ticks (left to itself, the widget synced them to the loss grid: 0.452);
        # the legend goes above the plot, where it covers neither axis title
        fig.update_layout(height=280, margin={"t": 30, "r": 60}, xaxis={"title": {"text": "step"}},
                          yaxis={"title": {"text": "training loss"}},
                          yaxis2={"overlaying": "y", "side": "right", "range": [0, 1.02], "tickmode": "array",
                                  "tickvals": [0, 0.25, 0.5, 0.75, 1], "showgrid": False,
                                  "title": {"text": eval_name}},
                          legend={"orientation": "h", "x": 0, "y": 1.12})
        return fig

    def config(self) -> FineTuneConfig:
        """The form's values as a FineTuneConfig (raises a WorkbenchError naming a bad field)."""
        values: dict[str, Any] = {}
        defaults = FineTuneConfig()
        for name, widget in self.inputs.items():
            value = widget.value
            if isinstance(widget, W.Text):  # an emptied box means the field's default ("auto", or None)
                value = value or getattr(defaults, name)
            values[name] = value
        values["task"] = self.store.task or values["task"]
        return FineTuneConfig.from_dict(values)

    def launch(self, *, wait: bool = False) -> None:
        from workbench.launch import launch

        try:
            self.run = launch(self.config(), store=self.store, runs_dir=self.runs_dir)
        except WorkbenchError as exc:
            self.state.value = _error_box(str(exc))
            return
        self._follow(wait=wait)

    def resume(self, *, wait: bool = False) -> None:
        """Continue the shown run (cancelled, failed or killed) from its last finished epoch, and follow it."""
        if self.run is None:
            return
        try:
            self.run.resume()
        except WorkbenchError as exc:  # it is running after all (another kernel resumed it), or it finished
            self.state.value = _error_box(str(exc))
            return
        self._follow(wait=wait)

    def _follow(self, *, wait: bool = False) -> None:
        """Poll ``self.run`` in a thread until it ends, with Cancel on and Launch and Resume off meanwhile."""
        self.launch_button.disabled = True
        self.resume_button.disabled = True
        self.cancel_button.disabled = False
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self._poller.start()
        if wait:
            self._poller.join()

    def cancel(self, *, wait: bool = False) -> None:
        """Ask the run to stop. The kernel does not wait for it: the worker finishes its step first (or, stuck,
        is stopped after 30 s), and the polling thread shows the state it ends in."""
        if self.run is None:
            return
        self.cancel_button.disabled = True
        stopper = threading.Thread(target=self.run.cancel, kwargs={"timeout": 30}, daemon=True)
        stopper.start()
        if wait:
            stopper.join()
            if self._poller is not None:
                self._poller.join()

    def _poll(self) -> None:
        try:
            while True:
                status = self.run.status()
                self.update(status)
                if status.get("state") in ("finished", "failed", "cancelled"):
                    break
                time.sleep(self.poll_seconds)
            self.refresh_runs()
            for callback in self.on_finished:
                callback()
        except Exception as exc:  # the run goes on in its own process; only the display stopped
            self.state.value = _failure_box(exc)
        finally:
            self.launch_button.disabled = False
            self.cancel_button.disabled = True
            self._offer_resume(self.run.status())

    def update(self, status: dict[str, Any]) -> None:
        """Show a status and the run's metrics so far."""
        metrics = self.run.metrics()
        total = int(status.get("total_steps") or 1)
        self.progress.max = total
        step = last_step(metrics)
        if step is not None:
            self.progress.value = min(total, step)
            loss = metrics.dropna(subset=["loss"]) if "loss" in metrics else pd.DataFrame()
            evals = metrics.dropna(subset=[self.eval_metric]) if self.eval_metric in metrics else pd.DataFrame()
            with self.curves.batch_update():
                if not loss.empty:
                    self.curves.data[0].x, self.curves.data[0].y = list(loss["step"]), list(loss["loss"])
                if not evals.empty:
                    self.curves.data[1].x = list(evals["step"])
                    self.curves.data[1].y = list(evals[self.eval_metric])
        line = f"run {html.escape(self.run.run_id)}: {html.escape(str(status.get('state')))}"
        if status.get("state") == "running" and self.progress.value:
            from workbench.runs import progress_text

            line += " " + progress_text(self.progress.value / total, True, status.get("started"), time.time())
        if status.get("resumed_from_step"):
            line += f" · resumed at step {status['resumed_from_step']}"
        if status.get("n_train"):
            line += f" · {status['n_train']} training items, {status['n_eval']} evaluation items" + (
                f" ({status['n_unlabelled']} unlabelled left out)" if status.get("n_unlabelled") else "")
        if status.get("unused_splits"):
            from workbench.runs import unused_splits_note

            line += f" · {html.escape(unused_splits_note(status['unused_splits']))}"
        if status.get("unknown_tokens"):
            from workbench.runs import unknown_tokens_note

            line += f" · {html.escape(unknown_tokens_note(status['unknown_tokens']))}"
        if status.get("message"):
            line += f" — {html.escape(str(status['message']))}"
        if status.get("hint"):
            line += f" (hint: {html.escape(str(status['hint']))})"
        self.state.value = f"{self._device_line()} · {line}"

    def refresh_runs(self) -> None:
        from workbench.runs import list_runs, readable_runs

        table = list_runs(self.runs_dir)
        if table.empty:
            self.runs.value = "<i>no runs yet</i>"
            return
        shown = readable_runs(table)
        self.runs.value = shown.to_html(index=False, escape=True, float_format=lambda v: f"{v:.3f}", na_rep="")
        if self.run is None:  # opening the panel on a folder with runs: show the latest one's curves
            from workbench.launch import Run

            self.run = Run(self.runs_dir / str(table["run_id"].iloc[-1]))
            status = self.run.status()
            self.update(status)
            self._offer_resume(status)
            if status.get("state") in ("queued", "running"):  # launched before the kernel restarted: follow it,
                self._follow()  # so its curves move and Cancel reaches it


    def _offer_resume(self, status: dict[str, Any]) -> None:
        """Resume on for a run that stopped before its end, off otherwise."""
        self.resume_button.disabled = status.get("state") not in ("cancelled", "failed")


class MetricsPanel(W.VBox):
    """Pick a run (and a baseline); per-class bars, confusion; a class opens the browser on its mistakes."""

    def __init__(self, runs_dir: str | Path, store: LabelStore | None = None, *,
                 browser: LabelBrowser | None = None) -> None:
        self.runs_dir = Path(runs_dir).expanduser()
        self.store = store
        self.browser = browser
        self.run_picker = W.Dropdown(description="run", options=[])
        self.base_picker = W.Dropdown(description="compare to", options=[])
        self.refresh_button = W.Button(description="Refresh", icon="refresh")
        self.class_picker = W.Dropdown(description="class", options=[])
        self.open_button = W.Button(description="Open its mistakes")
        self.message = W.HTML("")
        self.figures = W.VBox([])
        self.scores: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._generation = 0
        self._refreshing = False  # while the pickers' options are replaced, their passing values draw nothing
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.run_picker.observe(lambda _c: None if self._refreshing else self.show(), names="value")
        self.base_picker.observe(lambda _c: None if self._refreshing else self.show(), names="value")
        self.open_button.on_click(lambda _b: self.open_class(self.class_picker.value))
        super().__init__([W.HBox([self.run_picker, self.base_picker, self.refresh_button]),
                          W.HBox([self.class_picker, self.open_button]), self.message, self.figures])
        self.refresh()

    def refresh(self) -> None:
        from workbench.runs import list_runs

        table = list_runs(self.runs_dir)
        done = table[table["state"] == "finished"]["run_id"].tolist() if not table.empty else []
        # new options reset a dropdown to its first one: the picks are put back, so a refresh (or a run finishing
        # in the Fine-tune tab) adds runs without throwing away the comparison on screen
        run, base = self.run_picker.value, self.base_picker.value
        self._refreshing = True
        try:
            self.run_picker.options = done
            self.base_picker.options = [("none", None)] + [(r, r) for r in done]
            self.run_picker.value = run if run in done else (done[-1] if done else None)
            self.base_picker.value = base if base in done else None
        finally:
            self._refreshing = False
        if (self.run_picker.value, self.base_picker.value) != (run, base):
            self.show()

    def show(self, *, wait: bool = False) -> None:
        """Score the picked run (and compare it to the baseline) in a background thread, then draw.

        Scoring reads every prediction and bootstraps intervals, seconds on a large run, so it never
        runs in the kernel's thread. A newer pick supersedes a scoring still under way.
        ``wait=True`` blocks until the figures are drawn (tests, scripts).
        """
        run, base = self.run_picker.value, self.base_picker.value
        if not run:
            return
        with self._lock:
            self._generation += 1
            generation = self._generation
        self.message.value = html.escape(f"scoring {run}...")

        def work() -> None:
            try:
                scores, figs, message = self._score(run, base)
            except WorkbenchError as exc:
                scores, figs, message = None, None, _error_box(str(exc))
            except Exception as exc:  # a thread's exception would otherwise be lost
                scores, figs, message = None, None, _failure_box(exc)
            with self._lock:
                if generation == self._generation:
                    self._draw(scores, figs, message)

        self._thread = threading.Thread(target=work, daemon=True)
        self._thread.start()
        if wait:
            self.wait()

    def wait(self) -> None:
        """Block until the scoring under way (if any) has drawn."""
        if self._thread is not None:
            self._thread.join()

    def _score(self, run: str, base: str | None) -> tuple[Any, list[Any], str]:
        from workbench import plots
        from workbench.metrics import compare_runs, evaluate_run

        scores = evaluate_run(self.runs_dir / run)
        figs = [plots.per_class_bars(scores.table, top=40), plots.confusion_heatmap(scores.confusion)]
        message = ""
        if base and base != run:
            comp = compare_runs(self.runs_dir / base, self.runs_dir / run)
            figs.append(plots.delta_bars(comp.table))
            message = html.escape(f"scored against {comp.gold}. " + " ".join(comp.notes))
        return scores, figs, message

    def _draw(self, scores: Any, figs: list[Any] | None, message: str) -> None:
        import plotly.graph_objects as go

        self.message.value = message
        if scores is None or figs is None:
            return
        self.scores = scores
        picked = self.class_picker.value
        self.class_picker.options = [c for c in scores.table.index if not c.endswith(" avg")]
        if picked in self.class_picker.options:  # another run of the same classes: the class stays picked
            self.class_picker.value = picked
        widgets = [go.FigureWidget(f) for f in figs]
        # Clicking a class's bar opens its mistakes; clicking a confusion cell opens the items in it.
        for trace in widgets[0].data:
            trace.on_click(lambda tr, points, _state: points.point_inds and self.open_class(
                tr.customdata[points.point_inds[0]]))
        widgets[1].data[0].on_click(lambda tr, points, _state: points.point_inds and self.open_cell(
            *tr.customdata[points.point_inds[0][0]][points.point_inds[0][1]]))
        self.figures.children = widgets

    def mistakes(self, cls: str) -> list[str]:
        """Ids of the items of class ``cls`` the run got wrong, or that it wrongly predicted as ``cls``."""
        if self.scores is None:
            return []
        ids: list[str] = []
        for (true, pred), items in self.scores.confusion.cells.items():
            if true != pred and cls in (true, pred):
                ids += items
        return ids

    def cell_items(self, true: str, predicted: str) -> list[str]:
        """Ids of the items of class ``true`` the run predicted as ``predicted``."""
        if self.scores is None:
            return []
        return list(self.scores.confusion.cells.get((true, predicted), []))

    def open_cell(self, true: str, predicted: str) -> None:
        """Filter the browser to one confusion cell (the folded "others" row or column holds many; ignored)."""
        if self.browser is not None and "others" not in (true, predicted):
            self.browser.set_filters({"item_ids": self.cell_items(true, predicted)})
            self.message.value = html.escape(f"{true} predicted as {predicted}: opened in the label browser")

    def open_class(self, cls: str | None) -> None:
        if cls and self.browser is not None:
            self.browser.set_filters({"item_ids": self.mistakes(cls)})


class ActiveLearningPanel(W.VBox):
    """Queue the next batch to label, refit the quick head on what was labelled, and say when to stop.

    The first query embeds the store (cached on disk) in a background thread; the queue opens in
    the label browser (status ``queued``), where labelling an item takes it off the queue.
    """

    def __init__(self, store: LabelStore, *, browser: LabelBrowser | None = None, embeddings: Any = None,
                 features: Any = None, author: str = "analyst") -> None:
        from workbench.active import STRATEGIES

        self.store = store
        self.browser = browser
        self.embeddings = embeddings
        self.features = features
        self.author = author
        self.strategy = W.Dropdown(description="strategy", options=sorted(STRATEGIES), value="margin")
        self.pool = W.Dropdown(description="pool", options=["unlabelled", "unreviewed"],
                               value="unlabelled" if _has_unlabelled(store) else "unreviewed")
        self.batch = W.BoundedIntText(description="batch", value=20, min=1, max=10_000)
        self.query_button = W.Button(description="Queue next batch", icon="list", button_style="primary",
                                     layout=W.Layout(width="auto"))
        self.update_button = W.Button(description="Update model", icon="refresh")
        self.status = W.HTML("")
        self.queue_line = W.HTML("")  # how much of the queue is left: it shrinks as items are labelled in the browser
        self.learner: Any = None
        self.last_update: Any = None
        self._thread: threading.Thread | None = None
        self.query_button.on_click(lambda _b: self.query())
        self.update_button.on_click(lambda _b: self.update())
        super().__init__([W.HBox([self.strategy, self.pool, self.batch]),
                          W.HBox([self.query_button, self.update_button]), self.queue_line, self.status])
        self.refresh()

    def refresh(self) -> None:
        """Say how many queued items still wait for a label (the Workbench calls this when the tab is opened)."""
        waiting = self.store.count({"status": "queued"})
        self.queue_line.value = (f"<b>{waiting}</b> queued item(s) still to label in the Labels tab (filter: queued)"
                                 if waiting else "no item waits in the queue")

    def _background(self, work: Any, *, wait: bool) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self.query_button.disabled = self.update_button.disabled = True

        def run() -> None:
            try:
                work()
            except Exception as exc:  # a thread's exception would otherwise be lost
                self.status.value = _failure_box(exc)
            finally:
                self.query_button.disabled = self.update_button.disabled = False
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if wait:
            self._thread.join()

    def _learner(self) -> Any:
        from workbench.active import ActiveLearner

        wanted = (self.strategy.value, self.pool.value)
        if self.learner is None or (self.learner.strategy.name, self.learner.pool_kind) != wanted:
            self.status.value = "embedding the store (cached after the first time)..."
            self.learner = ActiveLearner(self.store, strategy=self.strategy.value, pool=self.pool.value,
                                         embeddings=self.embeddings, features=self.features, author=self.author)
        return self.learner

    def query(self, *, wait: bool = False) -> None:
        """Refit on what is labelled, queue the next batch and show it in the browser (background thread)."""
        def work() -> None:
            learner = self._learner()
            self.last_update = learner.update()
            ids = learner.query(int(self.batch.value))
            # the update's counts are from before this batch was queued; its hint (counts, or the stopping hint) with
            # the batch counted
            after = replace(self.last_update, n_queued=self.last_update.n_queued + len(ids),
                            n_pool=self.last_update.n_pool - len(ids))
            self.status.value = _update_status(after, f"queued {len(ids)} items ({learner.last_query}) · ")
            self.refresh()
            self.open_queue()
        self._background(work, wait=wait)

    def update(self, *, wait: bool = False) -> None:
        """Refit the quick head on everything labelled so far and show the stopping hint."""
        def work() -> None:
            self.last_update = self._learner().update()
            self.status.value = _update_status(self.last_update)
            self.refresh()
        self._background(work, wait=wait)

    def open_queue(self) -> None:
        """Show the items waiting for a label in the browser."""
        if self.browser is not None:
            self.browser.set_filters({"status": "queued"})


def _update_status(update: Any, prefix: str = "") -> str:
    """An :class:`~workbench.active.UpdateResult` as escaped HTML: its hint after ``prefix``, then the labels per class
    once something is labelled (all zeros say nothing)."""
    lines = [prefix + update.hint] + ([update.class_counts] if update.n_labelled else [])
    return "<br>".join(html.escape(line) for line in lines)


def _has_unlabelled(store: LabelStore) -> bool:
    return bool(store.count({"unlabelled": True}))


class Workbench(W.Tab):
    """The panels over one store, in tabs: ``Workbench("data.parquet")`` or ``Workbench(store)``.

    Parameters
    ----------
    store_or_dataset : LabelStore, path to a store (``.db``) or a dataset file / DataFrame
        A dataset is loaded and imported into ``store_path`` (default: ``<dataset>.labels.db`` beside a file,
        ``workbench-<fingerprint>.labels.db`` for a DataFrame, one store per distinct table).
    scan_options : dict, optional
        Text classification: what the Quality tab passes to :func:`workbench.scan.scan`, e.g. ``{"split": "train"}``
        to scan the training labels alone, or ``{"classifier_layers": (-4, -3, -2, -1)}``.
    """

    def __init__(self, store_or_dataset: Any, *, store_path: str | Path | None = None, runs_dir: str | Path = "runs",
                 author: str = "analyst", page_size: int = 25, scan_options: dict[str, Any] | None = None,
                 **load_options: Any) -> None:
        self.store = self._open(store_or_dataset, store_path, load_options)
        if scan_options and self.store.task == "token-classification":
            raise DataError(f"scan_options={scan_options!r} are the quick scan's, for text classification; "
                            f"{self.store.url} holds token classification (its Quality tab runs tag consistency or "
                            "fold taggers): drop scan_options")
        self.browser = LabelBrowser(self.store, author=author, page_size=page_size)
        self.quality: QualityPanel | TagQualityPanel
        self.finetune = FineTunePanel(self.store, runs_dir)
        self.metrics = MetricsPanel(runs_dir, self.store, browser=self.browser)
        self.finetune.on_finished.append(self.metrics.refresh)  # a run trained here is in the Metrics tab's list
        tabs: list[tuple[str, Any]] = [("Labels", self.browser)]
        self.sentences: Any = None
        self.active: ActiveLearningPanel | None = None
        if self.store.task == "token-classification":
            from widgets.sentence import SentenceView

            # Tags are corrected a sentence at a time, and scanned by tag consistency or fold taggers; the quick
            # scan and active learning are for texts.
            self.sentences = SentenceView(self.store, author=author)
            self.quality = TagQualityPanel(self.store, sentences=self.sentences, runs_dir=runs_dir)
            tabs += [("Sentences", self.sentences), ("Quality", self.quality), ("Fine-tune", self.finetune),
                     ("Metrics", self.metrics)]
        else:
            self.quality = QualityPanel(self.store, browser=self.browser, **(scan_options or {}))
            self.active = ActiveLearningPanel(self.store, browser=self.browser, author=author)
            tabs += [("Quality", self.quality), ("Fine-tune", self.finetune), ("Metrics", self.metrics),
                     ("Active learning", self.active)]
        super().__init__(children=[panel for _, panel in tabs])
        for i, (title, _) in enumerate(tabs):
            self.set_title(i, title)
        self._refresher: threading.Thread | None = None
        self.observe(self._on_tab, names="selected_index")

    def _on_tab(self, change: dict[str, Any]) -> None:
        """Opening the Quality or Active learning tab after labelling elsewhere: its counts catch up with the store,
        in a thread (a dozen filtered counts take about half a second on 300,000 items; the tab opens at once)."""
        index = change["new"]
        panel = self.children[index] if index is not None else None
        if panel is not None and panel in (self.quality, self.active):
            self._refresher = threading.Thread(target=self._refresh, args=(panel,), daemon=True)
            self._refresher.start()

    def _refresh(self, panel: Any) -> None:
        try:
            panel.refresh()
        except Exception as exc:  # a thread's exception would otherwise be lost
            (panel.stage if panel is self.quality else panel.status).value = _failure_box(exc)

    @staticmethod
    def _open(source: Any, store_path: str | Path | None, load_options: dict[str, Any]) -> LabelStore:
        from workbench.data import load_dataset, table_fingerprint

        if isinstance(source, LabelStore):
            return source
        if isinstance(source, (str, Path)) and is_store(source):
            # an existing store: a typo'd path would otherwise open an empty new one and show empty panels
            return LabelStore.open(source, create=False)
        table = load_dataset(source, **load_options)
        path = store_path or (f"{source}.labels.db" if isinstance(source, (str, Path)) else
                              f"workbench-{table_fingerprint(table)}.labels.db")
        store = LabelStore.open(path)
        store.import_dataset(table, on_conflict="skip")
        return store
