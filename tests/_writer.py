"""A correction writer run as a child process by the durability and concurrency tests.

Usage: python _writer.py STORE AUTHOR N_WRITES LABELS(comma-separated) ITEMS(comma-separated) SEED

Writes N corrections, each to a label of this writer's that differs from the item's current
one (writers get disjoint labels, so every write is a real change), and prints
``ACK <log id> <item> <label>`` once ``set_label`` has returned, i.e. once durable.
"""

import random
import sys

from workbench import LabelStore


def main() -> None:
    path, author, n, labels, items, seed = sys.argv[1:7]
    labels_list = labels.split(",")
    items_list = items.split(",")
    rng = random.Random(int(seed))
    store = LabelStore.open(path, busy_timeout=60)
    print("READY", flush=True)
    for k in range(int(n)):
        item = rng.choice(items_list)
        current = store.get(item)["label"]
        label = next(lab for lab in labels_list if lab != current)
        log_id = store.set_label(item, label, author=author, note=f"{author}-{k}")
        print(f"ACK {log_id} {item} {label}", flush=True)


if __name__ == "__main__":
    main()
