"""Shared helpers for the ask tests: the evaluation set and answers over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

QUESTIONS = Path(__file__).with_name("questions.yaml")


def eval_questions() -> list[dict[str, Any]]:
    return list(yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))["questions"])


@pytest.fixture(scope="session")
def questions() -> list[dict[str, Any]]:
    return eval_questions()
