"""Acknowledged corrections survive SIGKILL, and concurrent writers lose nothing."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from workbench import LabelStore, load_dataset

WRITER = str(Path(__file__).with_name("_writer.py"))
LABELS = [f"L{i}" for i in range(10)]


def _make_store(path: Path | str, n_items: int) -> list[str]:
    frame = pd.DataFrame({"id": [f"item-{i:03d}" for i in range(n_items)],
                          "text": [f"message number {i}" for i in range(n_items)], "label": "L8"})
    table = load_dataset(frame, id_column="id", labels=LABELS)
    with LabelStore.open(path) as store:
        store.import_dataset(table)
    return table["item_id"].tolist()


def _spawn(path: Path | str, author: str, n: int, labels: list[str], items: list[str], seed: int) -> subprocess.Popen:
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, WRITER, str(path), author, str(n), ",".join(labels), ",".join(items),
                             str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _read_acks_until(proc: subprocess.Popen, seconds: float) -> list[tuple[int, str, str]]:
    """ACK lines the writer prints within ``seconds`` after it said READY."""
    acks = []
    fd = proc.stdout.fileno()
    buf = ""
    deadline = time.monotonic() + 60
    ready = False
    while time.monotonic() < deadline:
        readable, _, _ = select.select([fd], [], [], 0.01)
        if not readable:
            continue
        chunk = os.read(fd, 65536).decode()
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split("\n")
        for line in lines:
            if line == "READY" and not ready:
                ready, deadline = True, time.monotonic() + seconds
            elif line.startswith("ACK"):
                _, log_id, item, label = line.split()
                acks.append((int(log_id), item, label))
    return acks


def test_acknowledged_writes_survive_sigkill(tmp_path: Path):
    path = tmp_path / "durable.db"
    items = _make_store(path, 40)
    rng = random.Random(1234)
    acked: list[tuple[int, str, str]] = []
    kills = 0
    for round_ in range(22):
        proc = _spawn(path, f"w{round_}", 100_000, LABELS[:2] if round_ % 2 else LABELS[2:4], items, round_)
        # kill at a random moment while it writes
        got = _read_acks_until(proc, rng.uniform(0.05, 0.6))
        assert proc.poll() is None, f"the writer died by itself: {proc.stderr.read()}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        acked += got
        with LabelStore.open(path) as store:
            log = store.history()
            present = set(zip(log["id"], log["item_id"], log["new_value"]))
            lost = [a for a in acked if a not in present]
            assert not lost, f"round {round_}: {len(lost)} acknowledged corrections lost, e.g. {lost[:3]}"
            # the current label of every item is the last logged one
            last = log.sort_values("id").groupby("item_id")["new_value"].last()
            current = store.to_pandas().set_index("item_id")["label"]
            assert (current[last.index] == last).all()
    assert kills >= 20
    assert len(acked) > 200, "the writer was killed before it wrote much; the test proves little"


def test_four_processes_500_writes_each(store_url: str):
    """On SQLite (one file, four processes) and on PostgreSQL (one server, four clients)."""
    path = store_url
    items = _make_store(path, 50)
    procs = [_spawn(path, f"p{p}", 500, LABELS[2 * p:2 * p + 2], items, p) for p in range(4)]
    acks = {}
    for p, proc in enumerate(procs):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
        acks[p] = [line.split() for line in out.decode().splitlines() if line.startswith("ACK")]
        assert len(acks[p]) == 500
    with LabelStore.open(path) as store:
        log = store.history()
        assert len(log) == 2000
        assert log["id"].is_unique
        for p in range(4):
            mine = log[log["author"] == f"p{p}"]
            assert len(mine) == 500
            assert set(mine["id"]) == {int(a[1]) for a in acks[p]}
        last = log.sort_values("id").groupby("item_id")["new_value"].last()
        current = store.to_pandas().set_index("item_id")["label"]
        assert (current[last.index] == last).all()
        # each row's old value is the previous row's new value for that item: no write was lost in between
        for _, rows in log.sort_values("id").groupby("item_id"):
            assert rows["old_value"].iloc[1:].tolist() == rows["new_value"].iloc[:-1].tolist()


@pytest.mark.parametrize("timeout", [0.3])
def test_busy_store_gives_clear_error(tmp_path: Path, timeout: float):
    import sqlite3

    from workbench.errors import StoreBusyError

    path = tmp_path / "busy.db"
    items = _make_store(path, 3)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        store = LabelStore.open(path, busy_timeout=timeout)
        with pytest.raises(StoreBusyError, match="locked"):
            store.set_label(items[0], "L1", author="ann")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.set_label(items[0], "L1", author="ann")
    assert store.get(items[0])["label"] == "L1"
