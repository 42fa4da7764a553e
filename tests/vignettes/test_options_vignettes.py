"""Named clinical vignettes for alternatives and add-ons to LDN (issue 3).

Each test is a short clinical case; its docstring names the source the expected decision
comes from (ids of the evidence bibliography).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from ldncare.evidence.models import Evidence
from tests.options_support import AS_OF, evidence, options_for, patient, ranked_for, rules_of


@pytest.fixture(scope="module")
def ev() -> Evidence:
    return evidence()


def test_crcl_25_puts_gabapentinoids_in_reduced_band_and_duloxetine_avoid(ev: Evidence) -> None:
    """Age 70, 60 kg man, creatinine 2.2 mg/dL -> Cockcroft–Gault CrCl 26.5 mL/min.
    Sources: label_gabapentin, label_pregabalin (renal bands), label_duloxetine (CrCl < 30)."""
    p = patient(age=70, sex="male", weight_kg=60, creatinine=(2.2, "mg/dL"))
    opts = options_for(p, ev)
    gaba, pregab, dulox = opts["gabapentin"], opts["pregabalin"], opts["duloxetine"]
    assert gaba.suitability == "caution" and "option.renal.band" in rules_of(gaba)
    assert gaba.max_daily_dose_mg == Decimal(700)
    assert gaba.schedule[0].dose_mg == Decimal(200) and gaba.schedule[0].doses_per_day == 1
    assert pregab.max_daily_dose_mg == Decimal(150)
    assert pregab.schedule[0].dose_mg == Decimal(25)
    assert dulox.suitability == "avoid" and "option.duloxetine.crcl30" in rules_of(dulox)
    assert dulox.schedule == ()


def test_crcl_basis_names_creatinine_and_date(ev: Evidence) -> None:
    """The renal reason shows how CrCl was computed (Cockcroft–Gault, facts.md)."""
    p = patient(age=70, sex="male", weight_kg=60, creatinine=(2.2, "mg/dL"))
    reason = next(
        r for r in options_for(p, ev)["gabapentin"].reasons if r.rule == "option.renal.band"
    )
    assert "Cockcroft–Gault from creatinine 2.2 mg/dL on 2026-05-01" in reason.message
    assert "label_gabapentin" in reason.citations


def test_creatinine_in_umol_is_converted(ev: Evidence) -> None:
    """Creatinine 194.5 µmol/L = 2.2 mg/dL (/88.4); same band as above (label_gabapentin)."""
    p = patient(age=70, sex="male", weight_kg=60, creatinine=(194.48, "µmol/L"))
    assert options_for(p, ev)["gabapentin"].max_daily_dose_mg == Decimal(700)


def test_egfr_only_is_used_as_estimate(ev: Evidence) -> None:
    """No creatinine, eGFR 40: gabapentin 400-1400 mg/day band (label_gabapentin)."""
    p = patient(egfr=40)
    gaba = options_for(p, ev)["gabapentin"]
    assert gaba.max_daily_dose_mg == Decimal(1400)
    assert any("eGFR 40 on 2026-05-01 used as estimate" in r.message for r in gaba.reasons)


def test_normal_renal_function_gives_full_gabapentin_titration(ev: Evidence) -> None:
    """Label titration 300 -> 600 -> 900 mg over 3 days, 1-3 doses a day (label_gabapentin)."""
    p = patient(age=40, sex="female", weight_kg=70, creatinine=(0.8, "mg/dL"))
    gaba = options_for(p, ev)["gabapentin"]
    assert gaba.suitability == "suitable"
    assert [s.dose_mg for s in gaba.schedule] == [300, 600, 900]
    assert [s.doses_per_day for s in gaba.schedule] == [1, 2, 3]
    assert gaba.schedule[0].start_date == AS_OF and gaba.schedule[-1].end_date is None
    assert gaba.max_daily_dose_mg == Decimal(3600)


def test_no_renal_data_is_flagged_but_not_blocking(ev: Evidence) -> None:
    """Without creatinine or eGFR the dose basis is unknown (labels): info reason only."""
    gaba = options_for(patient(), ev)["gabapentin"]
    assert "option.renal.unknown" in rules_of(gaba)
    assert gaba.suitability == "suitable"


def test_age_78_with_first_degree_av_block_makes_amitriptyline_avoid(ev: Evidence) -> None:
    """Beers 2023 (beers2023): avoid strongly anticholinergic antidepressants at >= 65;
    label_amitriptyline: conduction prolongation."""
    p = patient(age=78, conditions=["First degree atrioventricular block"])
    ami = options_for(p, ev)["amitriptyline"]
    assert ami.suitability == "avoid"
    assert {"option.tca.age65", "option.tca.conduction"} <= rules_of(ami)
    assert ami.schedule == ()


def test_conduction_disease_alone_is_caution_for_tricyclics(ev: Evidence) -> None:
    """label_amitriptyline / label_nortriptyline: watch cardiovascular disease closely."""
    p = patient(age=50, conditions=["First degree atrioventricular block"])
    opts = options_for(p, ev)
    assert opts["amitriptyline"].suitability == "caution"
    assert opts["nortriptyline"].suitability == "caution"


def test_recent_mi_makes_tricyclics_avoid(ev: Evidence) -> None:
    """label_amitriptyline, label_nortriptyline: contraindicated after myocardial infarction."""
    p = patient(age=55, conditions=["Acute myocardial infarction"])
    opts = options_for(p, ev)
    assert opts["amitriptyline"].suitability == "avoid"
    assert "option.tca.recent_mi" in rules_of(opts["nortriptyline"])


def test_phenelzine_makes_snris_tcas_and_tramadol_avoid(ev: Evidence) -> None:
    """Labels (duloxetine, venlafaxine, amitriptyline, nortriptyline, tramadol): MAOIs."""
    opts = options_for(patient(meds=["phenelzine 15 mg three times daily"]), ev)
    for drug in ("duloxetine", "venlafaxine", "amitriptyline", "nortriptyline", "tramadol"):
        assert opts[drug].suitability == "avoid", drug
        assert "option.serotonergic.maoi" in rules_of(opts[drug])
    assert opts["gabapentin"].suitability != "avoid"


def test_maoi_stopped_ten_days_ago_still_blocks_snri(ev: Evidence) -> None:
    """Labels: not within 14 days of stopping an MAOI (label_duloxetine)."""
    p = patient(stopped_meds=(("phenelzine 15 mg", date(2026, 5, 22)),))
    assert options_for(p, ev)["duloxetine"].suitability == "avoid"


def test_maoi_stopped_a_month_ago_no_longer_blocks(ev: Evidence) -> None:
    """Labels: the 14-day washout is over (label_duloxetine)."""
    p = patient(stopped_meds=(("phenelzine 15 mg", date(2026, 4, 20)),))
    assert "option.serotonergic.maoi" not in rules_of(options_for(p, ev)["duloxetine"])


def test_sertraline_gives_serotonin_syndrome_caution_with_label_wording(ev: Evidence) -> None:
    """Labels warn of potentially life-threatening serotonin syndrome with other
    serotonergic drugs (label_duloxetine, label_venlafaxine, label_tramadol)."""
    opts = options_for(patient(meds=["sertraline 50 mg daily"]), ev)
    for drug in ("duloxetine", "venlafaxine", "amitriptyline", "tramadol"):
        reason = next(r for r in opts[drug].reasons if r.rule == "option.serotonergic.caution")
        assert opts[drug].suitability == "caution"
        assert "sertraline" in reason.message
        assert "potentially life-threatening serotonin syndrome" in reason.message
        assert f"label_{drug}" in reason.citations  # each drug cites its own label
        others = {f"label_{d}" for d in opts if d != drug}
        assert not others & set(reason.citations), (drug, reason.citations)


def test_depression_makes_duloxetine_preferred_and_first(ev: Evidence) -> None:
    """label_duloxetine: licensed for major depressive disorder as well as neuropathic pain."""
    ranked = ranked_for(patient(conditions=["Major depressive disorder"]), ev)
    opts = {o.drug: o for o in ranked}
    assert opts["duloxetine"].suitability == "preferred"
    assert "option.favour.depression" in rules_of(opts["duloxetine"])
    assert ranked[0].suitability == "preferred"
    assert ranked[0].drug in ("duloxetine", "venlafaxine")


def test_anxiety_favours_snris(ev: Evidence) -> None:
    """label_duloxetine, label_venlafaxine: generalised anxiety disorder indication."""
    opts = options_for(patient(conditions=["Generalized anxiety disorder"]), ev)
    assert opts["venlafaxine"].suitability == "preferred"


def test_insomnia_favours_amitriptyline_at_night(ev: Evidence) -> None:
    """label_amitriptyline: sedating; NI formulary: evening dose."""
    ami = options_for(patient(age=45, conditions=["Insomnia"]), ev)["amitriptyline"]
    assert ami.suitability == "preferred"
    assert ami.schedule[0].time_of_day == "bedtime"


def test_cyp2d6_poor_metaboliser_tca_advice_per_cpic(ev: Evidence) -> None:
    """hicks2017 (CPIC): CYP2D6 poor -> avoid tricyclics; if needed 50 % of the start dose."""
    opts = options_for(patient(phenotypes={"CYP2D6": "Poor metabolizer"}), ev)
    for drug in ("amitriptyline", "nortriptyline"):
        reason = next(r for r in opts[drug].reasons if r.rule == "option.cpic.cyp2d6_poor")
        assert opts[drug].suitability == "avoid"
        assert "50 %" in reason.message and reason.citations == ("hicks2017",)


def test_cyp2d6_intermediate_lowers_amitriptyline_start_by_a_quarter(ev: Evidence) -> None:
    """hicks2017 (CPIC): intermediate metaboliser -> consider 25 % lower starting dose."""
    ami = options_for(patient(phenotypes={"CYP2D6": "intermediate metabolizer"}), ev)[
        "amitriptyline"
    ]
    assert ami.suitability == "caution"
    assert ami.schedule[0].dose_mg == Decimal("7.5")
    assert ami.schedule[1].dose_mg == Decimal(20)


def test_cyp2c19_ultrarapid_suggests_alternative_to_amitriptyline_only(ev: Evidence) -> None:
    """hicks2017 (CPIC): CYP2C19 ultrarapid -> consider a drug not metabolised by CYP2C19;
    nortriptyline depends on CYP2D6 only."""
    opts = options_for(patient(phenotypes={"CYP2C19": "ultrarapid metabolizer"}), ev)
    assert "option.cpic.cyp2c19_rapid" in rules_of(opts["amitriptyline"])
    assert "option.cpic.cyp2c19_rapid" not in rules_of(opts["nortriptyline"])


def test_hypertension_gives_venlafaxine_caution(ev: Evidence) -> None:
    """label_venlafaxine: control pre-existing hypertension, monitor blood pressure."""
    ven = options_for(patient(conditions=["Essential hypertension"]), ev)["venlafaxine"]
    assert ven.suitability == "caution"
    assert "option.venlafaxine.hypertension" in rules_of(ven)


def test_oxycodone_and_lorazepam_give_gabapentinoid_breathing_caution(ev: Evidence) -> None:
    """fda2019_gabapentinoids: respiratory depression with opioids and CNS depressants."""
    opts = options_for(patient(meds=["oxycodone 10 mg", "lorazepam 1 mg"]), ev)
    for drug in ("gabapentin", "pregabalin"):
        reason = next(
            r for r in opts[drug].reasons if r.rule == "option.gabapentinoid.cns_depressant"
        )
        assert "oxycodone" in reason.message and "lorazepam" in reason.message
        assert opts[drug].suitability == "caution"


def test_copd_and_opioid_use_disorder_are_gabapentinoid_cautions(ev: Evidence) -> None:
    """fda2019_gabapentinoids: lung disease; misuse and abuse."""
    p = patient(conditions=["Chronic obstructive pulmonary disease", "Opioid use disorder"])
    gaba = options_for(p, ev)["pregabalin"]
    assert {"option.gabapentinoid.respiratory", "option.gabapentinoid.misuse"} <= rules_of(gaba)


def test_cirrhosis_avoids_duloxetine_and_halves_venlafaxine(ev: Evidence) -> None:
    """label_duloxetine (hepatic insufficiency: avoid); label_venlafaxine (halve dose)."""
    opts = options_for(patient(conditions=["Cirrhosis of liver"]), ev)
    assert opts["duloxetine"].suitability == "avoid"
    ven = opts["venlafaxine"]
    assert ven.suitability == "caution"
    assert ven.max_daily_dose_mg == Decimal("112.5")
    assert ven.schedule[0].dose_mg == Decimal("37.5")


def test_tramadol_is_never_combinable_with_ldn(ev: Evidence) -> None:
    """label_naltrexone: opioid analgesics contraindicated; nice_cg173: rescue only."""
    opts = options_for(patient(), ev)
    tram = opts["tramadol"]
    assert tram.combinable_with_ldn is False
    assert {"option.opioid.not_with_ldn", "option.tramadol.rescue_only"} <= rules_of(tram)
    assert all(o.combinable_with_ldn for d, o in opts.items() if d != "tramadol")


def test_pregnancy_puts_oral_options_on_caution(ev: Evidence) -> None:
    """Labels: limited human pregnancy data; decide with the obstetric team."""
    opts = options_for(patient(pregnant=True), ev)
    assert opts["pregabalin"].suitability == "caution"
    assert "option.pregnancy.snri" in rules_of(opts["duloxetine"])
    assert "option.pregnancy" not in rules_of(opts["lidocaine_plaster"])


def test_plain_patient_ranks_first_line_by_nnt(ev: Evidence) -> None:
    """finnerup2015: NNT TCAs 3.6 < gabapentin 6.3 < SNRIs 6.4 < pregabalin 7.7."""
    ranked = ranked_for(patient(age=40, creatinine=(0.8, "mg/dL")), ev)
    suitable = [o.drug for o in ranked if o.suitability == "suitable"]
    assert suitable[:2] == ["amitriptyline", "nortriptyline"]
    assert (
        suitable.index("gabapentin") < suitable.index("duloxetine") < suitable.index("pregabalin")
    )
    second = [o.drug for o in ranked if o.suitability == "caution"]
    assert set(second) == {"tramadol", "capsaicin_patch", "lidocaine_plaster"}


def test_contract_shape(ev: Evidence) -> None:
    """The plan contract's options[] entry (issue 3 §5)."""
    contract = options_for(patient(egfr=25), ev)["gabapentin"].to_contract()
    assert set(contract) == {
        "drug",
        "name",
        "suitability",
        "combinable_with_ldn",
        "reasons",
        "schedule",
        "max_daily_dose_mg",
    }
    assert set(contract["reasons"][0]) == {"message", "citations", "rule", "rationale"}
    assert all(r["rationale"] for r in contract["reasons"])  # review item 12
    assert contract["schedule"][0] == {
        "start_date": "2026-06-01",
        "end_date": None,
        "dose_mg": 200,
        "doses_per_day": 1,
        "time_of_day": "divided",
    }
    assert contract["max_daily_dose_mg"] == 700
