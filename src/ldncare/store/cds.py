"""CDS Hooks state shared by every worker and machine on one database (issue #18).

- ``cds_seen_tokens``: the ``jti`` of each client JWT accepted, keyed by a hash of issuer and
  ``jti``, until the token expires. The insert claims the key: of N workers (or N machines on
  one PostgreSQL) that receive the same token, exactly one inserts the row and the others see
  the conflict, so a replayed token is refused wherever it lands. Expired rows are purged.
- ``cds_cards``: each card the service returned (uuid, service, topic, indicator, hook
  instance, time): what "shown" counts, and what a feedback item's card uuid is joined to.
- ``cds_feedback``: each feedback item (card, service, outcome, override reason code and
  comment, the client's outcome time, when it was received).

:func:`card_outcomes` is how each card fares: per service and card topic, shown, accepted,
overridden and the override reasons (by code), with the latest comments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    DateTime,
    Engine,
    Float,
    Integer,
    String,
    Text,
    delete,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from ldncare.store.models import Base, JsonType

#: The topic under which feedback on a card this database never recorded is counted (a card
#: shown before the table existed, or by another ldncare).
UNKNOWN_TOPIC = "unknown card"
#: Comments kept per card topic on the outcomes page (the newest).
COMMENTS_SHOWN = 5


class SeenTokenRow(Base):
    __tablename__ = "cds_seen_tokens"

    #: sha256 of ``iss|jti``, hex: fixed width whatever the client puts in its claims.
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Unix time after which the token is refused anyway (exp + leeway): the row may go.
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class ShownCardRow(Base):
    __tablename__ = "cds_cards"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    service: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(64))
    indicator: Mapped[str] = mapped_column(String(16))
    hook_instance: Mapped[str] = mapped_column(String(128))
    shown_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class FeedbackRow(Base):
    __tablename__ = "cds_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    card: Mapped[str] = mapped_column(String(36), index=True)
    service: Mapped[str] = mapped_column(String(64))
    #: accepted | overridden
    outcome: Mapped[str] = mapped_column(String(16))
    reason_system: Mapped[str | None] = mapped_column(String(256))
    reason_code: Mapped[str | None] = mapped_column(String(128))
    comment: Mapped[str | None] = mapped_column(Text)
    accepted_suggestions: Mapped[list[str] | None] = mapped_column(JsonType)
    #: ``outcomeTimestamp`` as the client sent it (checked ISO 8601 text).
    outcome_time: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


def _token_key(issuer: str, jti: str) -> str:
    return hashlib.sha256(f"{issuer}|{jti}".encode()).hexdigest()


def claim_token(engine: Engine, issuer: str, jti: str, expires_at: float, now: float) -> bool:
    """Record the token ``issuer``/``jti`` as used; False when it already was (a replay).

    One statement, atomic on PostgreSQL and SQLite alike: insert the key, or -- when a row of
    an expired token holds it -- take that row over; a row of a live token is left alone and
    nothing is written, which is the refusal."""
    key = _token_key(issuer, jti)
    table = SeenTokenRow.__table__
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(token=key, expires_at=expires_at)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.token],
        set_={"expires_at": stmt.excluded.expires_at},
        where=table.c.expires_at < now,
    ).returning(table.c.token)
    with engine.begin() as conn:
        # RETURNING, not rowcount: the row comes back only when it was written.
        return conn.execute(stmt).first() is not None


def purge_tokens(engine: Engine, now: float) -> int:
    """Drop the rows of tokens expired by ``now``; how many went."""
    with engine.begin() as conn:
        result = conn.execute(delete(SeenTokenRow).where(SeenTokenRow.expires_at < now))
        return int(result.rowcount or 0)


@dataclass(frozen=True)
class ShownCard:
    uuid: str
    service: str
    topic: str
    indicator: str
    hook_instance: str
    shown_at: datetime


def record_cards(engine: Engine, cards: Sequence[ShownCard]) -> None:
    """Insert the cards shown (one ``executemany``); a uuid already there is skipped."""
    if not cards:
        return
    table = ShownCardRow.__table__
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).on_conflict_do_nothing(index_elements=[table.c.uuid])
    with engine.begin() as conn:
        conn.execute(
            stmt,
            [
                {
                    "uuid": c.uuid[:36],
                    "service": c.service[:64],
                    "topic": c.topic[:64],
                    "indicator": c.indicator[:16],
                    "hook_instance": c.hook_instance[:128],
                    "shown_at": c.shown_at,
                }
                for c in cards
            ],
        )


def record_feedback(
    engine: Engine, items: Iterable[Mapping[str, Any]], received_at: datetime | None = None
) -> int:
    """Store checked feedback items (``cdshooks.feedback.kept`` form); how many were stored."""
    when = received_at or datetime.now(UTC)
    rows = []
    for item in items:
        reason = item.get("overrideReason") or {}
        coding = reason.get("reason") if isinstance(reason, Mapping) else None
        coding = coding if isinstance(coding, Mapping) else {}
        accepted = item.get("acceptedSuggestions")
        rows.append(
            FeedbackRow(
                card=str(item["card"])[:36],
                service=str(item["service"])[:64],
                outcome=str(item["outcome"]),
                reason_system=_text(coding.get("system"), 256),
                reason_code=_text(coding.get("code"), 128),
                comment=_text(reason.get("userComment") if isinstance(reason, Mapping) else None),
                accepted_suggestions=[str(a.get("id")) for a in accepted] if accepted else None,
                outcome_time=str(item["outcomeTimestamp"])[:40],
                received_at=when,
            )
        )
    with Session(engine) as s, s.begin():
        s.add_all(rows)
    return len(rows)


def card_services(engine: Engine, uuids: Iterable[str]) -> dict[str, str]:
    """The service that showed each of ``uuids`` this database recorded (others are absent)."""
    wanted = sorted({u[:36] for u in uuids})
    if not wanted:
        return {}
    with Session(engine) as s:
        rows = s.execute(
            select(ShownCardRow.uuid, ShownCardRow.service).where(ShownCardRow.uuid.in_(wanted))
        )
        return {str(u): str(svc) for u, svc in rows}


def _text(value: Any, limit: int | None = None) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value[:limit] if limit else value


def prune_outcomes(engine: Engine, keep_days: int, now: datetime | None = None) -> None:
    """Drop cards shown and feedback received more than ``keep_days`` ago."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    with engine.begin() as conn:
        conn.execute(delete(ShownCardRow).where(ShownCardRow.shown_at < cutoff))
        conn.execute(delete(FeedbackRow).where(FeedbackRow.received_at < cutoff))


