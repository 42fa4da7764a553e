"""The accounts repository: every statement on the ``users`` table (issue #17: SQL in store/).

The web layer (:mod:`ldncare.web.auth`, :mod:`ldncare.web.accounts`) checks passwords and hashes
them; this module reads and writes rows, and every change is audited in the transaction that
makes it.

The last active administrator can be neither disabled nor moved to a clinic (see
:func:`set_active` and :func:`set_role`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ldncare.errors import InvalidInput, NotFound
from ldncare.store.models import PatientRow, RecoveryCodeRow, UserRow
from ldncare.store.repository import patient_candidates, record_audit, resolve_patient

#: Roles an existing account can be moved between. A patient account is tied to one patient
#: record at creation; turning it into staff (or staff into a patient) is a new account.
STAFF_ROLES = ("clinician", "admin")


def normal_name(username: str) -> str:
    """Usernames are stored lower case and trimmed."""
    return username.strip().lower()


def insert_user(
    engine: Engine,
    *,
    username: str,
    password_hash: str,
    role: str,
    clinic_id: str | None,
    patient: int | str | None,
    actor: str,
) -> UserRow:
    """Store a new account (already validated); a patient account is tied to its record."""
    try:
        with Session(engine, expire_on_commit=False) as s, s.begin():
            if s.scalars(select(UserRow).where(UserRow.username == username)).first():
                raise InvalidInput(f"user {username!r} already exists", field="username")
            patient_id: int | None = None
            if patient is not None:
                row = resolve_patient(s, patient)
                patient_id = row.id
                clinic_id = clinic_id or row.clinic_id
            user = UserRow(
                username=username,
                password_hash=password_hash,
                role=role,
                clinic_id=clinic_id,
                patient_id=patient_id,
                active=True,
                created_at=datetime.now(UTC),
                created_by=actor,
            )
            s.add(user)
            s.flush()
            record_audit(s, actor, "create", "user", user.id, {"username": username, "role": role})
            return user
    except IntegrityError:
        raise InvalidInput(f"user {username!r} already exists", field="username") from None


def user_by_name(engine: Engine, username: str) -> UserRow | None:
    with Session(engine, expire_on_commit=False) as s:
        return s.scalars(select(UserRow).where(UserRow.username == normal_name(username))).first()


def user_by_id(engine: Engine, user_id: int) -> UserRow | None:
    with Session(engine, expire_on_commit=False) as s:
        return s.get(UserRow, user_id)


def count_users(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(UserRow)) or 0)


def list_users(engine: Engine) -> list[UserRow]:
    with Session(engine, expire_on_commit=False) as s:
        return list(s.scalars(select(UserRow).order_by(UserRow.username)).all())


def audit(
    engine: Engine, who: str, action: str, entity: str, entity_id: int | None, detail: Any
) -> None:
    """One audit row in a transaction of its own (a login, a refused login)."""
    with Session(engine) as s, s.begin():
        record_audit(s, who, action, entity, entity_id, detail)


def end_sessions(engine: Engine, user_id: int, *, actor: str) -> None:
    """End every session of the account, on every device: the next generation starts."""
    with Session(engine) as s, s.begin():
        s.execute(
            update(UserRow)
            .where(UserRow.id == user_id)
            .values(session_generation=UserRow.session_generation + 1)
        )
        record_audit(s, actor, "logout", "user", user_id, None)


def find(s: Session, username: str) -> UserRow:
    """The account ``username`` in session ``s``, or NotFound."""
    name = normal_name(username)
    row = s.scalars(select(UserRow).where(UserRow.username == name)).first()
    if row is None:
        raise NotFound(f"no user {name!r}")
    return row


def existing_name(engine: Engine, username: str) -> str:
    """The stored name of ``username``, or NotFound."""
    with Session(engine) as s:
        return find(s, username).username


def bump_generation(row: UserRow) -> None:
    """End every session of ``row`` (in the caller's transaction)."""
    row.session_generation = (row.session_generation or 0) + 1


def _keep_an_admin(s: Session, row: UserRow, change: str) -> None:
    """Refuse ``change`` when ``row`` is the only active administrator left."""
    if row.role != "admin" or not row.active:
        return
    # The active admins' rows are locked (PostgreSQL; SQLite has one writer at a time), so two
    # admins demoting each other at once cannot both pass this check.
    admins = s.scalars(
        select(UserRow.id)
        .where(UserRow.role == "admin", UserRow.active.is_(True))
        .with_for_update()
    ).all()
    if not [i for i in admins if i != row.id]:
        raise InvalidInput(
            f"{row.username!r} is the last active administrator and cannot be {change}; "
            "make another account an administrator (user set-role NAME --role admin) first",
            field="username",
        )


def set_active(engine: Engine, username: str, active: bool, *, actor: str) -> bool:
    """Disable (ending every session) or enable an account. False if it already was so."""
    with Session(engine) as s, s.begin():
        row = find(s, username)
        if bool(row.active) == active:
            return False
        if not active:
            _keep_an_admin(s, row, "disabled")
        row.active = active
        # Both ways: enabling also moves the generation on, so an account disabled by other
        # means (an older version, raw SQL) does not get its old cookies back either.
        bump_generation(row)
        action = "enable" if active else "disable"
        record_audit(s, actor, action, "user", row.id, {"username": row.username})
        return True


def set_password_hash(engine: Engine, username: str, password_hash: str, *, actor: str) -> None:
    """Store a new password hash and end the account's sessions."""
    with Session(engine) as s, s.begin():
        row = find(s, username)
        row.password_hash = password_hash
        bump_generation(row)
        record_audit(s, actor, "reset_password", "user", row.id, {"username": row.username})


def set_role(
    engine: Engine, username: str, role: str, *, clinic_id: str | None, actor: str
) -> None:
    """Move a staff account between clinician (of ``clinic_id``) and admin; sessions end."""
    with Session(engine) as s, s.begin():
        row = find(s, username)
        if row.role not in STAFF_ROLES:
            raise InvalidInput(
                f"{row.username!r} is a {row.role} account, tied to one patient record; its "
                "role cannot change",
                field="role",
            )
        if role != "admin":
            _keep_an_admin(s, row, "made a clinician")
        before = {"role": row.role, "clinic": row.clinic_id}
        row.role = role
        row.clinic_id = clinic_id if role == "clinician" else None
        bump_generation(row)
        record_audit(
            s,
            actor,
            "set_role",
            "user",
            row.id,
            {
                "username": row.username,
                "before": before,
                "after": {"role": role, "clinic": row.clinic_id},
            },
        )


def visible_patients(
    engine: Engine,
    ref: int | str,
    may_see: Callable[[PatientRow], bool],
    *,
    actor: str,
    role: str,
) -> list[PatientRow]:
    """The patients ``ref`` names that ``may_see`` allows; when there are none, each refused
    candidate is audited (``denied``) in the same transaction."""
    with Session(engine, expire_on_commit=False) as s, s.begin():
        candidates = patient_candidates(s, ref)
        # Only the records this user may see count: a reference that would be ambiguous only
        # through another clinic's patient must neither fail nor reveal that patient.
        visible = [row for row in candidates if may_see(row)]
        if not visible:  # refused, as if missing; the attempt is audited
            for row in candidates:
                record_audit(s, actor, "denied", "patient", row.id, {"role": role})
    return visible


# --- second factor (TOTP) ------------------------------------------------------------------------


def start_totp(engine: Engine, user_id: int, secret: str, *, actor: str) -> None:
    """Store a new, not yet confirmed secret (enrolment); an account already using a second
    factor keeps it (an administrator resets it first: ``ldncare user reset-totp``)."""
    with Session(engine) as s, s.begin():
        row = s.get(UserRow, user_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no user #{user_id}")
        if row.totp_enabled:
            raise InvalidInput(
                "this account already has a second factor; an administrator can reset it "
                "(ldncare user reset-totp)",
                field="totp",
            )
        row.totp_secret = secret
        record_audit(s, actor, "totp_enrol", "user", row.id, {"username": row.username})


def confirm_totp(
    engine: Engine, user_id: int, step: int, code_hashes: list[str], *, actor: str
) -> bool:
    """Turn the second factor on once its first code (time step ``step``) matched, with fresh
    recovery codes. False when the enrolment was already confirmed or the step replayed."""
    with Session(engine) as s, s.begin():
        row = s.get(UserRow, user_id, with_for_update=True)
        if row is None or row.totp_enabled or not row.totp_secret:
            return False
        if row.totp_last_step is not None and step <= row.totp_last_step:
            return False
        row.totp_enabled = True
        row.totp_last_step = step
        s.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.user_id == user_id))
        s.add_all(RecoveryCodeRow(user_id=user_id, code_hash=h) for h in code_hashes)
        record_audit(s, actor, "totp_confirm", "user", row.id, {"username": row.username})
        return True


