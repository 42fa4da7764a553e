"""Benchmark ``ldncare ask`` on the evaluation set (tests/ask/questions.yaml).

Prints recall@1, recall@5, MRR, refusal accuracy and warm latency per question (median, p95).
recall@k for one question = |expected ∩ top k| / min(|expected|, k), averaged over the in-scope
questions (so recall@1 is the share whose best hit is an expected statement). MRR uses the rank
of the first expected statement (0 when none is ranked). Refusal accuracy = share of all
questions whose covered/not-covered decision is right.

Run: ``.venv/bin/python bench/ask_bench.py [--repeat N] [--verbose]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from ldncare.ask import answer_question, ask_index, search
from ldncare.ask.evaluate import answer_recall

QUESTIONS = Path(__file__).resolve().parents[1] / "tests" / "ask" / "questions.yaml"


def load_questions(path: Path = QUESTIONS) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return list(data["questions"])


def evaluate(questions: list[dict[str, Any]]) -> dict[str, Any]:
    r1: list[float] = []
    r5: list[float] = []
    rr: list[float] = []
    refusal_ok = 0
    misses: list[str] = []
    for item in questions:
        found = search(item["q"])
        oos = bool(item.get("out_of_scope"))
        if found.covered != (not oos):
            misses.append(f"scope: {item['q']!r} covered={found.covered} ({found.reason})")
        else:
            refusal_ok += 1
        if oos:
            continue
        expected = set(item["expected"])
        ranked = found.ranked_ids() if found.covered else []
        for k, bucket in ((1, r1), (5, r5)):
            bucket.append(len(expected & set(ranked[:k])) / min(len(expected), k))
        first = next((i for i, sid in enumerate(ranked, 1) if sid in expected), None)
        rr.append(1 / first if first else 0.0)
        if r5[-1] < 1:
            misses.append(f"recall@5 {r5[-1]:.2f}: {item['q']!r} -> {ranked[:5]}")
    return {
        "in_scope": len(r5),
        "out_of_scope": len(questions) - len(r5),
        "recall@1": statistics.fmean(r1),
        "recall@5": statistics.fmean(r5),
        "mrr": statistics.fmean(rr),
        "refusal_accuracy": refusal_ok / len(questions),
        "misses": misses,
    }


def latency(questions: list[dict[str, Any]], repeat: int) -> list[float]:
    for item in questions:  # warm the index and every code path once
        answer_question(item["q"])
    per_question: list[float] = []
    for item in questions:
        runs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            answer_question(item["q"])
            runs.append((time.perf_counter() - t0) * 1000)
        per_question.append(statistics.median(runs))
    return per_question


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="Timed runs per question.")
    parser.add_argument("--verbose", action="store_true", help="Print every miss.")
    args = parser.parse_args()
    t0 = time.perf_counter()
    ask_index()
    build_ms = (time.perf_counter() - t0) * 1000
    questions = load_questions()
    scores = evaluate(questions)
    ms = sorted(latency(questions, args.repeat))
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    print(
        f"questions: {len(questions)} ({scores['in_scope']} in scope, {scores['out_of_scope']} out)"
    )
    print(f"recall@1:          {scores['recall@1']:.3f}")
    print(f"recall@5:          {scores['recall@5']:.3f}")
    print(f"MRR:               {scores['mrr']:.3f}")
    print(f"refusal accuracy:  {scores['refusal_accuracy']:.3f}")
    shown = answer_recall(questions)
    print(f"answer-only recall: {shown.overall:.3f} (expected statements in the composed answer)")
    for facet, (hit, total) in shown.per_facet.items():
        print(f"  {facet:<14} {hit:>3}/{total:<3} {hit / total:.3f}")
    print(f"index build (cold): {build_ms:.0f} ms")
    print(
        f"warm latency per question: median {statistics.median(ms):.2f} ms, p95 {p95:.2f} ms, "
        f"max {ms[-1]:.2f} ms"
    )
    if args.verbose or scores["misses"]:
        for line in scores["misses"]:
            print("  miss:", line)


if __name__ == "__main__":
    main()
