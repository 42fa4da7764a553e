"""Score ``ldncare ask`` on the gold set (tests/ask/gold.yaml): facet recall per facet and overall,
precision, key-word recall, forbidden content, openings and refusals, and warm latency.

facet recall = covered required facets / required facets, over the answered questions; a facet
is covered when a sentence comes from a statement tagged with it. precision = share of answer
sentences (not counting the composed lead-source line) whose statement is tagged with a facet
the question requires (or is its direct answer / a key point). Forbidden content and wrong
openings are listed one per line.

Run: ``.venv/bin/python bench/ask_gold.py [--verbose]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from ldncare.ask import answer_question
from ldncare.ask.evaluate import Summary, evaluate

GOLD = Path(__file__).resolve().parents[1] / "tests" / "ask" / "gold.yaml"


def load_gold(path: Path = GOLD) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text(encoding="utf-8"))["questions"])


def report(summary: Summary, *, verbose: bool = False) -> list[str]:
    lines = [
        f"questions            {len(summary.items)} ({len(summary.answered)} answered)",
        f"facet recall         {summary.facet_recall():.3f}",
        f"precision            {summary.precision():.3f}",
        f"key-word recall      {summary.word_recall():.3f}",
        f"forbidden content    {sum(1 for s in summary.items if s.forbidden)} answers",
        f"other errors         {sum(1 for s in summary.items if s.errors)} answers",
        "recall per facet:",
    ]
    for facet, (hit, total) in summary.per_facet().items():
        lines.append(f"  {facet:<14} {hit:>3}/{total:<3} {hit / total:.3f}")
    for s in summary.items:
        missing = sorted(set(s.required) - set(s.covered))
        if missing or s.forbidden or s.errors or (verbose and s.missing_words):
            lines.append(
                f"- {s.question}: missing {missing} forbidden {list(s.forbidden)} "
                f"errors {list(s.errors)} words {list(s.missing_words)}"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="also list missing key words")
    args = parser.parse_args()
    items = load_gold()
    answer_question("warm up the index")
    summary = evaluate(items)
    print("\n".join(report(summary, verbose=args.verbose)))
    lat = []
    for item in items:
        t0 = time.perf_counter()
        answer_question(item["q"])
        lat.append((time.perf_counter() - t0) * 1000)
    print(f"latency, warm        median {statistics.median(lat):.2f} ms, max {max(lat):.2f} ms")


if __name__ == "__main__":
    main()
