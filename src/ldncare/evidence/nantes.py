"""The Nantes criteria for pudendal neuralgia by pudendal nerve entrapment, as data.

The checklist items and what each result means live in ``evidence/data/nantes.yaml`` (cited to
labat2008); :func:`ldncare.core.nantes.assess_nantes` scores a clinician's answers against it.
"""

from __future__ import annotations

from importlib.abc import Traversable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ldncare.errors import EvidenceError

NantesKind = Literal["essential", "complementary", "exclusion", "associated"]
NantesStatus = Literal["criteria_met", "criteria_not_met", "exclusion_present", "incomplete"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NantesItem(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    kind: NantesKind
    text: str


class NantesCriteria(_Strict):
    items: tuple[NantesItem, ...] = Field(min_length=1)
    #: What each result means, in our own words.
    meaning: dict[NantesStatus, str]
    citations: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> NantesCriteria:
        ids = [i.id for i in self.items]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate Nantes item id")
        missing = {"criteria_met", "criteria_not_met", "exclusion_present", "incomplete"} - set(
            self.meaning
        )
        if missing:
            raise ValueError(f"meaning lacks {', '.join(sorted(missing))}")
        if sum(1 for i in self.items if i.kind == "essential") != 5:
            raise ValueError("the Nantes criteria have exactly five essential items")
        return self

    def of_kind(self, kind: NantesKind) -> tuple[NantesItem, ...]:
        return tuple(i for i in self.items if i.kind == kind)


def load_nantes(root: Traversable | Path) -> NantesCriteria | None:
    node = root / "nantes.yaml"
    if not node.is_file():
        return None
    try:
        raw = yaml.safe_load(node.read_text(encoding="utf-8"))
        return NantesCriteria.model_validate(raw)
    except yaml.YAMLError as exc:
        raise EvidenceError(f"nantes.yaml: not valid YAML ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise EvidenceError(f"nantes.yaml: {where}: {msg}") from None
