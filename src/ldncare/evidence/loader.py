"""Load and validate the evidence base shipped in ``evidence/data``.

Validation is strict because this is clinical content: a statement citing a missing source, an
unknown key, a dose without a unit or a source nobody cites stops the load with a message that
names the file and the entry.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ldncare.errors import EvidenceError, LdncareError
from ldncare.evidence.models import (
    CareItem,
    Evidence,
    LdnDosing,
    Release,
    ReportOutline,
    Rule,
    Source,
    Statement,
)
from ldncare.evidence.monographs import load_monographs
from ldncare.evidence.nantes import load_nantes
from ldncare.evidence.recency import resolve as resolve_recency


def _read_yaml(node: Traversable) -> Any:
    try:
        return yaml.safe_load(node.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise EvidenceError(f"{node.name}: not valid YAML ({exc})") from None


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "missing" and where in {"subjects", "facets"}:
        msg = f"untagged statement: add '{where}' (what it is about / which question facet)"
    return f"{where}: {msg}" if where else msg


def _build(model: type[Any], raw: Any, where: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise EvidenceError(f"{where}: {_describe(exc)}") from None
    except LdncareError as exc:
        raise EvidenceError(f"{where}: {exc}") from None


def _entries(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise EvidenceError(f"{where}: expected a list of entries")
    return raw


def _unique(items: Iterable[Any], kind: str, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if item.id in out:
            raise EvidenceError(f"{where}: duplicate {kind} id {item.id!r}")
        out[item.id] = item
    return out


def load_evidence_from(root: Traversable | Path) -> Evidence:
    """Load and cross-check an evidence folder (tests use this with broken copies)."""
    root = Path(root) if isinstance(root, str) else root
    # The bibliography is sources.yaml plus sources_*.yaml (one extra file per feature area).
    source_files = [
        root / "sources.yaml",
        *sorted(
            (
                n
                for n in root.iterdir()
                if n.name.startswith("sources_") and n.name.endswith(".yaml")
            ),
            key=lambda n: n.name,
        ),
    ]
    sources = _unique(
        (
            _build(Source, raw, f"{node.name}[{i}]")
            for node in source_files
            for i, raw in enumerate(_entries(_read_yaml(node), node.name))
        ),
        "source",
        "sources",
    )
    statement_list: list[Statement] = []
    stmt_dir = root / "statements"
    for node in sorted(stmt_dir.iterdir(), key=lambda n: n.name):
        if not node.name.endswith(".yaml"):
            continue
        where = f"statements/{node.name}"
        for i, raw in enumerate(_entries(_read_yaml(node), where)):
            stmt = _build(Statement, raw, f"{where}[{i}]")
            if stmt.reviewed is None:
                raise EvidenceError(
                    f"{where}[{i}] ({stmt.id}): no review date; add 'reviewed: YYYY-MM-DD', the "
                    "day a clinician last re-read it against its sources"
                )
            statement_list.append(stmt)
    statements = _unique(statement_list, "statement", "statements/")
    if not (root / "release.yaml").is_file():
        raise EvidenceError(
            "release.yaml: missing; the evidence base needs a version and a reviewed_up_to date"
        )
    release = _build(Release, _read_yaml(root / "release.yaml"), "release.yaml")
    _check_release(release, statements)
    # Rules live in rules.yaml (LDN screening) and rules/*.yaml (one file per feature).
    rule_files = [root / "rules.yaml"]
    if (root / "rules").is_dir():
        rule_files += sorted(
            (n for n in (root / "rules").iterdir() if n.name.endswith(".yaml")),
            key=lambda n: n.name,
        )
    rules = _unique(
        (
            _build(Rule, raw, f"{node.name}[{i}]")
            for node in rule_files
            for i, raw in enumerate(_entries(_read_yaml(node), node.name))
        ),
        "rule",
        "rules",
    )
    ldn = _build(LdnDosing, _read_yaml(root / "ldn.yaml"), "ldn.yaml")
    care = tuple(
        _build(CareItem, raw, f"care.yaml[{i}]")
        for i, raw in enumerate(_entries(_read_yaml(root / "care.yaml"), "care.yaml"))
    )
    report = _build(ReportOutline, _read_yaml(root / "report.yaml"), "report.yaml")

    monographs = load_monographs(root, sources)
    nantes = load_nantes(root)
    extra: list[tuple[str, tuple[str, ...]]] = [
        pair for mono in monographs.values() for pair in mono.citing()
    ]
    if nantes is not None:
        extra.append(("nantes.yaml", nantes.citations))
    _check_citations(sources, statements, rules, ldn, care, extra)
    _check_outline(report, statements)
    statements, rules, care = _fill_recency(sources, statements, rules, care)
    return Evidence(
        release=release,
        sources=sources,
        statements=statements,
        rules=rules,
        ldn=ldn,
        care=care,
        report=report,
        monographs=monographs,
        nantes=nantes,
    )


def _check_citations(
    sources: dict[str, Source],
    statements: dict[str, Statement],
    rules: dict[str, Rule],
    ldn: LdnDosing,
    care: tuple[CareItem, ...],
    extra: Iterable[tuple[str, tuple[str, ...]]] = (),
) -> None:
    citing: list[tuple[str, tuple[str, ...]]] = list(extra)
    citing += [(f"statement {s.id!r}", s.citations) for s in statements.values()]
    citing += [(f"rule {r.id!r}", r.citations) for r in rules.values()]
    citing += [(f"care item {c.id!r}", c.citations) for c in care]
    citing += [("ldn.yaml", ldn.citations)]
    if ldn.surgery_stop is not None:
        citing += [("ldn.yaml surgery_stop", ldn.surgery_stop.citations)]
    citing += [(f"formulation {f.id!r}", f.citations) for f in ldn.formulations]
    used: set[str] = set()
    for who, cites in citing:
        if not cites and not who.startswith("formulation"):
            raise EvidenceError(f"{who} cites no source; every clinical claim needs one")
        for cid in cites:
            if cid not in sources:
                raise EvidenceError(f"{who} cites unknown source {cid!r}")
            used.add(cid)
    unused = sorted(set(sources) - used)
    if unused:
        raise EvidenceError(f"sources.yaml: sources cited by nothing: {', '.join(unused)}")


def _fill_recency(
    sources: dict[str, Source],
    statements: dict[str, Statement],
    rules: dict[str, Rule],
    care: tuple[CareItem, ...],
) -> tuple[dict[str, Statement], dict[str, Rule], tuple[CareItem, ...]]:
    """Fill recency placeholders and refuse recency claims written in words (``recency.py``)."""
    filled_statements = {
        sid: s.model_copy(
            update={"text": resolve_recency(s.text, s.citations, sources, f"statement {sid!r}")}
        )
        for sid, s in statements.items()
    }
    filled_rules = {
        rid: r.model_copy(
            update={
                field: resolve_recency(
                    getattr(r, field), r.citations, sources, f"rule {rid!r} {field}"
                )
                for field in ("message", "rationale")
            }
        )
        for rid, r in rules.items()
    }
    filled_care = tuple(
        c.model_copy(
            update={"text": resolve_recency(c.text, c.citations, sources, f"care item {c.id!r}")}
        )
        for c in care
    )
    return filled_statements, filled_rules, filled_care


def _check_release(release: Release, statements: dict[str, Statement]) -> None:
    """The base cannot claim to be reviewed up to a day before one of its statements was."""
    late = sorted(
        (s for s in statements.values() if s.reviewed and s.reviewed > release.reviewed_up_to),
        key=lambda s: (s.reviewed, s.id),
    )
    if late:
        s = late[-1]
        raise EvidenceError(
            f"release.yaml: reviewed_up_to {release.reviewed_up_to.isoformat()} is earlier than "
            f"statement {s.id!r} (reviewed {s.reviewed}); raise reviewed_up_to and the version"
        )


def _check_outline(report: ReportOutline, statements: dict[str, Statement]) -> None:
    for section in ("from_the_guidelines", "key_considerations", "treatment_approach"):
        for sid in getattr(report, section):
            if sid not in statements:
                raise EvidenceError(f"report.yaml {section}: unknown statement {sid!r}")


def data_root() -> Traversable:
    return resources.files("ldncare.evidence") / "data"


@functools.cache
def load_evidence() -> Evidence:
    """The shipped evidence base, loaded once per process."""
    return load_evidence_from(data_root())
