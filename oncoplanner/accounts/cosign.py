"""A colleague's co-signature: the second person of a two-person check types their own password.

Chemotherapy is given only after an independent double check by a second competent person
(ASCO/ONS 2024). Picking that person from a list proves nothing: the giver could name anyone.
So the checker confirms on the giver's screen with their own password, as dual sign-off works
in hospital medication systems.

The same password signature signs other acts (a regimen approval: password_signature), each
door counted on its own.

Guessing: wrong co-sign passwords are counted per checker, apart from the login lock, and after
COSIGN_FAILURE_LIMIT within COSIGN_LOCK_SECONDS co-signing as that checker pauses. Counting them
as failed logins (as first built) let a few typos at a busy chair lock a colleague out of the
whole application (a reviewer's find). Each failure is an access-log row naming the checker and
who typed.

A co-sign, once accepted, is carried by a short-lived signed token (cosign_token), so that a
form refused for another reason (a label to re-read, a result to confirm) does not send the
checker back to type their password again.
"""

from __future__ import annotations

from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError

from audit.models import AccessLog
from audit.services import access_log_record
from oncoplanner.accounts.models import User

COSIGN_FAILURE_LIMIT = 5
COSIGN_LOCK_SECONDS = 15 * 60
# Long enough to re-read a label or answer one question; short enough that the checker is
# still at the chair.
COSIGN_TOKEN_SECONDS = 5 * 60
_SALT = "oncoplanner.cosign"


def _failures_key(signer: User, door: str) -> str:
    # Per door: typos signing a regimen approval must not pause co-signing at the chair.
    return f"signature-failures:{door.replace(' ', '-')}:{signer.pk}"  # no spaces in keys


def password_signature(
    *, signer: User, password: str, field: str, door: str, paused: str, refused: str
) -> None:
    """Raise a ValidationError on `field` unless `password` is `signer`'s own password.

    COSIGN_FAILURE_LIMIT wrong ones within COSIGN_LOCK_SECONDS pause this door for `signer`
    (`paused`); each is logged with the door, who typed and for whom. The last two attempts
    before the pause say how many are left."""
    key = _failures_key(signer, door)
    failures = cache.get(key, 0)
    if failures >= COSIGN_FAILURE_LIMIT:
        raise ValidationError({field: paused})
    if password and signer.is_active and signer.check_password(password):
        cache.delete(key)
        return
    warning = ""
    if password:
        failures += 1
        cache.set(key, failures, COSIGN_LOCK_SECONDS)
        # Who typed is the row's user (the request's); the account typed for is the object.
        access_log_record(
            action=AccessLog.Action.LOGIN_FAILED,
            outcome=AccessLog.Outcome.DENIED,
            object_type="User",
            object_id=signer.pk,
            detail={"door": door, "checker": signer.get_username()},
        )
        left = COSIGN_FAILURE_LIMIT - failures
        if 0 < left <= 2:
            warning = f" {left} more wrong password{'s' if left > 1 else ''} will pause this for 15 minutes."
    raise ValidationError({field: refused + warning})


def colleague_cosign(*, checker: User, password: str, field: str) -> None:
    """Raise a ValidationError on `field` unless `password` is the checker's own password."""
    password_signature(
        signer=checker,
        password=password,
        field=field,
        door="co-sign",
        paused=f"Co-signing as {checker} is paused for 15 minutes after "
        f"{COSIGN_FAILURE_LIMIT} wrong passwords. {checker} can still sign in; ask another "
        "colleague to check, or wait.",
        refused=f"{checker} must confirm the check with their own password; the password "
        "given was not accepted.",
    )


def cosign_token(*, checker: User, giver: User, scope: str) -> str:
    """A token saying `checker` co-signed for `giver` on `scope` (e.g. "cycle:12")."""
    return signing.dumps({"checker": checker.pk, "giver": giver.pk, "scope": scope}, salt=_SALT)


def cosign_token_valid(token: str, *, checker: User, giver: User, scope: str) -> bool:
    if not token:
        return False
    try:
        data = signing.loads(token, salt=_SALT, max_age=COSIGN_TOKEN_SECONDS)
    except signing.BadSignature:
        return False
    return data == {"checker": checker.pk, "giver": giver.pk, "scope": scope}
