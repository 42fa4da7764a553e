"""Issue #22 on the cards: every reference a card cites shows the fit of its evidence --
population, design, size (where the source gives it) and year -- next to it, so the prescriber
reads that the LDN evidence for pudendal neuralgia is indirect (other conditions, small
studies) before acting on the card."""

from __future__ import annotations

import re
from typing import Any

from ldncare.cdshooks.cards import reference_lines
from ldncare.evidence.loader import load_evidence
from tests.integration.test_cdshooks import (
    cards_of,
    egfr,
    hook_request,
    make_client,
    med_request,
    pn_without_contraindications,
    post,
)

#: A reference list item as the cards write it: the reference, then "*(population: ...)*".
_ITEM = re.compile(r"^- (?P<ref>.+?) \*\(population: (?P<pop>[^;]+); (?P<design>[^;]+); "
                   r"(?P<year>\d{4})\)\*$")  # fmt: skip


def _reference_items(card: dict[str, Any]) -> list[re.Match[str]]:
    refs = card["detail"].split("**References**", 1)[1].split("\n\n*ldncare", 1)[0]
    lines = [line for line in refs.strip().splitlines() if line.startswith("- ")]
    assert lines, card["detail"]
    matches = [_ITEM.match(line) for line in lines]
    assert all(matches), lines
    return [m for m in matches if m is not None]


def test_consider_ldn_card_for_pudendal_neuralgia_shows_its_evidence_is_indirect() -> None:
    body = hook_request("patient-view", resources=pn_without_contraindications())
    (card,) = cards_of(post(make_client(), "ldncare-patient-view", body))
    items = _reference_items(card)
    populations = {m["pop"] for m in items}
    # The card's own sources say where the evidence comes from: not (only) pudendal neuralgia.
    assert populations - {"pudendal neuralgia"}, populations


def test_naltrexone_and_oxycodone_card_references_carry_design_and_year() -> None:
    resources = [
        *pn_without_contraindications(),
        med_request("naltrexone 4.5 mg capsule"),
        med_request("oxycodone 5 mg oral tablet"),
    ]
    cards = cards_of(
        post(
            make_client(), "ldncare-patient-view", hook_request("patient-view", resources=resources)
        )
    )
    critical = next(c for c in cards if c["indicator"] == "critical")
    sources = load_evidence().sources
    for m in _reference_items(critical):
        year = int(m["year"])
        assert any(s.year == year and s.fit_text().endswith(f"; {year}") for s in sources.values())


def test_renal_dose_card_references_show_the_label_as_a_product_label() -> None:
    """The renal band comes from the product label: the fit says so (design 'product label')."""
    resources = [*pn_without_contraindications(), egfr(25)]
    order = med_request("gabapentin 600 MG Oral Tablet", rid="gaba", status="draft",
                        dose_mg=600, per_day=3)  # fmt: skip
    body = hook_request("order-select", resources=resources, drafts=[order])
    cards = cards_of(post(make_client(), "ldncare-order-select", body))
    renal = next(c for c in cards if c["source"]["topic"]["code"] == "renal-dose")
    designs = {m["design"].split(",")[0] for m in _reference_items(renal)}
    assert "product label" in designs, designs


def test_every_source_a_card_may_cite_renders_with_its_fit() -> None:
    """Property over the whole bibliography: each source renders as one list item with its
    population, design (and size) and year, whatever its fields."""
    sources = load_evidence().sources
    lines = reference_lines(list(sources), sources)
    assert len(lines) == len(sources)
    for line, source in zip(lines, sources.values(), strict=True):
        match = _ITEM.match(line)
        assert match, line
        assert int(match["year"]) == source.year
        if source.size:
            assert source.size in match["design"]


def test_a_reloaded_source_with_a_new_year_is_cited_with_it_not_with_the_old_line() -> None:
    """The reference lines are made once per loaded source: an evidence base reloaded with a
    changed source (a newer edition of a label) must show the change on the next card."""
    sources = load_evidence().sources
    cid, source = next(iter(sources.items()))
    (before,) = reference_lines([cid], sources)
    newer = source.model_copy(update={"year": source.year + 1})
    (after,) = reference_lines([cid], {cid: newer})
    match = _ITEM.match(after)
    assert match is not None and int(match["year"]) == source.year + 1, after
    assert reference_lines([cid], sources) == [before]
