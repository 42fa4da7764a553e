"""Account lifecycle: list, disable, enable, reset a password, change a role. Every change is
audited in the transaction that makes it.

Disabling an account, resetting its password and changing its role end every session of the
account (the session generation moves on, see :func:`ldncare.web.auth.end_sessions`), so
enabling it again later does not revive a cookie from before: the user logs in afresh.

The last active administrator can be neither disabled nor moved to a clinic: nobody could
then list, enable or fix accounts on the admin page (``ldncare user`` on the server would be
the only way back). Promote or enable another administrator first.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ldncare.errors import InvalidInput, NotFound
from ldncare.store.repository import record_audit
from ldncare.web.auth import hash_password
from ldncare.web.models import UserRow
from ldncare.web.passwords import check_password

#: Roles an existing account can be moved between. A patient account is tied to one patient
#: record at creation; turning it into staff (or staff into a patient) is a new account.
STAFF_ROLES = ("clinician", "admin")


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    clinic_id: str | None
    patient_id: int | None
    active: bool


def list_accounts(engine: Engine) -> list[Account]:
    with Session(engine) as s:
        rows = s.scalars(select(UserRow).order_by(UserRow.username)).all()
        return [
            Account(r.username, r.role, r.clinic_id, r.patient_id, bool(r.active)) for r in rows
        ]


def _find(s: Session, username: str) -> UserRow:
    name = username.strip().lower()
    row = s.scalars(select(UserRow).where(UserRow.username == name)).first()
    if row is None:
        raise NotFound(f"no user {name!r}")
    return row


def _end_sessions(row: UserRow) -> None:
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
        row = _find(s, username)
        if bool(row.active) == active:
            return False
        if not active:
            _keep_an_admin(s, row, "disabled")
        row.active = active
        # Both ways: enabling also moves the generation on, so an account disabled by other
        # means (an older version, raw SQL) does not get its old cookies back either.
        _end_sessions(row)
        action = "enable" if active else "disable"
        record_audit(s, actor, action, "user", row.id, {"username": row.username})
        return True


def reset_password(engine: Engine, username: str, password: str, *, actor: str) -> None:
    """Give the account a new password and end its sessions (a stolen cookie stops too)."""
    with Session(engine) as s:
        name = _find(s, username).username
    check_password(password, username=name)
    new_hash = hash_password(password)
    with Session(engine) as s, s.begin():
        row = _find(s, username)
        row.password_hash = new_hash
        _end_sessions(row)
        record_audit(s, actor, "reset_password", "user", row.id, {"username": row.username})


def set_role(
    engine: Engine, username: str, role: str, *, clinic_id: str | None, actor: str
) -> None:
    """Move a staff account between clinician (of ``clinic_id``) and admin; sessions end."""
    if role not in STAFF_ROLES:
        raise InvalidInput(
            f"role {role!r} cannot be given to an existing account; "
            f"accepted: {', '.join(STAFF_ROLES)} (a patient account is made with 'user add')",
            field="role",
        )
    if role == "clinician" and not clinic_id:
        raise InvalidInput("a clinician account needs a clinic (--clinic)", field="clinic")
    with Session(engine) as s, s.begin():
        row = _find(s, username)
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
        _end_sessions(row)
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
