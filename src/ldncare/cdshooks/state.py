"""CDS Hooks state kept in the database, so that every worker and machine shares it.

- **JWT replay**: each accepted token's ``iss``/``jti`` is claimed in ``cds_seen_tokens``
  (:func:`ldncare.store.cds.claim_token`); a token claimed by any worker before is refused by
  every other. Used whenever the service runs with a database (the web app, ``ldncare serve``,
  SQLite or PostgreSQL): ``--workers N`` share one SQLite file too. The stand-alone
  ``create_cds_app`` without an engine keeps the per-process cache of ``jwt_check``.
- **Cards shown**: buffered in memory and written in one ``executemany`` at most a second
  later (or at once when :data:`FLUSH_CARDS` are waiting), off the event loop: the EHR's call
  never waits for the database. A crash loses at most that second's "shown" counts, never a
  feedback item (those are written before the answer).
- **Feedback**: every item, written before ``{}`` is answered.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from ldncare.store import cds as store

log = logging.getLogger(__name__)

#: Seconds between purges of expired token rows (per process).
PURGE_EVERY = 60.0
#: Cards waiting that make the buffer write at once.
FLUSH_CARDS = 500
#: Seconds a shown card may wait in the buffer.
FLUSH_AFTER = 1.0
#: Seconds between prunes of cards and feedback older than the retention.
PRUNE_EVERY = 3600.0


class CdsState:
    def __init__(self, engine: Engine, *, keep_days: int = 400) -> None:
        self.engine = engine
        self.keep_days = keep_days
        self._next_purge = 0.0
        self._next_prune = 0.0
        self._pending: list[store.ShownCard] = []
        self._lock = threading.Lock()
        self._flush_scheduled = False

    # ------------------------------------------------------------------ JWT replay

    def claim_token(self, issuer: str, jti: str, expires_at: float) -> bool:
        """True the first time any worker sees ``issuer``/``jti`` (blocking: call in a thread)."""
        now = time.time()
        if now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY
            store.purge_tokens(self.engine, now)
        return store.claim_token(self.engine, issuer, jti, expires_at, now)

    # ------------------------------------------------------------------ cards shown

    def cards_shown(
        self, service: str, hook_instance: str, cards: Sequence[Mapping[str, Any]]
    ) -> None:
        """Note the cards of one answer; written by :meth:`flush` within :data:`FLUSH_AFTER`."""
        if not cards:
            return
        now = datetime.now(UTC)
        rows = []
        for card in cards:
            source = card.get("source")
            topic = source.get("topic") if isinstance(source, Mapping) else None
            code = topic.get("code") if isinstance(topic, Mapping) else None
            rows.append(
                store.ShownCard(
                    str(card.get("uuid")),
                    service,
                    str(code or store.UNKNOWN_TOPIC),
                    str(card.get("indicator")),
                    hook_instance,
                    now,
                )
            )
        with self._lock:
            self._pending.extend(rows)
            waiting = len(self._pending)
            schedule = not self._flush_scheduled
            self._flush_scheduled = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside a loop (tests, scripts): write now
            self.flush()
            return
        if waiting >= FLUSH_CARDS:
            loop.run_in_executor(None, self.flush)
        elif schedule:
            loop.call_later(FLUSH_AFTER, lambda: loop.run_in_executor(None, self.flush))

    def flush(self) -> None:
        """Write the cards waiting (blocking); prune old rows about once an hour."""
        with self._lock:
            rows, self._pending = self._pending, []
            self._flush_scheduled = False
        try:
            store.record_cards(self.engine, rows)
            now = time.time()
            if now >= self._next_prune:
                self._next_prune = now + PRUNE_EVERY
                store.prune_outcomes(self.engine, self.keep_days)
        except Exception:
            log.exception("could not record %d CDS cards shown", len(rows))

    # ------------------------------------------------------------------ feedback

    def record_feedback(self, items: Iterable[Mapping[str, Any]]) -> None:
        """Store checked feedback items (blocking: call in a thread)."""
        store.record_feedback(self.engine, items)

    def card_services(self, uuids: Iterable[str]) -> dict[str, str]:
        """The service that showed each recorded card of ``uuids`` (blocking), the cards still
        waiting in the buffer included."""
        self.flush()
        return store.card_services(self.engine, uuids)

    def outcomes(self) -> list[store.CardFare]:
        """How each card fares, this process's waiting cards included."""
        self.flush()
        return store.card_outcomes(self.engine)
