"""In-process benchmarks of the pure core: one plan, its HTML report, and Ask."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from common import Result, at_most, info, median, percentile, timings_ms

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "src" / "ldncare" / "examples" / "pn-example.yaml"
SYNTHEA_LIKE = ROOT / "tests" / "vignettes" / "patients" / "pn-on-tramadol.yaml"


def bench_plan(quick: bool) -> list[Result]:
    from ldncare.core.patient import Patient
    from ldncare.evidence.loader import load_evidence
    from ldncare.patient_file import load_patient
    from ldncare.planning import make_plan
    from ldncare.render.html import render_html

    evidence = load_evidence()
    repeat = 50 if quick else 300
    out: list[Result] = []
    day = date(2026, 11, 25)
    for label, path in (("PN patient", EXAMPLE), ("PN patient on tramadol", SYNTHEA_LIKE)):
        patient = load_patient(path)

        def plan_only(patient: Patient = patient) -> object:
            return make_plan(patient, as_of=day).to_contract(evidence)

        t = timings_ms(plan_only, repeat=repeat)
        out.append(at_most("plan", f"plan + contract, {label} (median)", median(t), "ms", 5.0))
        contract = plan_only()

        def with_html(patient: Patient = patient) -> object:
            return render_html(make_plan(patient, as_of=day).to_contract(evidence))

        t = timings_ms(with_html, repeat=repeat)
        out.append(info("plan", f"plan + HTML report, {label} (median)", median(t), "ms"))
        assert contract
    return out


def bench_ask(quick: bool) -> list[Result]:
    from ask_bench import evaluate, load_questions

    from ldncare.ask import answer_question

    questions = load_questions()
    answer_question("warm up the index")
    scores = evaluate(questions)
    lat: list[float] = []
    for _ in range(1 if quick else 5):
        for item in questions:
            t0 = time.perf_counter()
            answer_question(item["q"])
            lat.append((time.perf_counter() - t0) * 1000)
    return [
        at_most("ask", "answer, warm (median)", median(lat), "ms", 20.0),
        at_most("ask", "answer, warm (p95)", percentile(lat, 95), "ms", 20.0),
        info("ask", "recall@1", scores["recall@1"], ""),
        info("ask", "recall@5", scores["recall@5"], "", "retrieval alone"),
        info("ask", "MRR", scores["mrr"], ""),
        info("ask", "refusal accuracy", scores["refusal_accuracy"], ""),
        *_answer_only(questions),
        *_gold(),
    ]


def _answer_only(questions: list[dict[str, Any]]) -> list[Result]:
    """Expected evidence in the composed answer alone (what the user sees), per facet."""
    from ldncare.ask.evaluate import answer_recall

    scored = answer_recall(questions)
    rows = [info("ask", "answer-only recall", scored.overall, "", "test asserts >= 0.95")]
    for facet, (hit, total) in scored.per_facet.items():
        rows.append(info("ask", f"answer-only: {facet}", hit / total, "", f"{hit}/{total}"))
    return rows


def _gold() -> list[Result]:
    from ask_gold import load_gold

    from ldncare.ask.evaluate import evaluate as evaluate_gold

    summary = evaluate_gold(load_gold())
    rows = [
        info("ask", "gold facet recall", summary.facet_recall(), "", "test asserts >= 0.95"),
        info("ask", "gold precision", summary.precision(), ""),
        info("ask", "gold key-word recall", summary.word_recall(), ""),
    ]
    for facet, (hit, total) in summary.per_facet().items():
        rows.append(info("ask", f"gold recall: {facet}", hit / total, "", f"{hit}/{total}"))
    return rows


def bench_cold_start(quick: bool) -> list[Result]:
    exe = Path(sys.executable).with_name("ldncare")
    times = []
    for _ in range(5 if quick else 15):
        t0 = time.perf_counter()
        subprocess.run([str(exe), "--help"], check=True, capture_output=True)
        times.append((time.perf_counter() - t0) * 1000)
    evidence = []
    for _ in range(3 if quick else 7):
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from ldncare.evidence.loader import load_evidence; load_evidence()",
            ],
            check=True,
            capture_output=True,
        )
        evidence.append((time.perf_counter() - t0) * 1000)
    return [
        at_most("startup", "`ldncare --help`, cold process (median)", median(times), "ms", 300),
        info("startup", "new process + full evidence load (median)", median(evidence), "ms"),
    ]