@dataclass
class CardFare:
    """How one kind of card (a service's card topic) fares."""

    service: str
    topic: str
    shown: int = 0
    accepted: int = 0
    overridden: int = 0
    #: Override reason code ("no reason" when none was coded) -> count, most frequent first.
    reasons: dict[str, int] = field(default_factory=dict)
    #: The newest override comments: (reason code or "no reason", comment).
    comments: list[tuple[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "topic": self.topic,
            "shown": self.shown,
            "accepted": self.accepted,
            "overridden": self.overridden,
            "override_reasons": [{"code": c, "count": n} for c, n in self.reasons.items()],
            "comments": [{"reason": r, "comment": c} for r, c in self.comments],
        }


def card_outcomes(engine: Engine) -> list[CardFare]:
    """Per service and card topic: cards shown, accepted, overridden, and why (grouped by
    reason code; each card counted once, by its latest feedback), with the newest comments;
    feedback on a card never recorded here is counted under :data:`UNKNOWN_TOPIC`. Three
    grouped queries, whatever the number of rows."""
    fares: dict[tuple[str, str], CardFare] = {}

    def fare(service: str, topic: str | None) -> CardFare:
        key = (service, topic or UNKNOWN_TOPIC)
        if key not in fares:
            fares[key] = CardFare(*key)
        return fares[key]

    topic = ShownCardRow.topic
    with Session(engine) as s:
        for service, t, n in s.execute(
            select(ShownCardRow.service, topic, func.count()).group_by(ShownCardRow.service, topic)
        ):
            fare(service, t).shown = int(n)
        # One outcome per card and service, the latest received: EHRs retry feedback, and a
        # clinician may change their mind (integrator review M1).
        latest = select(func.max(FeedbackRow.id)).group_by(FeedbackRow.card, FeedbackRow.service)
        joined = (
            select(
                FeedbackRow.service,
                topic,
                FeedbackRow.outcome,
                FeedbackRow.reason_code,
                func.count(),
            )
            .outerjoin(ShownCardRow, ShownCardRow.uuid == FeedbackRow.card)
            .where(FeedbackRow.id.in_(latest))
        )
        grouped = joined.group_by(
            FeedbackRow.service, topic, FeedbackRow.outcome, FeedbackRow.reason_code
        )
        for service, t, outcome, code, n in s.execute(grouped):
            f = fare(service, t)
            if outcome == "accepted":
                f.accepted += int(n)
            else:
                f.overridden += int(n)
                reason = code or "no reason"
                f.reasons[reason] = f.reasons.get(reason, 0) + int(n)
        commented = (
            select(FeedbackRow.service, topic, FeedbackRow.reason_code, FeedbackRow.comment)
            .outerjoin(ShownCardRow, ShownCardRow.uuid == FeedbackRow.card)
            .where(FeedbackRow.comment.is_not(None))
            .order_by(FeedbackRow.received_at.desc(), FeedbackRow.id.desc())
            .limit(COMMENTS_SHOWN * 20)
        )
        for service, t, code, comment in s.execute(commented):
            f = fare(service, t)
            if len(f.comments) < COMMENTS_SHOWN:
                f.comments.append((code or "no reason", comment or ""))
    for f in fares.values():
        f.reasons = dict(sorted(f.reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    return sorted(fares.values(), key=lambda f: (f.service, f.topic))
