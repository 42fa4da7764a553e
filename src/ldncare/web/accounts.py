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

from sqlalchemy import Engine

from ldncare.errors import InvalidInput
from ldncare.store import accounts as store
from ldncare.store.accounts import STAFF_ROLES
from ldncare.store.models import UserRow
from ldncare.web.auth import hash_password
from ldncare.web.passwords import check_password

__all__ = [
    "STAFF_ROLES",
    "Account",
    "list_accounts",
    "recovery_codes_left",
    "reset_password",
    "set_active",
    "set_role",
    "user_by_id",
]

# Reads the account pages make after their own access check; named here so that the pages
# reach the store through this service, like the other routes through web/service.py.
user_by_id = store.user_by_id
recovery_codes_left = store.recovery_codes_left


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    clinic_id: str | None
    patient_id: int | None
    active: bool
    #: How the account signs in: "password", "password + code" (TOTP on) or "hospital" (SSO).
    sign_in: str = "password"


def _sign_in(row: UserRow) -> str:
    if row.oidc_subject:
        return "hospital"
    return "password + code" if row.totp_enabled else "password"


def list_accounts(engine: Engine) -> list[Account]:
    return [
        Account(r.username, r.role, r.clinic_id, r.patient_id, bool(r.active), _sign_in(r))
        for r in store.list_users(engine)
    ]


def set_active(engine: Engine, username: str, active: bool, *, actor: str) -> bool:
    """Disable (ending every session) or enable an account. False if it already was so."""
    return store.set_active(engine, username, active, actor=actor)


def reset_password(engine: Engine, username: str, password: str, *, actor: str) -> None:
    """Give the account a new password and end its sessions (a stolen cookie stops too)."""
    name = store.existing_name(engine, username)
    check_password(password, username=name)
    store.set_password_hash(engine, username, hash_password(password), actor=actor)


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
    store.set_role(engine, username, role, clinic_id=clinic_id, actor=actor)
