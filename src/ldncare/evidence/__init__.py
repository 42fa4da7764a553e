"""Clinical knowledge shipped as data, and the loader that validates it."""

from ldncare.evidence.loader import load_evidence
from ldncare.evidence.models import Evidence, Rule, Source, Statement

__all__ = ["Evidence", "Rule", "Source", "Statement", "load_evidence"]