def accept_totp_step(engine: Engine, user_id: int, step: int) -> bool:
    """Record ``step`` as used, atomically; False if it (or a later one) was used already: a
    code is never accepted twice, even by two workers at once."""
    with Session(engine) as s, s.begin():
        done = s.execute(
            update(UserRow)
            .where(
                UserRow.id == user_id,
                UserRow.totp_enabled.is_(True),
                or_(UserRow.totp_last_step.is_(None), UserRow.totp_last_step < step),
            )
            .values(totp_last_step=step)
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]


def use_recovery_code(engine: Engine, user_id: int, code_hash: str, *, actor: str) -> int | None:
    """Spend one recovery code, atomically: the number left, or None if it is not an unused
    code of this account."""
    with Session(engine) as s, s.begin():
        done = s.execute(
            update(RecoveryCodeRow)
            .where(
                RecoveryCodeRow.user_id == user_id,
                RecoveryCodeRow.code_hash == code_hash,
                RecoveryCodeRow.used_at.is_(None),
            )
            .values(used_at=datetime.now(UTC))
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            return None
        left = _codes_left(s, user_id)
        record_audit(s, actor, "recovery_code_used", "user", user_id, {"left": left})
        return left


def _codes_left(s: Session, user_id: int) -> int:
    return int(
        s.scalar(
            select(func.count())
            .select_from(RecoveryCodeRow)
            .where(RecoveryCodeRow.user_id == user_id, RecoveryCodeRow.used_at.is_(None))
        )
        or 0
    )


def recovery_codes_left(engine: Engine, user_id: int) -> int:
    with Session(engine) as s:
        return _codes_left(s, user_id)


def reset_totp(engine: Engine, username: str, *, actor: str) -> bool:
    """Remove the account's second factor and recovery codes and end its sessions (the user
    enrols again at the next login if it is required). False if it had none."""
    with Session(engine) as s, s.begin():
        row = find(s, username)
        had = bool(row.totp_enabled or row.totp_secret)
        row.totp_secret = None
        row.totp_enabled = False
        row.totp_last_step = None
        s.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.user_id == row.id))
        bump_generation(row)
        record_audit(s, actor, "reset_totp", "user", row.id, {"username": row.username})
        return had


