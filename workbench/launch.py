"""Start fine-tunes in a child process and control them: launch, status, metrics, wait, cancel, resume, predict.

The kernel never trains: :func:`launch` writes the run folder (config, a snapshot of the
data, the label set) and starts ``python -m workbench.train RUN_DIR`` in its own session
(for several processes: ``torchrun`` on CPUs, ``accelerate launch --multi_gpu`` on GPUs), then
returns.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.config import FineTuneConfig
from workbench.data import as_dataset
from workbench.devices import resolve_device
from workbench.errors import Cancelled, DataError, WorkbenchError, require
from workbench.predict import load_run
from workbench.runs import RunView, fresh_run_id, last_step, list_runs
from workbench.store import LabelStore, as_store
from workbench.train import CALLER_ENV, CANCEL_FILE, set_status, write_json

#: The states a run does not leave.
ENDED = ("finished", "failed", "cancelled")
#: The pid of the process launch() started, beside status.json in the run folder.
LAUNCHER_FILE = "launcher.pid"

__all__ = ["Run", "fresh_run_id", "launch", "list_runs", "load_run"]


def _snapshot_frame(store: LabelStore | None, data: pd.DataFrame | None,
                    task: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    meta: dict[str, Any]
    if store is not None:
        if store.task and store.task != task:
            raise DataError(f"the store holds {store.task} items but the config says task={task!r}")
        table, digest = store.to_pandas_with_hash(keep_original=True)  # the hash of the very rows the run gets
        meta = {"snapshot_hash": digest, "store": store.url}
    elif data is not None:
        table, meta = as_dataset(data), {"snapshot_hash": None, "store": None}
    else:
        raise DataError("launch needs store=... or data=... (a table from workbench.load_dataset)")
    if task == "token-classification":
        need, label = "tokens", "tags"
    else:
        need, label = "text", "label"
    missing = [c for c in ("item_id", need, label) if c not in table.columns]
    if missing:
        raise DataError(f"the data lacks the column(s) {missing} needed for {task}")
    frame = pd.DataFrame({"item_id": table["item_id"].astype(str), need: table[need], "label": table[label],
                          "split": table["split"] if "split" in table.columns else None})
    original = f"original_{label}"
    if original in table.columns:
        frame["original_label"] = table[original]
    if task == "token-classification":
        frame["text"] = [" ".join(t) for t in frame["tokens"]]
    return frame, meta


# What datasets call their validation split. Asked for one of these names and given data that has another, a run
# evaluates on the data's own (CSV files say "dev" or "val") instead of holding out a slice of train and leaving
# the data's validation items unused.
EVAL_SPLIT_NAMES = ("validation", "valid", "val", "dev")


def _eval_split_as_named(config: FineTuneConfig, frame: pd.DataFrame) -> FineTuneConfig:
    present = set(frame["split"].dropna().astype(str)) if "split" in frame.columns else set()
    if config.eval_split in present or config.eval_split not in EVAL_SPLIT_NAMES:
        return config
    found = next((name for name in EVAL_SPLIT_NAMES if name in present), None)
    return replace(config, eval_split=found) if found else config


def launch(config: FineTuneConfig | None = None, *, store: LabelStore | str | os.PathLike[str] | None = None,
           data: pd.DataFrame | None = None, snapshot: str | None = None, runs_dir: str | os.PathLike[str] = "runs",
           run_id: str | None = None, python: str | None = None, stop_with_caller: bool = False) -> Run:
    """Start a fine-tune in the background and return at once.

    Parameters
    ----------
    config : FineTuneConfig, optional
        Default: ``FineTuneConfig()`` for the store's task.
    store : LabelStore or its path, optional
        Train on its current labels; the run cites the store's snapshot hash.
    data : pandas.DataFrame, optional
        Or train on a table from :func:`workbench.data.load_dataset`; a table of one's own is read by it first,
        with its defaults (see :func:`workbench.data.as_dataset`).
    snapshot : str, optional
        Also record the snapshot under this name in the store.
    runs_dir : path
        Where run folders go.
    stop_with_caller : bool
        The run is cancelled when this process ends, for a run that only its caller reads (a scan's fold model).
        By default a run trains on after the kernel or shell that launched it is gone. A resumed run works for
        whoever resumes it.

    Returns
    -------
    Run
    """
    if store is not None and not isinstance(store, LabelStore):  # a store's path: opened for the launch alone
        with as_store(store, what="launch(store=...)") as opened:
            return launch(config, store=opened, data=data, snapshot=snapshot, runs_dir=runs_dir, run_id=run_id,
                          python=python, stop_with_caller=stop_with_caller)
    config = config or FineTuneConfig(task=store.task if store is not None and store.task else "text-classification")
    frame, meta = _snapshot_frame(store, data, config.task)
    config = _eval_split_as_named(config, frame)
    present = _labels_in(frame, config.task)
    labels = list(config.labels) if config.labels else (store.labels if store is not None else
                                                           list((data.attrs.get("workbench", {}).get("labels")
                                                                 if data is not None else None) or present))
    unknown = sorted(set(present) - set(labels))
    if unknown:
        raise DataError(f"the data has label(s) {unknown[:5]} that are not in config.labels {labels}; leave "
                        "config.labels unset to take the data's label set")
    if len(labels) < 2:
        raise DataError(f"a classifier needs at least two labels; the data has {labels}")
    from workbench.models import check_max_length
    from workbench.splits import prepare_splits

    prepare_splits(frame, config)  # nothing labelled to train on is said here, not in a run folder marked failed

    # an unknown model, or one too short for max_length, fails here in the kernel with a clear message
    check_max_length(config.max_length, config.model, owner="FineTuneConfig.max_length")
    if config.num_processes > 1:
        # likewise more GPU processes than GPUs. One process: the worker checks its device and says so in
        # status.json; checking here would import torch into the kernel (2 s) on a call that must return at once
        _processes_device(config.num_processes, config.device)
    if store is not None and snapshot:
        store.snapshot(snapshot, note="training run")
    root = Path(runs_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    run_id = run_id or f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    run_dir = root / run_id
    if run_dir.exists():
        raise DataError(f"the run folder {run_dir} already exists; choose another run_id (fresh_run_id(runs_dir, "
                        f"{run_id!r}) gives the next free one: {fresh_run_id(root, run_id)!r})")
    run_dir.mkdir()
    config = replace(config, labels=labels)
    config.to_json(run_dir / "config.json")
    (run_dir / "labels.json").write_text(json.dumps(labels))
    write_json(run_dir / "snapshot.json", {**meta, "snapshot_name": snapshot})
    frame.to_parquet(run_dir / "data.parquet", index=False)
    set_status(run_dir, "queued", created=time.time())
    run = Run(run_dir, python=python)
    run._start(resume=False, caller=os.getpid() if stop_with_caller else None)
    return run


def train_for_caller(config: FineTuneConfig, *, data: pd.DataFrame, runs_dir: str | os.PathLike[str], run_id: str,
                     what: str, progress: bool = False, stop: threading.Event | None = None) -> Run:
    """Train a run that only the caller reads (a scan's fold model) and return it once it has finished.

    It is launched with ``stop_with_caller=True`` and waited for by :func:`wait_or_cancel`, so neither a killed
    caller nor an interrupted one leaves it training for nobody.

    Parameters
    ----------
    config : FineTuneConfig
    data : pandas.DataFrame
        As :func:`launch` takes it.
    runs_dir, run_id
        Where its folder goes.
    what : str
        The run in the caller's words (``"fold tagger 2"``), for the error.
    progress : bool
        A bar over its steps.
    stop : threading.Event, optional
        Set from another thread to cancel it (see :func:`wait_or_cancel`).

    Raises
    ------
    WorkbenchError
        When it ends failed or cancelled: its message and the log to read.
    Cancelled
        When ``stop`` was set.
    """
    run = launch(config, data=data, runs_dir=runs_dir, run_id=run_id, stop_with_caller=True)
    status = wait_or_cancel(run, progress=progress, stop=stop)
    if status.get("state") != "finished":
        raise WorkbenchError(f"{what} ended {status.get('state')}: {status.get('message')} (log: "
                             f"{run.path / 'logs.txt'})")
    return run


def wait_or_cancel(run: Run, *, progress: bool = False, stop: threading.Event | None = None) -> dict[str, Any]:
    """Wait for a run that only the caller reads (a scan's fold model); cancel it if the wait is interrupted.

    The worker runs in a session of its own, so Ctrl-C or a kernel interrupt stops only the waiting, and the run
    would train on for minutes with nobody to read it. Here it is cancelled (it finishes its step) before the
    interrupt goes on; a second Ctrl-C meanwhile stops it at once. Launch such a run with
    ``stop_with_caller=True`` as well, for a caller that is killed rather than interrupted. Setting ``stop`` (from
    another thread: a panel's Cancel) cancels the run the same way and raises :class:`Cancelled`.

    Returns
    -------
    dict
        The run's status once it has ended.
    """
    try:
        status = run.wait(progress=progress, stop=stop)
    except BaseException:
        print(f"\ncancelling run {run.path.name} (it finishes its step first)...", file=sys.stderr, flush=True)
        try:
            run.cancel(timeout=30)
        except KeyboardInterrupt:
            run.terminate()
        raise
    if stop is not None and stop.is_set() and status.get("state") not in ENDED:
        run.cancel(timeout=30)
        raise Cancelled(f"stopped: run {run.path.name} was cancelled before it finished")
    return status


def _processes_device(n: int, device: str) -> str:
    """The device ``n`` worker processes run on; refuses more GPU processes than visible GPUs."""
    resolved = resolve_device(device)
    if n > 1 and resolved == "cuda":
        torch = require("torch", extra="train", purpose="multi-process training")
        gpus = torch.cuda.device_count()  # type: ignore[attr-defined]
        if n > gpus:
            raise DataError(f"num_processes={n} but {gpus} CUDA GPU(s) are visible: one process per GPU. "
                            "Use num_processes <= the GPU count, or device='cpu' for DDP over CPU processes")
    return resolved


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _labels_in(frame: pd.DataFrame, task: str) -> list[str]:
    values = frame["label"].tolist()
    if task == "token-classification":
        return sorted({t for tags in values if tags is not None for t in tags})
    return sorted({v for v in values if isinstance(v, str)})


class Run(RunView):
    """A launched run: a :class:`workbench.runs.RunView` plus process control."""

    def __init__(self, path: str | os.PathLike[str], *, python: str | None = None) -> None:
        # Absolute: the worker starts inside the run folder, where a relative path (runs_dir="runs", the
        # default) would name a folder that does not exist.
        super().__init__(Path(path).resolve())
        self.python = python or sys.executable
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, state={self.status().get('state')!r})"

    def _command(self, config: dict[str, Any], *, resume: bool) -> list[str]:
        n = int(config.get("num_processes", 1))
        tail = [str(self.path)] + (["--resume"] if resume else [])
        if n > 1:
            if _processes_device(n, config.get("device", "auto")) == "cuda":
                return [self.python, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(n),
                        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m",
                        "workbench.train", *tail]
            # On CPUs, accelerate's own launcher starts one process unless MPI is set up; torchrun (which it
            # wraps for GPUs) starts N, and the worker's Accelerator then runs DDP over gloo.
            # --log-dir: torchrun's own per-run folder goes into the run, not a new torchelastic_* in /tmp each time
            return [self.python, "-m", "torch.distributed.run", "--nproc_per_node", str(n), "--master_addr",
                    "127.0.0.1", "--master_port", str(_free_port()), "--log-dir", str(self.path / "torchrun"),
                    "-m", "workbench.train", *tail]
        return [self.python, "-m", "workbench.train", *tail]

    def _start(self, *, resume: bool, caller: int | None = None) -> None:
        (self.path / CANCEL_FILE).unlink(missing_ok=True)
        log = (self.path / "logs.txt").open("ab")
        config = self.config()
        env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
        if config.get("device") == "cpu":
            # A CPU run never touches a GPU. For CPU DDP this is needed, not tidy: accelerate's barrier passes
            # device_ids=[rank], and on a one-GPU machine rank 1's gloo barrier then asks for a second GPU and
            # dies (seen on an H100 machine with torchrun over 2 CPU processes).
            env["CUDA_VISIBLE_DEVICES"] = ""
        env.pop(CALLER_ENV, None)  # a run launched from inside a worker works for nobody but its own caller
        if caller is not None:
            env[CALLER_ENV] = str(caller)
        # Own session: Ctrl-C or a kernel interrupt in the notebook does not reach the worker.
        self._proc = subprocess.Popen(self._command(config, resume=resume), stdout=log, stderr=subprocess.STDOUT,
                                      env=env, cwd=str(self.path), start_new_session=True)
        log.close()
        # Its own file: writing the pid into status.json (read, add, write back) could overwrite what a fast
        # worker had just written there (its state, device, counts).
        (self.path / LAUNCHER_FILE).write_text(str(self._proc.pid))

    def status(self) -> dict[str, Any]:
        """``status.json``, with a run whose worker died without a word reported as failed."""
        status = super().status()
        pending = ("queued", "running", "unreadable")  # unreadable: damaged; the worker may still overwrite it
        if status.get("state") in pending and not self._alive(status):
            if self._proc is not None:
                self._proc.poll()
            status = super().status()  # it may have finished between the two reads
            if status.get("state") in pending and not self._alive(status):
                status.update(state="failed", message="the worker process ended without reporting (killed, or "
                              "out of memory?)", hint="resume() (or workbench resume RUN) continues from the last "
                              "finished epoch; see logs.txt")
        return status

    def _alive(self, status: dict[str, Any]) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        pid = status.get("pid") or self._launcher_pid(status)
        if not pid:
            return status.get("state") == "queued"
        try:
            os.kill(int(pid), 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _launcher_pid(self, status: dict[str, Any]) -> int | None:
        """The process launch() started (the worker, or torchrun / accelerate over the workers)."""
        try:
            return int((self.path / LAUNCHER_FILE).read_text())
        except (OSError, ValueError):
            return status.get("launcher_pid")  # run folders written before launcher.pid kept it in status.json

    def wait(self, timeout: float | None = None, *, poll: float = 0.5, progress: bool = False,
             stop: threading.Event | None = None) -> dict[str, Any]:
        """Block until the run ends (or ``timeout`` seconds pass, or ``stop`` is set); returns the status.

        ``progress=True`` shows a bar over the training steps with the latest loss and evaluation.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = None
        try:
            while True:
                status = self.status()
                if progress:
                    bar = self._show_progress(bar, status)
                if status.get("state") in ENDED:
                    return status
                if (deadline is not None and time.monotonic() > deadline) or (stop is not None and stop.is_set()):
                    return status
                time.sleep(poll)
        finally:
            if bar is not None:
                bar.close()

    def _show_progress(self, bar: Any, status: dict[str, Any]) -> Any:
        """Create or move the progress bar of :meth:`wait` (None until the worker knows its step count)."""
        total = status.get("total_steps")
        if not total:
            return bar
        if bar is None:
            tqdm = require("tqdm.auto", extra="train", purpose="progress bars").tqdm  # type: ignore[attr-defined]
            bar = tqdm(total=int(total), desc=self.run_id, unit="step", leave=True)
        metrics = self.metrics()
        step = last_step(metrics)
        if step is None:
            return bar
        shown: dict[str, str] = {}
        for name in metrics.columns:
            if name == "loss" or name.startswith("eval_"):
                values = metrics[name].dropna()
                if not values.empty:
                    key = "val_loss" if name == "eval_loss" else name.removeprefix("eval_")
                    shown[key] = f"{float(values.iloc[-1]):.3f}"
        bar.n = min(step, bar.total)
        bar.set_postfix(shown, refresh=False)
        bar.refresh()
        return bar

    def cancel(self, *, timeout: float = 30.0) -> dict[str, Any]:
        """Ask the worker to stop; it finishes its step, marks itself cancelled and exits."""
        (self.path / CANCEL_FILE).write_text(str(time.time()))
        status = self.wait(timeout)
        if status.get("state") not in ENDED:
            status = self.terminate()
        return status

    def terminate(self) -> dict[str, Any]:
        """Stop the worker now (SIGTERM to its process group: it stops before its next step, marked cancelled);
        returns the status after up to 10 s."""
        status = self.status()
        pid = status.get("pid") or self._launcher_pid(status)
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(int(pid)), signal.SIGTERM)
        return self.wait(10)

    def resume(self) -> Run:
        """Start the worker again from the last checkpoint (after a crash, a kill or a cancel)."""
        state = self.status().get("state")
        if state in ("queued", "running"):
            raise WorkbenchError(f"run {self.run_id} is still {state}; cancel it before resuming (Run.cancel(), or "
                                 f"workbench cancel {self.path})")
        if state == "finished":
            raise WorkbenchError(f"run {self.run_id} has finished; launch a new run to train more")
        set_status(self.path, "queued", resumed=time.time(), message=None, hint=None)
        self._start(resume=True)
        return self

    def logs(self, tail: int | None = 200) -> str:
        """The worker's output (the last ``tail`` lines)."""
        path = self.path / "logs.txt"
        if not path.exists():
            return ""
        lines = path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:] if tail else lines)

    def predict(self, data: Sequence[Any] | pd.DataFrame | LabelStore | str | os.PathLike[str], *,
                batch_size: int = 64, progress: bool = True) -> pd.DataFrame:
        """Score new items (texts, a table, a store or a dataset file) with the trained model
        (:meth:`workbench.predict.TrainedModel.predict`): ``pred`` and ``prob_<class>`` per text, or ``pred_tags`` and
        ``token_probs`` per sentence for a tagger."""
        return load_run(self.path).predict(data, batch_size=batch_size, progress=progress)
