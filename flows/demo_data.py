"""A generator of realistic support tickets in Comprehend's CSV format, for the demo and tests.

Seeded and deterministic: the same arguments give the same bytes. Each ticket is built from a
topic's phrases, shared filler and noise, so the classes overlap the way real tickets do.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

TOPICS: dict[str, list[str]] = {
    "billing": [
        "I was charged twice for my subscription this month",
        "the invoice shows the wrong amount",
        "my credit card was billed after I cancelled",
        "why did my monthly price go up",
        "please send me a copy of last month's invoice",
        "the payment failed but the money left my account",
        "can I switch from monthly to annual billing",
    ],
    "technical": [
        "the app crashes every time I open the settings page",
        "I get an error 500 when I upload a file",
        "the sync has been stuck at 99 percent since yesterday",
        "login works on the web but the mobile app shows a blank screen",
        "exports time out for large projects",
        "the API returns 429 too many requests even at low volume",
        "notifications stopped arriving after the last update",
    ],
    "account": [
        "I cannot reset my password, the email never arrives",
        "please change the email address on my account",
        "how do I add a new user to our team workspace",
        "my account was locked after too many attempts",
        "I want to delete my account and all my data",
        "two factor authentication codes are not accepted",
        "how can I transfer ownership of the workspace",
    ],
    "shipping": [
        "my order has not arrived and the tracking has not moved in a week",
        "the parcel was delivered to the wrong address",
        "can I change the delivery address of my order",
        "the box arrived damaged and one item is missing",
        "when will my back-ordered item ship",
        "the courier says the package was returned to sender",
        "do you ship to Canada and how long does it take",
    ],
    "refund": [
        "I would like a refund for the unused part of my plan",
        "I returned the item two weeks ago and still have no refund",
        "how long does a refund take to reach my card",
        "please cancel my order and refund me",
        "the refund was for the wrong amount",
        "I was promised a refund by your agent last week",
        "can I get my money back if I am not satisfied",
    ],
}

OPENERS = ["Hi,", "Hello team,", "Good morning.", "Hey support,", "Dear customer service,", "", "", "Urgent:"]
CLOSERS = ["Thanks.", "Please help.", "Regards, Sam", "Can you look into it?", "", "", "Thank you in advance!", "This is really frustrating."]
FILLERS = [
    "I have been a customer for three years.",
    "Order number {n}.",
    "This started on {day}.",
    "I already tried logging out and in again.",
    "My colleague has the same problem.",
    "I attached a screenshot.",
    "",
    "",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "the weekend", "March 3rd"]


ASIDES = [
    "Last month I also wrote to you because {aside}, but that was sorted out.",
    "Unrelated, but earlier {aside}.",
    "Not the main issue: {aside}.",
]
ASIDE_RATE = 0.3  # real tickets mention other topics in passing
LABEL_NOISE = 0.03  # and some are labelled wrongly by whoever triaged them


def ticket(rng: random.Random, topics: list[str]) -> str:
    """One ticket about each of ``topics``, sometimes mentioning another topic in passing."""
    parts = [rng.choice(OPENERS)]
    for topic in topics:
        parts.append(rng.choice(TOPICS[topic]).capitalize() + rng.choice([".", "!", "?", "..."]))
        parts.append(rng.choice(FILLERS).format(n=rng.randint(10000, 99999), day=rng.choice(DAYS)))
    others = [t for t in TOPICS if t not in topics]
    if others and rng.random() < ASIDE_RATE:
        parts.append(rng.choice(ASIDES).format(aside=rng.choice(TOPICS[rng.choice(others)]).lower()))
    parts.append(rng.choice(CLOSERS))
    return " ".join(part for part in parts if part)


def _noisy(rng: random.Random, label: str, labels: list[str]) -> str:
    return rng.choice(labels) if rng.random() < LABEL_NOISE else label


def multi_class_rows(count: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    labels = sorted(TOPICS)
    rows = []
    for _ in range(count):
        label = rng.choice(labels)
        rows.append((_noisy(rng, label, labels), ticket(rng, [label])))
    return rows


def multi_label_rows(count: int, seed: int = 11, delimiter: str = "|") -> list[tuple[str, str]]:
    rng = random.Random(seed)
    labels = sorted(TOPICS)
    rows = []
    for _ in range(count):
        topics = sorted(rng.sample(labels, rng.choice([1, 1, 2, 2, 3])))
        rows.append((delimiter.join(topics), ticket(rng, topics)))
    return rows


def write_csv(rows: list[tuple[str, str]], path: Path) -> Path:
    """Writes rows as Comprehend CSV: no header, label then text, quoted where needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fp:
        csv.writer(fp, lineterminator="\n").writerows(rows)
    return path


def write_demo_data(directory: Path, train: int = 1500, test: int = 300) -> dict[str, Path]:
    """Writes train/test CSVs for both modes and a one-doc-per-line job input."""
    multi_class = multi_class_rows(train + test)
    multi_label = multi_label_rows(train + test)
    paths = {
        "multi_class_train": write_csv(multi_class[:train], directory / "tickets" / "train.csv"),
        "multi_class_test": write_csv(multi_class[train:], directory / "tickets" / "test.csv"),
        "multi_label_train": write_csv(multi_label[:train], directory / "tickets-multilabel" / "train.csv"),
        "multi_label_test": write_csv(multi_label[train:], directory / "tickets-multilabel" / "test.csv"),
    }
    incoming = directory / "incoming" / "tickets.txt"
    incoming.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(99)
    incoming.write_text("\n".join(ticket(rng, [rng.choice(sorted(TOPICS))]) for _ in range(200)) + "\n", encoding="utf-8")
    paths["incoming"] = incoming
    return paths