# --- single sign-on ------------------------------------------------------------------------------

#: Stored as the password hash of an account made by single sign-on: not an argon2 hash, so no
#: password ever matches it (argon2 refuses it as invalid).
NO_LOCAL_PASSWORD = "!sso-only"


def end_sso_sessions(engine: Engine, *, issuer: str, subject: str, actor: str) -> bool:
    """End every session of the account of (``issuer``, ``subject``), if there is one (a
    sign-in found it no longer in an allowed group). Audited; False if no such account."""
    with Session(engine) as s, s.begin():
        row = s.scalars(
            select(UserRow).where(UserRow.oidc_issuer == issuer, UserRow.oidc_subject == subject)
        ).first()
        if row is None:
            return False
        bump_generation(row)
        record_audit(s, actor, "logout", "user", row.id, {"why": "no allowed group at sign-in"})
        return True


#: An SSO username: a local-style name, or an e-mail address (Entra ID's preferred_username).
SSO_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.+\-]*(@[a-z0-9][a-z0-9.\-]*[a-z0-9])?$")


def sso_user(
    engine: Engine,
    *,
    issuer: str,
    subject: str,
    username: str,
    role: str,
    clinic_id: str | None,
) -> UserRow:
    """The account of (``issuer``, ``subject``), its role and clinic brought up to the groups
    of this sign-in; made under ``username`` at the first sign-in. A username already taken by
    another account is refused (no silent takeover of a local account)."""
    actor = f"sso:{issuer}"
    with Session(engine, expire_on_commit=False) as s, s.begin():
        row = s.scalars(
            select(UserRow).where(UserRow.oidc_issuer == issuer, UserRow.oidc_subject == subject)
        ).first()
        if row is not None:
            if (row.role, row.clinic_id) != (role, clinic_id) and row.role in STAFF_ROLES:
                before = {"role": row.role, "clinic": row.clinic_id}
                row.role, row.clinic_id = role, clinic_id
                record_audit(
                    s,
                    actor,
                    "set_role",
                    "user",
                    row.id,
                    {
                        "username": row.username,
                        "before": before,
                        "after": {"role": role, "clinic": clinic_id},
                    },
                )
            return row
        name = normal_name(username)
        if not (3 <= len(name) <= 64 and SSO_USERNAME_RE.match(name)):
            raise InvalidInput(
                f"the sign-in provider's username {username[:64]!r} cannot be used here "
                "(3-64 lower-case letters, digits, '.', '_', '+' or '-', or an e-mail "
                "address); ask your administrator",
                field="username",
            )
        if s.scalars(select(UserRow.id).where(UserRow.username == name)).first() is not None:
            raise InvalidInput(
                f"an account named {name!r} already exists in ldncare and is not linked to "
                "this sign-in; ask your administrator",
                field="username",
            )
        row = UserRow(
            username=name,
            password_hash=NO_LOCAL_PASSWORD,
            role=role,
            clinic_id=clinic_id,
            patient_id=None,
            active=True,
            created_at=datetime.now(UTC),
            created_by=actor,
            oidc_issuer=issuer,
            oidc_subject=subject,
        )
        s.add(row)
        s.flush()
        record_audit(
            s, actor, "create", "user", row.id, {"username": name, "role": role, "sso": issuer}
        )
        return row
