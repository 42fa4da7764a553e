"""Accounts: the ``users`` table now lives in :mod:`ldncare.store.models` (issue #17: every
table and statement in ``store/``); these names are kept for the modules that import them here."""

from __future__ import annotations

from ldncare.store.models import ROLES, UserRow

__all__ = ["ROLES", "UserRow"]
