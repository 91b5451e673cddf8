"""The ``workbench`` commands about runs: train, runs, cancel, resume, logs, predict, report (registered by
:mod:`workbench.cli`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.cli import (
    ITEM_SUFFIXES,
    add_data_source,
    add_reading_options,
    check_output,
    config_fields,
    open_data_store,
    read_data_source,
    reading_options,
    write_items,
)
from workbench.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from workbench.launch import Run


def _cmd_train(args: argparse.Namespace) -> int:
    from workbench.config import FineTuneConfig
    from workbench.launch import launch

    fields = FineTuneConfig.from_json(args.config).to_dict() if args.config else {}
    fields.update(config_fields(args.set, flag="--set"))
    runs_dir = check_runs_dir(args.runs_dir)
    launch_options = {"runs_dir": runs_dir, "run_id": args.run_id}
    table, in_memory = read_data_source(args)
    if table is not None and in_memory:
        fields.setdefault("task", table.attrs["workbench"]["task"])
        run = launch(FineTuneConfig.from_dict(fields), data=table, **launch_options)
    else:
        with open_data_store(args, table) as store:
            fields.setdefault("task", store.task or "text-classification")
            run = launch(FineTuneConfig.from_dict(fields), store=store, snapshot=args.snapshot, **launch_options)
    print(f"run {run.path}")
    return _follow(run, detach=args.detach, progress=not args.no_progress)


def _follow(run: Run, *, detach: bool, progress: bool) -> int:
    """Follow a run that was just started (train, resume) until it ends, or leave it to train (``detach``)."""
    if detach:
        print(f"training in the background; watch it with: workbench runs {run.path.parent}; stop it with: "
              f"workbench cancel {run.path}")
        return 0
    try:
        status = run.wait(progress=progress)
    except KeyboardInterrupt:
        # the worker runs in its own session, so Ctrl-C stops only this command: stop the run as well
        print("\ncancelling the run (it finishes its step first)...", file=sys.stderr)
        status = run.cancel()
        print(f"run {run.path}: {status.get('state')}; continue it {_resume_point(run)}: workbench resume {run.path}",
              file=sys.stderr)
        return 130
    return _print_ended(run.path, status)


def _cmd_cancel(args: argparse.Namespace) -> int:
    from workbench.launch import Run
    from workbench.runs import last_step, open_run

    runs = [Run(open_run(folder).path) for folder in args.runs]  # every folder checked before any run is stopped
    code = 0
    for run in runs:
        state = run.status().get("state")
        if state not in ("queued", "running"):
            print(f"run {run.path} is {state}: nothing to cancel")
            continue
        status = run.cancel(timeout=args.timeout)
        if status.get("state") == "cancelled":
            step = last_step(run.metrics())
            at = f" at step {step} of {status.get('total_steps')}" if step is not None else ""
            print(f"run {run.path}: cancelled{at}; continue it {_resume_point(run)}: workbench resume {run.path}")
        else:
            print(f"run {run.path} is still {status.get('state')} after {args.timeout:.0f} s; see workbench logs "
                  f"{run.path}", file=sys.stderr)
            code = 1
    return code


def _cmd_resume(args: argparse.Namespace) -> int:
    from workbench.launch import Run
    from workbench.runs import open_run

    run = Run(open_run(args.run).path)
    where = _resume_point(run)
    run.resume()
    print(f"run {run.path}: resumed {where}")
    return _follow(run, detach=args.detach, progress=not args.no_progress)


def _resume_point(run: Run) -> str:
    """Where a resume of ``run`` starts, in words: "from epoch 2 (step 500)"."""
    saved = run.checkpoint()
    if saved is None:
        return "from the start (no epoch had finished)"
    return f"from epoch {saved['epoch']} (step {saved['step']})"


def _cmd_logs(args: argparse.Namespace) -> int:
    from workbench.launch import Run
    from workbench.runs import open_run

    if args.tail < 0:
        raise DataError(f"--tail {args.tail}: give a number of lines, or 0 for all of them")
    text = Run(open_run(args.run).path).logs(tail=args.tail or None)
    print(text if text else f"run {args.run} has written no output yet (no logs.txt, or an empty one)")
    return 0


def _print_ended(path: Path, status: dict[str, Any]) -> int:
    """The last words on a run that ended: its metrics, or why it failed; the exit status."""
    from workbench.runs import RunView, unknown_tokens_note, unused_splits_note

    state = status.get("state")
    if state != "finished":
        print(f"run {path}: {state}: {status.get('message', '')}", file=sys.stderr)
        if status.get("hint"):
            print(f"hint: {status['hint']}", file=sys.stderr)
        return 1
    seconds = float(status.get("finished", 0)) - float(status.get("started", 0))
    scores = {k: v for k, v in status.items() if isinstance(v, float) and k.startswith(("validation_", "test_"))}
    view = RunView(path)
    task = view.task()
    print(f"finished in {seconds:.0f} s on {status.get('device')} ({status.get('precision')}); "
          f"{status.get('n_train')} training {'sentences' if task == 'token-classification' else 'items'}")
    if status.get("unused_splits"):
        print(unused_splits_note(status["unused_splits"]))
    if status.get("unknown_tokens"):
        print(unknown_tokens_note(status["unknown_tokens"]))
    for key, value in scores.items():
        print(f"  {key} {value:.4f}")
    # the worker scores its validation split in status.json; other predicted splits (test) are scored here
    for split in view.splits():
        if not any(k.startswith(f"{split}_") for k in scores):
            scored = _labelled_score(view.predictions(split), task=task)
            if scored:
                print(f"  {split}_{scored[0]} {scored[1]:.4f} ({scored[2]} items)")
    return 0


def check_runs_dir(path: str | Path) -> Path:
    """``--runs-dir`` as a Path, or a DataError when it is a file."""
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise DataError(f"--runs-dir {out} is a file; give a folder (created if missing)")
    return out


def _cmd_runs(args: argparse.Namespace) -> int:
    from workbench.runs import list_runs, readable_runs

    if args.runs_dir and args.runs_dir_option and args.runs_dir != args.runs_dir_option:
        raise DataError(f"two runs folders given ({args.runs_dir} and --runs-dir {args.runs_dir_option}); give one")
    root = Path(args.runs_dir or args.runs_dir_option or "runs").expanduser()
    if not root.is_dir():
        raise DataError(f"{root} is not a folder of runs; give the --runs-dir that train or launch() wrote to")
    table = list_runs(root)
    if table.empty:
        print(f"no runs in {root}")
        return 0
    table = readable_runs(table)
    shown = [c for c in table.columns if c not in ("message", "snapshot")]
    print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-"))
    for run_id, state, message in zip(table["run_id"], table["state"], table["message"]):
        if state == "failed" and message:
            print(f"{run_id} failed: {message}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from workbench.run_report import write_report

    out = check_output(args.out, flag="--out", suffixes=[".html"])
    written = write_report(args.run, out, compare_to=args.compare_to, split=args.split, n_resamples=args.resamples)
    print(f"report: {written['html']}\nmetrics: {written['metrics']}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from workbench.export import conll_text
    from workbench.launch import load_run
    from workbench.runs import open_run
    from workbench.splits import has_label
    from workbench.store import LabelStore, is_store

    out = check_output(args.out, flag="--out", suffixes=[*ITEM_SUFFIXES, ".conll"])
    view = open_run(args.run)
    task = view.task()
    if out.suffix.lower() == ".conll" and task != "token-classification":
        raise DataError(f"--out {out}: CoNLL holds tagged words, and run {view.run_id} classifies texts; write "
                        f"{', '.join(ITEM_SUFFIXES)}")
    state = view.status().get("state")
    if state != "finished":
        raise DataError(f"run {view.path} is {state}, not finished; only a finished run has a model to predict with")
    content, given = ("tokens", "tags") if task == "token-classification" else ("text", "label")
    from_store = is_store(args.data)
    if from_store:
        with LabelStore.open(args.data, create=False) as store:
            if store.task != task:
                raise DataError(f"{args.data} holds {store.task} items; run {view.run_id} does {task}")
            table = store.to_pandas()
    else:
        from workbench.predict import read_items_to_predict

        options = {k: v for k, v in reading_options(args).items() if k != "task"}  # the run's task, not --task
        table = read_items_to_predict(args.data, task=task, classes=view.labels(), **options)
    model = load_run(view.path)
    predicted = model.predict(table[["item_id", content]], progress=not args.no_progress)
    if task == "token-classification":
        # each word's probability of its predicted tag (the decoded sequence's, which is not always the word's most
        # probable tag); the whole (words x tags) table stays in Python's reach
        column = {tag: k for k, tag in enumerate(model.labels)}
        per_word = zip(predicted.pop("token_probs"), predicted["pred_tags"], strict=True)
        predicted["pred_probs"] = [[round(float(row[column[tag]]), 4) for row, tag in zip(p, tags, strict=True)]
                                   for p, tags in per_word]
    frame = table[["item_id", content, given]].merge(predicted, on="item_id", how="left")
    if task == "token-classification" and "source_text" in table.columns:
        # texts came in (cut into words here): their entities as character offsets into them too
        import pandas as pd

        from workbench.spans import tokens_to_spans

        frame.insert(1, "text", table["source_text"].to_numpy())
        found = [tokens_to_spans(tokens, tags, text=text, starts=starts)[1] for tokens, tags, text, starts
                 in zip(frame["tokens"], frame["pred_tags"], table["source_text"], table["token_starts"])]
        frame["pred_spans"] = pd.Series(found, index=frame.index, dtype=object)
    if out.suffix.lower() == ".conll":
        # the layout conlleval reads (word, given tag, predicted tag) when every sentence has its tags
        columns = [frame["pred_tags"]] if frame["tags"].isna().any() else [frame["tags"], frame["pred_tags"]]
        out.write_text(conll_text(frame["tokens"], *columns), encoding="utf-8")
    else:
        write_items(frame, out)
    print(f"predicted {len(frame)} items with run {view.run_id}: {out}")
    if has_label(frame[given]).any():  # only then are the run's own data read, to keep its training items apart
        against = f"the {'store' if from_store else 'file'}'s {'tags' if given == 'tags' else 'labels'}"
        if _labels_the_run_knows(frame[given], model.labels, against=against):
            _print_scores(frame, task=task, trained=view.trained_item_ids(), against=against)
    return 0


def _labels_the_run_knows(given: pd.Series, classes: list[str], *, against: str) -> bool:
    """Whether a score against the ``given`` labels (or tag lists) means anything for a run of ``classes``: say so
    when some are labels the run never learnt (counted as wrong), and score nothing when none is one of its classes
    (integer ids against named classes, another dataset's label set), where every prediction would count as wrong."""
    from workbench.data import looks_like_class_id
    from workbench.report import first_few

    values = [v for v in given if v is not None and not (isinstance(v, float) and v != v)]
    present = {t for tags in values for t in tags} if values and not isinstance(values[0], str) else set(values)
    unknown = sorted(present - set(classes))
    if not unknown:
        return True
    shown = first_few(map(repr, unknown))
    if len(unknown) == len(present):
        hint = (" They look like integer ids: read the file with --label-names, id 0 first"
                if all(map(looks_like_class_id, unknown)) else "")
        print(f"no score: none of {against} ({shown}) is one of the run's classes ({first_few(map(repr, classes))})."
              f"{hint}")
        return False
    print(f"{against} include {len(unknown)} label(s) the run never learnt ({shown}); items with them count as "
          "wrong")
    return True


def _print_scores(frame: pd.DataFrame, *, task: str, trained: set[str], against: str) -> None:
    """Score the predictions against the given labels, the items the run trained on apart from the rest: a score
    that mixes them in says more about memory than about the model."""
    seen = frame["item_id"].astype(str).isin(trained).to_numpy()
    parts = [("", frame)] if not seen.any() else [
        ("items the run never trained on", frame[~seen]), ("items it trained on", frame[seen])]
    for name, part in parts:
        scored = _labelled_score(part, task=task)
        if scored is None:
            if name:
                print(f"no labelled {name}")
            continue
        what = "entity F1 (micro)" if scored[0] == "f1_micro" else scored[0]
        print(f"{what} against {against}: {scored[1]:.4f} ({scored[2]} labelled {name or 'items'})")


def _labelled_score(frame: pd.DataFrame, *, task: str) -> tuple[str, float, int] | None:
    """Against the rows that carry a label: ``("accuracy", value, n_rows)`` for texts, ``("f1_micro", ...)`` (entity
    level) for sentences; None when no row has one."""
    if task == "token-classification":
        labelled = frame[frame["tags"].map(lambda t: t is not None)]
        if labelled.empty:
            return None
        from workbench.metrics import entity_metrics

        table = entity_metrics(labelled["tags"].tolist(), labelled["pred_tags"].tolist())
        return "f1_micro", float(table["f1"].astype(float)["micro avg"]), len(labelled)
    labelled = frame.dropna(subset=["label"])
    if labelled.empty:
        return None
    return "accuracy", float((labelled["label"] == labelled["pred"]).mean()), len(labelled)


def _add_follow_options(p: argparse.ArgumentParser) -> None:
    """--detach and --no-progress: how train and resume follow the run they start (:func:`_follow`)."""
    p.add_argument("--detach", action="store_true", help="return at once; the run trains in the background")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_run_commands(sub: Any) -> None:
    """Add train, runs, cancel, resume, logs, predict and report to the ``workbench`` command's sub-parsers."""
    p = sub.add_parser("train", help="fine-tune a model on a store's labels or a dataset file",
                       description="Launch a fine-tune (the same worker as launch() in a notebook) and follow it "
                                   "with a progress bar; Ctrl-C cancels the run cleanly. Exit 0 when it finished, "
                                   "1 when it failed (the reason printed). Examples: workbench train labels.db "
                                   "--set epochs=3; workbench train train.csv --label-column intent --set "
                                   "max_length=64 --runs-dir runs --detach")
    add_data_source(p, verb="train on", verbed="trained on")
    p.add_argument("--config", help="a FineTuneConfig as JSON (a run's config.json works)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a FineTuneConfig field, over --config: VALUE is read as JSON when it parses, else as "
                        "text (e.g. --set epochs=3 --set learning_rate=5e-5 --set device=cpu)")
    p.add_argument("--runs-dir", default="runs", help="where run folders go (default runs)")
    p.add_argument("--run-id", help="the run folder's name (default: date, time and a random suffix)")
    p.add_argument("--snapshot", help="also record the store's labels under this snapshot name")
    _add_follow_options(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("runs", help="list the runs in a runs folder",
                       description="One row per run: state, model, task, start time and its latest evaluation; "
                                   "a failed run's reason below. Example: workbench runs runs")
    p.add_argument("runs_dir", nargs="?", help="the runs folder (default runs)")
    # train takes the folder as --runs-dir, so the same words work here
    p.add_argument("--runs-dir", dest="runs_dir_option", metavar="RUNS_DIR", help="the same, as train names it")
    p.set_defaults(func=_cmd_runs)

    p = sub.add_parser("cancel", help="stop a run that is training (it finishes its step, then stops)",
                       description="Ask each run to stop, as Ctrl-C during train does: the worker finishes its step, "
                                   "marks itself cancelled and exits; its last epoch checkpoint stays, for resume. "
                                   "Exit 1 when a run has not stopped within --timeout. Example: workbench cancel "
                                   "runs/20261130-101500-ab12cd")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each run to stop (default 60)")
    p.set_defaults(func=_cmd_cancel)

    p = sub.add_parser("resume", help="continue a cancelled, failed or killed run from its last checkpoint",
                       description="Start the run's worker again with its own config and data, from the checkpoint "
                                   "written at its last finished epoch, and follow it as train does. Example: "
                                   "workbench resume runs/20261130-101500-ab12cd")
    p.add_argument("run", help="the run folder")
    _add_follow_options(p)
    p.set_defaults(func=_cmd_resume)

    p = sub.add_parser("logs", help="print what a run's worker wrote (its output and any traceback)",
                       description="The last lines of the run's logs.txt. Example: workbench logs "
                                   "runs/20261130-101500-ab12cd --tail 50")
    p.add_argument("run", help="the run folder")
    p.add_argument("--tail", type=int, default=200, help="how many of the last lines (default 200; 0: all)")
    p.set_defaults(func=_cmd_logs)

    p = sub.add_parser("predict", help="score a dataset file or a store with a finished run's model",
                       description="Write each item's predicted class and class probabilities (and its given label, "
                                   "if any; the accuracy against them is printed). A tagger's run writes each "
                                   "sentence's predicted tags and each word's probability of its tag (the entity F1 "
                                   "against given tags is printed). Example: workbench predict "
                                   "runs/20261130-101500-ab12cd new.csv --out predictions.csv")
    p.add_argument("run", help="a finished run folder")
    p.add_argument("data", help="a store, or a dataset file (labels or tags optional)")
    add_reading_options(p)
    p.add_argument("--out", required=True,
                   help="where to write (.csv, .tsv, .jsonl or .parquet; for a tagger also .conll: word, given tag "
                        "when every sentence has one, predicted tag)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("report", help="write a run's HTML report (per-class metrics, confusion, before/after)",
                       description="Write a self-contained HTML report of a finished run and metrics.json beside it; "
                                   "with --compare-to, per-class deltas against a baseline run with bootstrap "
                                   "intervals. Example: workbench report runs/new --compare-to runs/base --out "
                                   "report.html")
    p.add_argument("run", help="a finished run folder")
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.add_argument("--compare-to", help="a baseline run folder")
    p.add_argument("--split", help="evaluation split (default: test, else validation)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    p.set_defaults(func=_cmd_report)
