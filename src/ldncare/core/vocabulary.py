"""Recognise medications and conditions: names, brands and codes -> clinical classes.

Pure: the parsed vocabulary data (``evidence/data/vocabulary``) is passed in; the loader that
reads the files is :mod:`ldncare.evidence.vocabulary`.

Medications are recognised by RxNorm code (the CDC opioid value sets, classed by set and by their
display names) *or* by name: the product text is lower-cased, punctuation becomes spaces and the
words are looked up (longest phrase first) in one dict of ingredient names and brand names. Salts
("hydrochloride", "bitartrate") are simply not in the dict, so they are ignored; a combination
product ("Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG") gets the union of its
ingredients' classes. Results are memoised because bulk imports classify the same products again
and again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ldncare.core.patient import Condition, MedicationUse
from ldncare.errors import EvidenceError

#: Medication classes the rules may ask about (the data may add more).
MEDICATION_CLASSES = frozenset(
    {
        "opioid", "opioid_long_acting", "buprenorphine", "methadone", "opioid_antitussive",
        "tramadol", "naltrexone", "opioid_antagonist", "levothyroxine", "thyroid_hormone",
        "immunosuppressant", "corticosteroid", "gabapentinoid", "snri", "ssri", "tca", "maoi",
        "triptan", "lithium", "serotonergic", "benzodiazepine", "cns_depressant", "qt_prolonging",
    }
)  # fmt: skip

_CACHE_LIMIT = 100_000
_NON_WORD = re.compile(r"[^a-z0-9#]+")


def normalize(text: str) -> str:
    """``"St. John's Wort"`` -> ``"st johns wort"``; ``"Tylenol#3"`` -> ``"tylenol #3"``."""
    lowered = text.lower().replace("'", "").replace("\u2019", "").replace("#", " #")
    return " ".join(_NON_WORD.sub(" ", lowered).split())


def _str_list(raw: Any, where: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise EvidenceError(f"{where}: expected a list of strings")
    return raw


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise EvidenceError(f"{where}: expected a mapping")
    return raw


def _close(classes: Iterable[str], implies: Mapping[str, frozenset[str]]) -> set[str]:
    out = set(classes)
    todo = list(out)
    while todo:
        for extra in implies.get(todo.pop(), ()):
            if extra not in out:
                out.add(extra)
                todo.append(extra)
    return out


@dataclass(frozen=True)
class _Phrase:
    ingredients: tuple[str, ...]
    classes: frozenset[str]


@dataclass(frozen=True)
class _Rule:
    id: str
    if_class: str | None
    if_ingredients: frozenset[str]
    pattern: re.Pattern[str] | None
    add: frozenset[str]
    remove: frozenset[str]


@dataclass
class _Match:
    ingredients: list[str] = field(default_factory=list)
    classes: set[str] = field(default_factory=set)


class MedicationVocabulary:
    """Classifies :class:`MedicationUse` records into medication classes."""

    def __init__(self, drugs: Mapping[str, Any], value_sets: Mapping[str, Any]) -> None:
        drugs = _mapping(drugs, "drugs.yaml")
        self._implies: dict[str, frozenset[str]] = {
            k: frozenset(_str_list(v, f"drugs.yaml implies.{k}"))
            for k, v in _mapping(drugs.get("implies"), "drugs.yaml implies").items()
        }
        self._ingredient_classes: dict[str, frozenset[str]] = {}
        self._phrases: dict[str, _Phrase] = {}
        ingredient_codes: dict[str, str] = {}
        ingredients = _mapping(drugs.get("ingredients"), "drugs.yaml ingredients")
        if not ingredients:
            raise EvidenceError("drugs.yaml: no ingredients")
        for raw_id, entry in ingredients.items():
            where = f"drugs.yaml ingredients.{raw_id}"
            entry = _mapping(entry, where)
            unknown = set(entry) - {"classes", "names", "brands", "rxnorm"}
            if unknown:
                raise EvidenceError(f"{where}: unknown key {sorted(unknown)[0]!r}")
            ing = normalize(str(raw_id))
            self._ingredient_classes[ing] = frozenset(_str_list(entry.get("classes"), where))
            # The ingredient's own RxNorm codes (RxCUI): a product coded only by them is the
            # ingredient, whatever its local name (the code ldncare's export writes).
            for code in _str_list(entry.get("rxnorm"), where):
                ingredient_codes[code] = ing
            for name in [ing, *_str_list(entry.get("names"), where)]:
                self._add_phrase(name, _Phrase((ing,), frozenset()), where)
            for brand in _str_list(entry.get("brands"), where):
                self._add_phrase(brand, _Phrase((ing,), frozenset()), where)
        for brand, entry in _mapping(drugs.get("brands"), "drugs.yaml brands").items():
            where = f"drugs.yaml brands.{brand}"
            entry = _mapping(entry, where)
            unknown = set(entry) - {"ingredients", "classes"}
            if unknown:
                raise EvidenceError(f"{where}: unknown key {sorted(unknown)[0]!r}")
            ings = tuple(normalize(i) for i in _str_list(entry.get("ingredients"), where))
            missing = [i for i in ings if i not in self._ingredient_classes]
            if missing or not ings:
                raise EvidenceError(f"{where}: unknown or missing ingredient {missing[:1]}")
            extra = frozenset(_str_list(entry.get("classes"), where))
            self._add_phrase(str(brand), _Phrase(ings, extra), where)
        self._max_words = max(len(p.split()) for p in self._phrases)
        # Classes that also count when named only in the free dose text (a supplement statement
        # whose dosage says "kratom powder 2 g"): a substance named there is being taken.
        self._free_text_classes = frozenset(
            _str_list(drugs.get("free_text_classes"), "drugs.yaml free_text_classes")
        )
        self._rules = tuple(self._parse_rules(drugs.get("rules")))

        # Codes of the CDC value sets: classes of the set plus what their display names say.
        self._code_classes: dict[str, frozenset[str]] = {}
        self._code_ingredients: dict[str, tuple[str, ...]] = {}
        #: A readable name for each known code (a card never shows a bare code).
        self._code_display: dict[str, str] = {}
        for code, ing in ingredient_codes.items():
            self._code_classes[code] = self.ingredient_classes(ing)
            self._code_ingredients[code] = (ing,)
            self._code_display[code] = ing
        for key, vs in _mapping(value_sets, "opioid_rxnorm.json value_sets").items():
            vs = _mapping(vs, f"opioid_rxnorm.json {key}")
            rxnorm = _mapping(_mapping(vs.get("concepts"), key).get("rxnorm"), key)
            set_classes = frozenset(_str_list(vs.get("classes"), f"opioid_rxnorm.json {key}"))
            for code, display in rxnorm.items():
                match = self._scan(str(display))
                classes = self._finish(match, normalize(str(display)), set_classes)
                self._code_classes[code] = self._code_classes.get(code, frozenset()) | classes
                if code not in self._code_ingredients:
                    self._code_ingredients[code] = tuple(match.ingredients)
                self._code_display.setdefault(code, str(display))
        self._cache: dict[tuple[str, tuple[str, ...]], tuple[frozenset[str], tuple[str, ...]]] = {}

    # -- construction helpers -------------------------------------------------------------
    def _add_phrase(self, text: str, phrase: _Phrase, where: str) -> None:
        key = normalize(text)
        if not key:
            raise EvidenceError(f"{where}: empty name")
        old = self._phrases.get(key)
        if old is not None and old != phrase:
            raise EvidenceError(f"{where}: name {text!r} already means {old.ingredients}")
        self._phrases[key] = phrase

    def _parse_rules(self, raw: Any) -> Iterable[_Rule]:
        if raw is None:
            return
        if not isinstance(raw, list):
            raise EvidenceError("drugs.yaml rules: expected a list")
        for i, entry in enumerate(raw):
            where = f"drugs.yaml rules[{i}]"
            entry = _mapping(entry, where)
            unknown = set(entry) - {
                "id", "if_class", "if_ingredient", "name_pattern", "add", "remove",
            }  # fmt: skip
            if unknown:
                raise EvidenceError(f"{where}: unknown key {sorted(unknown)[0]!r}")
            pattern = entry.get("name_pattern")
            try:
                compiled = re.compile(pattern) if isinstance(pattern, str) else None
            except re.error as exc:
                raise EvidenceError(f"{where}: bad name_pattern ({exc})") from None
            yield _Rule(
                id=str(entry.get("id", i)),
                if_class=entry.get("if_class"),
                if_ingredients=frozenset(
                    normalize(x) for x in _str_list(entry.get("if_ingredient"), where)
                ),
                pattern=compiled,
                add=frozenset(_str_list(entry.get("add"), where)),
                remove=frozenset(_str_list(entry.get("remove"), where)),
            )

    # -- matching ---------------------------------------------------------------------------
    def _scan(self, text: str) -> _Match:
        words = normalize(text).split()
        match = _Match()
        i, n = 0, len(words)
        while i < n:
            for size in range(min(self._max_words, n - i), 0, -1):
                phrase = self._phrases.get(" ".join(words[i : i + size]))
                if phrase is not None:
                    for ing in phrase.ingredients:
                        if ing not in match.ingredients:
                            match.ingredients.append(ing)
                        match.classes |= self._ingredient_classes[ing]
                    match.classes |= phrase.classes
                    i += size
                    break
            else:
                i += 1
        return match

    def _finish(self, match: _Match, norm_text: str, extra: Iterable[str] = ()) -> frozenset[str]:
        classes = _close([*match.classes, *extra], self._implies)
        found = set(match.ingredients)
        for rule in self._rules:
            if rule.if_class is not None and rule.if_class not in classes:
                continue
            if rule.if_ingredients and not (rule.if_ingredients & found):
                continue
            if rule.pattern is not None and not rule.pattern.search(norm_text):
                continue
            classes = _close(classes | rule.add, self._implies) - rule.remove
        return frozenset(classes)

    def _lookup(self, med: MedicationUse) -> tuple[frozenset[str], tuple[str, ...]]:
        codes = med.rxnorm_codes
        text = " ".join([med.name, *(c.display for c in med.codes if c.display)])
        free = med.dose_text if self._free_text_classes and med.dose_text else ""
        key = (text + "\x00" + free, codes)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        match = self._scan(text)
        classes = set(self._finish(match, normalize(text)))
        ingredients = list(match.ingredients)
        for code in codes:
            classes |= self._code_classes.get(code, frozenset())
            for ing in self._code_ingredients.get(code, ()):
                if ing not in ingredients:
                    ingredients.append(ing)
        if free:
            self._add_free_text(free, classes, ingredients)
        result = (frozenset(classes), tuple(ingredients))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = result
        return result

    def _add_free_text(self, free: str, classes: set[str], ingredients: list[str]) -> None:
        """Add ingredients named in the dose text whose classes are free-text classes."""
        match = self._scan(free)
        for ing in match.ingredients:
            ing_classes = _close(self._ingredient_classes[ing], self._implies)
            if ing_classes & self._free_text_classes:
                classes |= ing_classes
                if ing not in ingredients:
                    ingredients.append(ing)

    # -- public API -------------------------------------------------------------------------
    def classify(self, med: MedicationUse) -> frozenset[str]:
        """Classes of the medication, e.g. ``{"opioid", "cns_depressant"}`` for Percocet."""
        return self._lookup(med)[0]

    def ingredients(self, med: MedicationUse) -> tuple[str, ...]:
        """Ingredients recognised in the medication, in order of appearance (lower case)."""
        return self._lookup(med)[1]

    def is_known_code(self, code: str) -> bool:
        return code in self._code_classes

    def code_display(self, code: str) -> str | None:
        """The name of a known RxNorm code (an ingredient or a value-set product), or ``None``."""
        return self._code_display.get(code)

    def ingredient_classes(self, ingredient: str) -> frozenset[str]:
        """Classes of one ingredient by name (``"tramadol"`` -> tramadol, opioid, ...)."""
        match = self._scan(ingredient)
        return self._finish(match, normalize(ingredient))


_ICD_STAGE = re.compile(r"^N18\.?([1-6])")
_TEXT_STAGE = re.compile(r"\bstage (1|2|3|3a|3b|4|5|i|ii|iii|iiia|iiib|iv|v)\b")
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iiia": 3, "iiib": 3, "iv": 4, "v": 5, "3a": 3, "3b": 3}
_END_STAGE = re.compile(r"\b(end stage renal|end stage kidney|esrd|eskd)\b")


def _system_kind(system: str | None, code: str) -> str | None:
    s = (system or "").lower()
    if "snomed" in s or s.endswith("/sct") or s == "sct":
        return "snomed"
    if "icd" in s and "10" in s:
        return "icd10"
    if not s:
        if code.isdigit():
            return "snomed"
        if re.match(r"^[A-Z]\d", code.upper()):
            return "icd10"
    return None


def _phrase_regex(phrases: Iterable[str]) -> re.Pattern[str] | None:
    parts = []
    for phrase in phrases:
        star = phrase.endswith("*")
        body = re.escape(normalize(phrase.rstrip("*")))
        parts.append(body + (r"\w*" if star else ""))
    if not parts:
        return None
    parts.sort(key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(parts) + r")\b")


@dataclass(frozen=True)
class _ConditionClass:
    name: str
    keywords: re.Pattern[str] | None
    exclude: re.Pattern[str] | None


class ConditionVocabulary:
    """Classifies :class:`Condition` records by SNOMED CT / ICD-10 code or keywords."""

    def __init__(self, conditions: Mapping[str, Any], value_sets: Mapping[str, Any]) -> None:
        conditions = _mapping(conditions, "conditions.yaml")
        classes = _mapping(conditions.get("classes"), "conditions.yaml classes")
        if not classes:
            raise EvidenceError("conditions.yaml: no classes")
        self._global_exclude = _phrase_regex(
            _str_list(conditions.get("exclude_everywhere"), "conditions.yaml exclude_everywhere")
        )
        self._snomed: dict[str, set[str]] = {}
        self._icd10: list[tuple[str, str]] = []
        self._icd10_exact: dict[str, set[str]] = {}
        self._stage_codes: dict[str, int] = {}
        self._implies: dict[str, frozenset[str]] = {}
        self._classes: list[_ConditionClass] = []
        for name, entry in classes.items():
            where = f"conditions.yaml classes.{name}"
            entry = _mapping(entry, where)
            unknown = set(entry) - {
                "snomed", "icd10", "keywords", "exclude", "implies", "value_sets", "stage_codes",
            }  # fmt: skip
            if unknown:
                raise EvidenceError(f"{where}: unknown key {sorted(unknown)[0]!r}")
            for code in _str_list(entry.get("snomed"), where):
                self._snomed.setdefault(code, set()).add(name)
            for prefix in _str_list(entry.get("icd10"), where):
                self._icd10.append((prefix.upper().replace(".", ""), name))
            for key in _str_list(entry.get("value_sets"), where):
                vs = _mapping(value_sets.get(key), f"{where} value set {key!r}")
                if not vs:
                    raise EvidenceError(f"{where}: unknown value set {key!r}")
                concepts = _mapping(vs.get("concepts"), key)
                for code in _mapping(concepts.get("snomed"), key):
                    self._snomed.setdefault(code, set()).add(name)
                for code in _mapping(concepts.get("icd10cm"), key):
                    self._icd10_exact.setdefault(code.upper().replace(".", ""), set()).add(name)
            for code, stage in _mapping(entry.get("stage_codes"), where).items():
                if not isinstance(stage, int) or not 1 <= stage <= 5:
                    raise EvidenceError(f"{where}: stage of {code} must be 1-5")
                self._stage_codes[str(code)] = stage
            self._implies[name] = frozenset(_str_list(entry.get("implies"), where))
            self._classes.append(
                _ConditionClass(
                    name=name,
                    keywords=_phrase_regex(_str_list(entry.get("keywords"), where)),
                    exclude=_phrase_regex(_str_list(entry.get("exclude"), where)),
                )
            )
        self._cache: dict[tuple[str, tuple[tuple[str | None, str], ...]], frozenset[str]] = {}

    def _by_code(self, system: str | None, code: str) -> set[str]:
        kind = _system_kind(system, code)
        if kind == "snomed":
            return set(self._snomed.get(code, ()))
        if kind == "icd10":
            flat = code.upper().replace(".", "")
            out = set(self._icd10_exact.get(flat, ()))
            out.update(name for prefix, name in self._icd10 if flat.startswith(prefix))
            return out
        return set()

    def _text(self, cond: Condition) -> str:
        return normalize(" ".join([cond.display, *(c.display for c in cond.codes if c.display)]))

    def classify(self, cond: Condition) -> frozenset[str]:
        """Classes of the condition; CKD also gets ``ckd_stage_N`` when the stage is known."""
        key = (cond.display, tuple((c.system, c.code) for c in cond.codes))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        found: set[str] = set()
        for coding in cond.codes:
            found |= self._by_code(coding.system, coding.code)
        text = self._text(cond)
        if not (self._global_exclude and self._global_exclude.search(text)):
            for cls in self._classes:
                if cls.keywords is None:
                    continue
                probe = cls.exclude.sub(" ", text) if cls.exclude else text
                if cls.keywords.search(probe):
                    found.add(cls.name)
        result = _close(found, self._implies)
        if "ckd" in result:
            stage = self.ckd_stage(cond)
            if stage is not None:
                result.add(f"ckd_stage_{stage}")
        frozen = frozenset(result)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = frozen
        return frozen

    def ckd_stage(self, cond: Condition) -> int | None:
        """CKD stage 1-5 from a stage code, an ICD-10 N18.x code or "stage 3a" text."""
        for coding in cond.codes:
            if coding.code in self._stage_codes:
                return self._stage_codes[coding.code]
            if _system_kind(coding.system, coding.code) == "icd10":
                m = _ICD_STAGE.match(coding.code.upper())
                if m:
                    return min(int(m.group(1)), 5)
        text = self._text(cond)
        if _END_STAGE.search(text):
            return 5
        m = _TEXT_STAGE.search(text)
        if m:
            value = m.group(1)
            return _ROMAN[value] if value in _ROMAN else int(value)
        return None


@dataclass(frozen=True)
class Vocabulary:
    """Both classifiers, built once from the shipped data and handed to the core."""

    medications: MedicationVocabulary
    conditions: ConditionVocabulary

    @classmethod
    def from_data(
        cls,
        drugs: Mapping[str, Any],
        conditions: Mapping[str, Any],
        value_sets: Mapping[str, Any],
    ) -> Vocabulary:
        return cls(
            medications=MedicationVocabulary(drugs, value_sets),
            conditions=ConditionVocabulary(conditions, value_sets),
        )

    def classify_medication(self, med: MedicationUse) -> frozenset[str]:
        return self.medications.classify(med)

    def classify_condition(self, cond: Condition) -> frozenset[str]:
        return self.conditions.classify(cond)
