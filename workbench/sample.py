"""The embedded demo data: customer-support messages with planted label noise, and a small NER set.

Both are generated deterministically from a seed, so the demo, the tests and the
benchmarks see the same items, and the planted errors are known (``true_label`` /
``true_tags`` columns) so the demo can say how many it found.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd

INTENTS = {
    # intent: (share of items, core phrasings)
    "delivery_status": (0.21, [
        "where is my order {order}?",
        "my package still hasn't arrived and it's been {days} days",
        "the tracking for {order} hasn't updated since {weekday}",
        "can you tell me when my {product} will be delivered",
        "order {order} says shipped but nothing came",
        "is there any update on the delivery of my {product}",
        "the courier said they tried to deliver but nobody rang the bell",
        "how long does shipping to {city} usually take",
        "tracking shows my parcel stuck in {city} for a week",
        "when will order {order} get here, i need it by {weekday}",
        "my delivery was supposed to come yesterday",
        "the parcel was marked delivered but it's not here",
    ]),
    "refund_request": (0.17, [
        "i want my money back for order {order}",
        "please refund the {amount} you charged me",
        "i returned the {product} {days} days ago and still no refund",
        "how do i get a refund for the {product}",
        "i'd like a full refund, the item is not what was described",
        "when will the refund for {order} reach my card",
        "you promised a refund two weeks ago",
        "can i get reimbursed for the {product} i sent back",
        "requesting a refund of {amount} for a duplicate charge",
        "i sent the return label back, where's my refund",
        "please process my refund, return tracking shows it arrived",
    ]),
    "account_access": (0.15, [
        "i can't log into my account",
        "the password reset email never arrives",
        "my account got locked after too many attempts",
        "i forgot my password and the reset link is expired",
        "two-factor code isn't working on my phone",
        "it says my email is not registered but i have an account",
        "i'm locked out, please help me get back in",
        "how do i change the email on my account, i lost access to the old one",
        "login keeps failing with an unknown error",
        "someone else may have accessed my account",
    ]),
    "cancel_order": (0.12, [
        "please cancel order {order}",
        "i ordered the wrong {product}, can you cancel it before it ships",
        "i want to cancel my purchase from {weekday}",
        "cancel my order please, i found it cheaper elsewhere",
        "how do i cancel an order that hasn't shipped yet",
        "i placed order {order} by mistake, please stop it",
        "can you cancel the {product} but keep the rest of the order",
        "i no longer need the {product}, cancel it",
        "stop my order {order} from being sent",
    ]),
    "payment_failed": (0.11, [
        "my card was declined at checkout",
        "payment keeps failing even though my card works elsewhere",
        "i tried to pay {amount} and got an error",
        "checkout says the transaction could not be processed",
        "why was my payment rejected",
        "the payment page freezes when i click pay",
        "my paypal payment didn't go through for order {order}",
        "i was charged but the order shows payment failed",
        "can't complete the purchase, bank says no issue on their side",
    ]),
    "product_defect": (0.10, [
        "the {product} i received is broken",
        "my {product} stopped working after {days} days",
        "the {product} arrived damaged, the box was crushed",
        "there's a crack in the screen of the {product}",
        "the {product} makes a loud noise when i turn it on",
        "one of the parts is missing from the {product}",
        "the {product} doesn't charge anymore",
        "i got a faulty {product}, it won't power on",
        "the {product} is defective, what are my options",
    ]),
    "change_address": (0.08, [
        "i need to change the shipping address for order {order}",
        "can i update my delivery address to {city}",
        "i moved, please send it to my new address",
        "wrong address on order {order}, can you fix it",
        "please ship to my office in {city} instead",
        "how do i edit the address before the order ships",
        "the apartment number in my address is wrong",
    ]),
    "invoice_request": (0.06, [
        "can you send me an invoice for order {order}",
        "i need a vat invoice for my company",
        "where can i download the receipt for {amount}",
        "please add my company name to the invoice",
        "i need a copy of the invoice for my expense report",
        "the invoice has the wrong billing address",
        "can i get an itemized receipt for order {order}",
    ]),
}

# Intents an annotator plausibly mixes up, used for most of the planted noise.
CONFUSABLE = {
    "delivery_status": ["change_address", "cancel_order"],
    "refund_request": ["cancel_order", "product_defect"],
    "account_access": ["payment_failed"],
    "cancel_order": ["refund_request"],
    "payment_failed": ["invoice_request", "refund_request"],
    "product_defect": ["refund_request"],
    "change_address": ["delivery_status"],
    "invoice_request": ["payment_failed"],
}

# (true intent, the label annotators wrongly give it, share of its training items mislabelled)
SYSTEMATIC = [("change_address", "delivery_status", 0.30), ("invoice_request", "payment_failed", 0.25)]

OPENERS = ["", "", "", "Hi, ", "Hello, ", "Hi there. ", "Good morning, ", "Hey - ", "Dear support, ", "Hello team, "]
CONTEXT = [
    "", "", "", "", "I've been a customer for {years} years. ", "This is the second time I'm writing. ",
    "I tried calling but nobody answered. ", "I ordered on {weekday}. ", "Your chat bot was no help. ",
    "I'm really disappointed. ", "I need this sorted quickly. ",
]
CLOSERS = ["", "", "", " Thanks.", " Thank you!", " Please help asap!!", " Regards, {name}", " Cheers",
           " Any help appreciated.", " Thanks in advance, {name}"]
SLOTS = {
    "product": ["headphones", "blender", "phone case", "coffee machine", "laptop stand", "desk lamp", "backpack",
                "smart watch", "vacuum cleaner", "kettle", "monitor", "running shoes", "router", "air fryer"],
    "city": ["Lyon", "Leeds", "Austin", "Porto", "Gdansk", "Utrecht", "Osaka", "Denver", "Turin", "Cork"],
    "weekday": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "name": ["Anna", "Tom", "Priya", "Marek", "Sofia", "Kenji", "Lucas", "Amara", "Ines", "Olek"],
}


def _fill(template: str, rng: random.Random) -> str:
    values = {key: rng.choice(options) for key, options in SLOTS.items()}
    values.update(order=f"#{rng.randint(10000, 99999)}", days=str(rng.randint(2, 30)),
                  amount=f"{rng.choice(['$', '€', '£'])}{rng.randint(5, 900)}.{rng.randint(0, 99):02d}",
                  years=str(rng.randint(2, 12)))
    return template.format(**values)


def _style(text: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.35:
        text = text[:1].upper() + text[1:]
    elif r < 0.42:
        text = text.upper()
    if rng.random() < 0.15:
        text = text.rstrip("?.!")
    return text


def _message(intent: str, rng: random.Random) -> str:
    core = _fill(rng.choice(INTENTS[intent][1]), rng)
    if rng.random() < 0.2:  # a second phrasing of the same need makes a longer message
        core = core.rstrip("?.!") + ". " + _fill(rng.choice(INTENTS[intent][1]), rng)
    text = _fill(rng.choice(OPENERS), rng) + _fill(rng.choice(CONTEXT), rng) + _style(core, rng)
    return text + _fill(rng.choice(CLOSERS), rng)


def make_classification_sample(*, n_items: int = 3000, noise_rate: float = 0.06, test_size: float = 0.2,
                               seed: int = 0) -> pd.DataFrame:
    """Customer-support messages in 8 intents with planted label noise.

    Parameters
    ----------
    n_items : int
        Number of messages.
    noise_rate : float
        Share of *train* items whose ``label`` is replaced by a wrong one (mostly
        a confusable intent). The test split keeps true labels, for a clean evaluation.
    test_size : float
        Share of items in the ``test`` split.
    seed : int

    Returns
    -------
    pandas.DataFrame
        ``(n_items, 6)``: id, text, label, true_label, is_noisy, split. A few
        exact and near duplicates are included on purpose.
    """
    rng = random.Random(seed)
    names = list(INTENTS)
    weights = [INTENTS[n][0] for n in names]
    rows = []
    for _ in range(n_items):
        intent = rng.choices(names, weights)[0]
        rows.append({"text": _message(intent, rng), "true_label": intent})
    # Duplicates: ~1% exact copies and ~1% near copies (case/punctuation/extra word).
    for _ in range(n_items // 100):
        src = rows[rng.randrange(len(rows))]
        rows[rng.randrange(len(rows))] = dict(src)
    for _ in range(n_items // 100):
        src = rows[rng.randrange(len(rows))]
        text = src["text"]
        text = rng.choice([text.lower(), text + " !", "Hi, " + text, text.replace(",", "")])
        rows[rng.randrange(len(rows))] = {"text": text, "true_label": src["true_label"]}
    frame = pd.DataFrame(rows)
    frame["split"] = ["test" if rng.random() < test_size else "train" for _ in range(len(frame))]
    labels = frame["true_label"].tolist()
    train_idx = [i for i, s in enumerate(frame["split"]) if s == "train"]
    n_noisy = round(noise_rate * len(train_idx))
    # As in real annotation, most errors are systematic: two confusable pairs are mislabelled at a high
    # rate (enough to bias a model trained on them), the rest are scattered slips.
    noisy: set[int] = set()
    for true, wrong, rate in SYSTEMATIC:
        members = [i for i in train_idx if labels[i] == true]
        for i in rng.sample(members, min(len(members), round(rate * len(members)), n_noisy - len(noisy))):
            labels[i] = wrong
            noisy.add(i)
    rest = [i for i in train_idx if i not in noisy]
    for i in rng.sample(rest, max(0, n_noisy - len(noisy))):
        true = labels[i]
        options = CONFUSABLE[true] if rng.random() < 0.75 else [n for n in names if n != true]
        labels[i] = rng.choice(options)
        noisy.add(i)
    frame["label"] = labels
    frame["is_noisy"] = [i in noisy for i in range(len(frame))]
    frame.insert(0, "id", [f"msg-{i:05d}" for i in range(len(frame))])
    return frame[["id", "text", "label", "true_label", "is_noisy", "split"]]


ENTITIES = {
    "PER": ["Maria Schmidt", "John Okafor", "Li Wei", "Ana Souza", "Tomasz Nowak", "Emma Clarke", "Raj Patel",
            "Yuki Tanaka", "Pierre Dubois", "Sara Lindqvist", "Omar Haddad", "Lucia Romano"],
    "ORG": ["Siemens", "the United Nations", "Acme Corp", "Deutsche Bank", "Real Madrid", "Toyota", "UNICEF",
            "the World Bank", "Reuters", "Nokia", "Oxford University", "Ajax Amsterdam"],
    "LOC": ["Berlin", "New York", "Lagos", "Shanghai", "Sao Paulo", "Warsaw", "London", "Mumbai", "Kyoto",
            "the Alps", "Lake Geneva", "Cape Town"],
    "MISC": ["German", "the Olympic Games", "Nobel Prize", "World Cup", "Brazilian", "Japanese", "Euro 2024",
             "Christmas", "Ramadan", "French"],
}
NER_TEMPLATES = [
    "{PER} joined {ORG} in {LOC} last year .",
    "{ORG} opened a new office in {LOC} on Monday .",
    "{PER} won the {MISC} after a long season .",
    "Officials in {LOC} said {ORG} would cut 200 jobs .",
    "The {MISC} delegation met {PER} in {LOC} .",
    "{PER} , a spokesman for {ORG} , declined to comment .",
    "Shares of {ORG} rose 3 percent in {LOC} trading .",
    "{PER} and {PER} will travel to {LOC} for the {MISC} .",
    "{ORG} signed {PER} on a three-year deal .",
    "Rain delayed the match between {ORG} and {ORG} in {LOC} .",
    "{PER} told reporters that the {MISC} market was calm .",
    "Police in {LOC} arrested two men on Tuesday .",
    "The report by {ORG} covers {LOC} and {LOC} .",
]


def make_ner_sample(*, n_sentences: int = 300, error_rate: float = 0.08, seed: int = 0) -> pd.DataFrame:
    """Short news-like sentences tagged PER/ORG/LOC/MISC in IOB2, with planted tag errors.

    Errors are a wrong entity type for a whole span, a span cut short, or a
    missed entity, as annotators make them.

    Returns
    -------
    pandas.DataFrame
        ``(n_sentences, 5)``: id, tokens, tags, true_tags, has_error.
    """
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n_sentences):
        template = rng.choice(NER_TEMPLATES)
        tokens: list[str] = []
        tags: list[str] = []
        for word in template.split():
            if word.startswith("{") and word.endswith("}"):
                kind = word[1:-1]
                entity = rng.choice(ENTITIES[kind]).split()
                # A leading "the" is not part of the entity in CoNLL's convention.
                if entity[0] == "the" and len(entity) > 1:
                    tokens.append("the")
                    tags.append("O")
                    entity = entity[1:]
                tokens += entity
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(entity) - 1)
            else:
                tokens.append(word)
                tags.append("O")
        rows.append({"id": f"sent-{i:04d}", "tokens": tokens, "true_tags": list(tags)})
    types = list(ENTITIES)
    n_errors = round(error_rate * n_sentences)
    for row in rng.sample(rows, n_errors):
        tags = list(row["true_tags"])
        starts = [j for j, t in enumerate(tags) if t.startswith("B-")]
        if not starts:
            continue
        j = rng.choice(starts)
        kind = tags[j][2:]
        end = j + 1
        while end < len(tags) and tags[end] == f"I-{kind}":
            end += 1
        mode = rng.random()
        if mode < 0.5:
            wrong = rng.choice([t for t in types if t != kind])
            tags[j:end] = [f"B-{wrong}"] + [f"I-{wrong}"] * (end - j - 1)
        elif mode < 0.75 and end - j > 1:
            tags[end - 1] = "O"
        else:
            tags[j:end] = ["O"] * (end - j)
        row["tags"] = tags
    for row in rows:
        row.setdefault("tags", list(row["true_tags"]))
        row["has_error"] = row["tags"] != row["true_tags"]
    return pd.DataFrame(rows)[["id", "tokens", "tags", "true_tags", "has_error"]]


def write_samples(out_dir: str | Path, *, seed: int = 0) -> dict[str, Path]:
    """Write ``support_messages.parquet`` and ``ner_sentences.parquet`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"classification": out / "support_messages.parquet", "ner": out / "ner_sentences.parquet"}
    make_classification_sample(seed=seed).to_parquet(paths["classification"], index=False)
    make_ner_sample(seed=seed).to_parquet(paths["ner"], index=False)
    return paths
