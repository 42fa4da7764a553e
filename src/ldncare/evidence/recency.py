"""Claims of recency ("the most recent review") computed from the bibliography, never written.

A sentence that says "the most recent review" is true on the day it is written and silently false
once a newer review is added. So clinical text may not say it in words; it writes a placeholder,
``{latest_review:<question>}`` or ``{latest_trial:<question>}``, and the loader fills it from the
sources tagged ``evidence_for: [<question>]``, choosing the newest by year (all of them on a tie).

The placeholder also keeps the surrounding sentence honest: the chosen source must be among the
citations of the statement or rule that uses it. When someone adds a newer review to the
bibliography, every text that claims to know the latest review stops the load until it cites the
new one, and so until its author has read it and revised the text around the placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ldncare.errors import EvidenceError
from ldncare.evidence.models import Source

#: Placeholder kinds and the evidence types each picks from.
KINDS: dict[str, tuple[str, ...]] = {
    "review": ("systematic_review",),
    "trial": ("rct",),
}
_NOUN = {"review": "systematic review", "trial": "randomised trial"}

_PLACEHOLDER = re.compile(r"\{latest_([a-z]+):([a-z0-9_]+)\}")
#: A recency claim about evidence written into text ("the most recent ... reviews", "the latest
#: trial", "newest evidence"). "recently" alone, "the latest date on the record" or "the most
#: recent eGFR result" (patient data, not evidence) do not match.
_WRITTEN = re.compile(
    r"\b(most\s+recent|latest|newest|most\s+up[\s-]to[\s-]date)\b"
    r"(?:[\s,]+[\w-]+){0,4}?[\s,]+"
    r"(evidence|reviews?|meta-analys[ie]s|trials?|rcts?|stud(?:y|ies)|guidelines?|sources?)\b",
    re.IGNORECASE,
)


def check_no_written_recency(text: str, where: str) -> None:
    """Refuse a recency claim about evidence written into ``text`` (outside placeholders)."""
    match = _WRITTEN.search(_PLACEHOLDER.sub(" ", text))
    if match:
        raise EvidenceError(
            f"{where}: says {match.group(0)!r} in words; a recency claim goes stale when a newer "
            "source is added. Write {latest_review:<question>} or {latest_trial:<question>} "
            "instead, which the loader fills from the sources"
        )


def _short_name(source: Source) -> str:
    first = source.authors.split(",")[0].strip()
    surname = first.split(" ")[0] if " " in first else first
    etal = " et al." if "," in source.authors else ""
    return f"{surname}{etal} {source.year}"


def latest(sources: Mapping[str, Source], kind: str, question: str, where: str) -> list[Source]:
    """The newest sources of ``kind`` tagged with ``question`` (several on a tie of year)."""
    if kind not in KINDS:
        raise EvidenceError(
            f"{where}: unknown recency placeholder kind {kind!r}; use one of "
            f"{', '.join('latest_' + k for k in sorted(KINDS))}"
        )
    pool = [
        s for s in sources.values() if s.evidence_type in KINDS[kind] and question in s.evidence_for
    ]
    if not pool:
        raise EvidenceError(
            f"{where}: no {_NOUN[kind]} in the bibliography is tagged evidence_for "
            f"{question!r}, so {{latest_{kind}:{question}}} cannot be filled"
        )
    newest = max(s.year for s in pool)
    return sorted((s for s in pool if s.year == newest), key=lambda s: s.id)


def resolve(text: str, citations: Sequence[str], sources: Mapping[str, Source], where: str) -> str:
    """Fill every recency placeholder in ``text``; the sources named must be cited by the text."""
    check_no_written_recency(text, where)

    def fill(match: re.Match[str]) -> str:
        kind, question = match.group(1), match.group(2)
        chosen = latest(sources, kind, question, where)
        missing = [s.id for s in chosen if s.id not in citations]
        if missing:
            raise EvidenceError(
                f"{where}: {match.group(0)} is now {', '.join(missing)}, which it does not cite; "
                "read the newer source, revise the text around the placeholder and cite it"
            )
        noun = _NOUN[kind] + ("s" if len(chosen) > 1 else "")
        names = "; ".join(_short_name(s) for s in chosen)
        return f"the most recent {noun} cited here ({names})"

    return _PLACEHOLDER.sub(fill, text)
