"""Read-only view of run folders: config, status, metrics, predictions. Metrics and panels read runs through this.

A run folder holds::

    config.json         the run's configuration (a FineTuneConfig as JSON)
    status.json         {"state": queued|running|finished|failed|cancelled, "message", "hint", ...}
    launcher.pid        the process launch() started (written by the launcher only; status.json is the worker's)
    metrics.jsonl       one JSON object per logging step or evaluation
    environment.json    library versions, device, seed, store snapshot hash
    labels.json         the class (or tag) names in model order
    predictions/SPLIT.parquet
        text classification: item_id, label (gold as evaluated), pred, prob_<class>..., and
        optionally original_label (the label before corrections)
        token classification: item_id, tags (list), pred_tags (list), optionally original_tags

Process control (start, cancel, resume) lives in the launcher, not here.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import DataError, DataFileError
from workbench.models import DEFAULT_MODEL

STATES = ("queued", "running", "finished", "failed", "cancelled")


@dataclass
class RunView:
    """One run folder, read on demand (nothing is cached, so a running run is seen as it grows)."""

    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    def _json(self, name: str, default: Any = None) -> Any:
        file = self.path / name
        if not file.exists():
            return default
        try:
            return json.loads(file.read_text())
        except json.JSONDecodeError:
            return default  # a file being rewritten; the next poll reads it whole

    def config(self) -> dict[str, Any]:
        return dict(self._json("config.json", {}))

    def status(self) -> dict[str, Any]:
        """The worker's ``status.json``; ``queued`` before it writes one. The worker writes it atomically, so a file
        that does not parse was damaged (or edited by hand): ``unreadable``, not a state it never had."""
        file = self.path / "status.json"
        status = self._json("status.json", None)
        if status is None:
            return ({"state": "unreadable", "message": f"{file} is not valid JSON"} if file.exists() else
                    {"state": "queued"})
        return dict(status)

    def environment(self) -> dict[str, Any]:
        return dict(self._json("environment.json", {}))

    def checkpoint(self) -> dict[str, Any] | None:
        """Where a resume would start: the last finished epoch's ``epoch`` and ``step`` (the worker writes a
        checkpoint after each epoch and removes it when the run finishes); None when there is none."""
        state = self._json("checkpoint/state.json", None)
        return dict(state) if isinstance(state, dict) else None

    def labels(self) -> list[str]:
        labels = self._json("labels.json")
        if labels is None:
            raise DataFileError(f"run {self.path} has no labels.json; it has not finished or is not a run folder")
        return list(labels)

    def task(self) -> str:
        return str(self.config().get("task", "text-classification"))

    def metrics(self) -> pd.DataFrame:
        """Every line of ``metrics.jsonl`` as a row (a half-written last line is skipped)."""
        file = self.path / "metrics.jsonl"
        rows = []
        if file.exists():
            for line in file.read_text().splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return pd.DataFrame(rows)

    def trained_item_ids(self) -> set[str]:
        """Ids of the labelled items the run trained on (not those it held out or only predicted).

        Read from the run's own copy of its data (``data.parquet``) through the same split assignment the worker
        made, so scores on other data can keep the items the model has seen apart from those it has not.
        """
        from workbench.config import FineTuneConfig
        from workbench.splits import has_label, prepare_splits

        data = self.path / "data.parquet"
        if not data.exists():
            raise DataFileError(f"run {self.path} has no data.parquet, so which items it trained on is unknown")
        config = FineTuneConfig.from_dict(self.config())
        frame = prepare_splits(pd.read_parquet(data), config)
        train = frame[frame["split"] == config.train_split]
        return set(train["item_id"][has_label(train["label"])].astype(str))

    def splits(self) -> list[str]:
        return sorted(p.stem for p in (self.path / "predictions").glob("*.parquet"))

    def predictions(self, split: str | None = None) -> pd.DataFrame:
        """Predictions on ``split`` (default: the only one, else ``test``, else ``validation``).

        A tagger's ``pred_tags`` are read as the most probable valid IOB2 sequence of its saved ``token_probs``
        (:func:`workbench.bio.decode_tags`, what the worker writes now): runs written before the worker decoded that
        way hold each word's argmax, up to 1.5 entity F1 apart on a short tagger, and two runs compared must be read
        the same way.
        """
        available = self.splits()
        if not available:
            raise DataFileError(f"run {self.path} has no predictions yet (no predictions/*.parquet)")
        if split is None:
            split = next((s for s in ("test", "validation", "eval") if s in available), available[0])
        if split not in available:
            raise DataError(f"run {self.run_id} has no predictions for split {split!r}; it has {available}")
        frame = pd.read_parquet(self.path / "predictions" / f"{split}.parquet")
        if {"pred_tags", "token_probs"} <= set(frame.columns):
            from workbench.bio import decode_tags

            labels = self.labels()
            frame["pred_tags"] = [decode_tags(np.stack(p) if len(p) else np.zeros((0, len(labels))), labels)
                                  for p in frame["token_probs"]]
        return frame

    def probabilities(self, split: str | None = None) -> np.ndarray:
        """``(n_items, n_classes)`` class probabilities in :meth:`labels` order."""
        frame = self.predictions(split)
        cols = [f"prob_{c}" for c in self.labels()]
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise DataFileError(f"run {self.run_id}: predictions lack {missing[:3]}")
        return frame[cols].to_numpy(dtype=np.float64)


def open_run(run: str | os.PathLike[str] | RunView) -> RunView:
    """A :class:`RunView` for a run folder (or pass one through)."""
    if isinstance(run, RunView):
        return run
    path = Path(run)
    if not path.is_dir():
        # `workbench runs` lists run ids; the commands take folders, and a bare id is the likely slip
        beside = Path("runs") / path
        hint = f"; did you mean {beside} (the run's folder)?" if (beside / "config.json").exists() else ""
        raise DataFileError(f"{path} is not a run folder (it does not exist or is a file){hint}")
    if not (path / "config.json").exists():
        inside = min((p.name for p in path.iterdir() if (p / "config.json").exists()), default=None)
        more = f"; it holds runs, e.g. {path / inside}" if inside else ""
        raise DataFileError(f"{path} is not a run folder (it has no config.json){more}")
    return RunView(path)


def unused_splits_note(unused: dict[str, int]) -> str:
    """The sentence on the splits a run left aside, ``unused``: split -> items (workbench train, Fine-tune panel)."""
    named = ", ".join(f"{name!r} ({n} items)" for name, n in unused.items())
    return (f"not used: split(s) {named}, neither trained on, evaluated nor predicted; name them in the config's "
            "train_split, eval_split or predict_splits")


def unknown_tokens_note(unknown: dict[str, Any], *,
                        remedy: str = "FineTuneConfig(model=PATH), or workbench train --set model=PATH") -> str:
    """The sentence on training texts the model's vocabulary cannot read (a run's ``unknown_tokens``), ending with
    where to name another model."""
    from workbench.vocab import describe_unknown

    return (f"unknown words: {describe_unknown(unknown, texts='training items')}; the model learns from its unknown "
            f"token there: fine-tune a model that knows their language ({remedy})")


def fresh_run_id(runs_dir: str | os.PathLike[str], name: str) -> str:
    """``name`` if ``runs_dir`` has no run folder of that name yet, else ``name-2``, ``name-3``, ...

    For notebooks that name their runs ("before-fixes"): run again into the same folder, they train new runs
    beside the old ones instead of stopping at a name already taken.
    """
    root = Path(runs_dir).expanduser()
    candidate, n = name, 1
    while (root / candidate).exists():
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def list_runs(runs_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per run folder, oldest first: run_id, state, progress (the share of the training steps done, NaN
    before the first is logged), model, task, snapshot, started, headline metric.

    Runs are ordered by when they started (a queued run by when it was created), not by name: a run named by hand
    ("baseline", "after-fixes") sorts among the dated ones where it belongs, and the last row is the latest run.
    """
    root = Path(runs_dir).expanduser()
    rows: list[tuple[float, str, dict[Any, Any]]] = []  # (start, run id, row): sorted by the first two
    for folder in (p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        view = RunView(folder)
        if not (folder / "config.json").exists():
            continue
        status, config, env = view.status(), view.config(), view.environment()
        metrics = view.metrics()
        evals = metrics.filter(like="eval_").dropna(how="all") if not metrics.empty else pd.DataFrame()
        last = evals.iloc[-1].dropna().to_dict() if not evals.empty else {}
        when = status.get("started") or status.get("created")
        start = float(when) if isinstance(when, (int, float)) else (folder / "config.json").stat().st_mtime
        rows.append((start, view.run_id, {
            "run_id": view.run_id, "state": status.get("state"), "progress": _progress(status, metrics),
            "model": config.get("model"),
            "task": config.get("task"), "snapshot": env.get("snapshot_hash") or config.get("snapshot"),
            "started": status.get("started"), "message": status.get("message"), **last}))
    return pd.DataFrame([row for *_, row in sorted(rows, key=lambda r: r[:2])])


def last_step(metrics: pd.DataFrame) -> int | None:
    """The last training step a run's ``metrics.jsonl`` (:meth:`RunView.metrics`) logged; None before the first."""
    if "step" not in metrics or not metrics["step"].notna().any():
        return None
    return int(metrics["step"].max())


def _progress(status: dict[str, Any], metrics: pd.DataFrame) -> float:
    """The share of the run's training steps done: 1 once finished, else its last logged step of its total."""
    if status.get("state") == "finished":
        return 1.0
    total, step = status.get("total_steps"), last_step(metrics)
    if not isinstance(total, (int, float)) or total <= 0 or step is None:
        return float("nan")
    return min(step / total, 1.0)


def progress_text(share: Any, running: bool, started: Any, now: float) -> str:
    """``39%``; a running run's also says the time left if it keeps its pace: ``39%, ~4 min left``."""
    if not isinstance(share, (int, float)) or share != share:
        return ""
    text = f"{share:.0%}"
    if running and 0 < share < 1 and isinstance(started, (int, float)) and started == started and now > started:
        left = (now - started) * (1 - share) / share
        text += f", ~{left / 60:.0f} min left" if left >= 90 else f", ~{max(left, 1):.0f} s left"
    return text


def readable_runs(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`list_runs`' table as people read it: start in local time, model by folder name, short snapshot.

    The panel and ``workbench runs`` both show this; the raw table keeps epoch seconds and full paths for code.

    Parameters
    ----------
    table : pandas.DataFrame
        ``(n_runs, columns)`` from :func:`list_runs`.

    Returns
    -------
    pandas.DataFrame
        A copy, same rows and columns.
    """
    shown = table.copy()
    if "started" in shown:
        shown["started"] = [time.strftime("%Y-%m-%d %H:%M", time.localtime(t))
                            if isinstance(t, (int, float)) and t == t else "" for t in shown["started"]]
    if "progress" in shown:  # where a running run is (with the time left at its pace so far), or a failed one stopped
        now = time.time()
        states = shown["state"] if "state" in shown else [None] * len(shown)
        starts = table["started"] if "started" in table else [None] * len(shown)
        shown["progress"] = [progress_text(p, state == "running", start, now)
                             for p, state, start in zip(shown["progress"], states, starts)]
    if "model" in shown:
        # the default named, as the run report names it: "default" told nothing next to a run on another model
        shown["model"] = [Path(str(m) if isinstance(m, str) and m else DEFAULT_MODEL).name for m in shown["model"]]
    if "snapshot" in shown:
        shown["snapshot"] = [str(v)[:12] if isinstance(v, str) else "" for v in shown["snapshot"]]
    if "message" in shown:
        shown["message"] = [v if isinstance(v, str) else "" for v in shown["message"]]
    return shown
