"""Precision and recall of the reply classifier on the labelled corpus, and its speed.

    python bench/optout_classifier.py [--split held-out|dev] [--errors]

The figures of record come from the held-out half (the default); the development half is
for building the rules. Automatic suppression is judged by precision (a suppressed reply
really asked to stop); recall counts the review queue ("possible opt-out") too, since a
person confirms those. 95% Wilson score intervals; auto-replies must never suppress.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.feedback.reply_classifier import ReplyVerdict, classify  # noqa: E402

CORPUS = ROOT / "tests" / "fixtures" / "replies" / "corpus.jsonl"


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def share(hits: int, n: int) -> str:
    low, high = wilson(hits, n)
    value = hits / n if n else float("nan")
    return f"{hits}/{n} = {value:.3f} (95% CI {low:.3f}-{high:.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="held-out", choices=["held-out", "dev"])
    parser.add_argument("--errors", action="store_true", help="list the misclassified ids")
    args = parser.parse_args()
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if r["split"] == args.split]
    raws = [r["eml"].encode() for r in rows]
    start = time.perf_counter()
    results = [classify(raw) for raw in raws]
    elapsed = time.perf_counter() - start

    suppressed = [(r, c) for r, c in zip(rows, results, strict=True)
                  if c.verdict is ReplyVerdict.OPT_OUT]
    optouts = [(r, c) for r, c in zip(rows, results, strict=True) if r["label"] == "opt-out"]
    caught = [c for r, c in optouts if c.verdict in (ReplyVerdict.OPT_OUT, ReplyVerdict.POSSIBLE)]
    auto_suppressed = [r for r, c in suppressed if r["label"] == "auto-reply"]
    true_auto = sum(1 for r, _ in suppressed if r["label"] == "opt-out")
    print(f"{args.split} half: {len(rows)} replies, {len(optouts)} of them opt-outs")
    print(f"  precision of automatic suppression: {share(true_auto, len(suppressed))}")
    print(f"  recall, counting the review queue:  {share(len(caught), len(optouts))}")
    print(f"  recall, automatic only:             "
          f"{share(sum(1 for _, c in optouts if c.verdict is ReplyVerdict.OPT_OUT), len(optouts))}")
    autos = [r for r in rows if r["label"] == "auto-reply"]
    print(f"  auto-replies suppressed:            {len(auto_suppressed)} of {len(autos)}")
    review = [r for r, c in zip(rows, results, strict=True) if c.verdict is ReplyVerdict.POSSIBLE]
    print(f"  sent to review:                     {len(review)} "
          f"({sum(1 for r in review if r['label'] != 'opt-out')} of them not opt-outs)")
    print("  per language (precision | recall with review):")
    for lang in sorted({r["language"] for r in rows}):
        s = [(r, c) for r, c in suppressed if r["language"] == lang]
        o = [(r, c) for r, c in optouts if r["language"] == lang]
        hit = sum(1 for _, c in o if c.verdict in (ReplyVerdict.OPT_OUT, ReplyVerdict.POSSIBLE))
        print(f"    {lang}: {share(sum(1 for r, _ in s if r['label'] == 'opt-out'), len(s))}"
              f" | {share(hit, len(o))}")
    matrix = collections.Counter((r["label"], c.verdict.value)
                                 for r, c in zip(rows, results, strict=True))
    print("  label x verdict:", dict(sorted(matrix.items())))
    print(f"  {len(rows) / elapsed:,.0f} messages classified per second "
          f"(parse, strip history, rules; one core)")
    if args.errors:
        for r, c in zip(rows, results, strict=True):
            stop = (ReplyVerdict.OPT_OUT, ReplyVerdict.POSSIBLE)
            wrong = (r["label"] == "opt-out") != (c.verdict in stop)
            if wrong:
                print(r["id"], r["kind"], c.verdict.value, c.rule)


if __name__ == "__main__":
    main()
