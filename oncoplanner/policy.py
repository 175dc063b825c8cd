"""The declarative access policy: who may reach which door, as data (SECURITY.md figures 1, 2).

Read by the permission-matrix, URL-walk and IDOR tests (oncoplanner/tests/); nothing in the app
imports it. The gate itself lives in patients/selectors.py; this table is the independent
statement of what that gate must answer, so a change in either one shows up as a failing cell.

The world the matrix is played in
---------------------------------
- ``P``: the target patient, on care team ``T``; has a portal account (persona patient_own).
- ``P_uninvited``: a second patient on ``T`` without a portal account (invitation target).
- ``Q``: another patient, on care team ``T2``; its portal account is persona patient_other.
- clinician_team is a member (not lead) of ``T``; clinician_outside a member of ``T2`` only;
  clinician_break_glass is on no team and holds an unexpired emergency grant on ``P`` and
  ``P_uninvited``; administrator and superuser (role administrator, ``is_staff``) are on no team.
  The administrator holds the model-wide ``view_*`` permission of every model (PHI included),
  which admin needs to open a page at all and which must not open any chart.

Outcomes
--------
- ``ok``: 200; ``done``: 302 to a page other than a login page (the action succeeded);
- ``login``: 302 to the sign-in page (allauth's, or admin's login which forwards to it);
- ``404``: the gate's answer for a record the user may not see, identical to a missing one;
- ``405``: the method is not accepted; ``400``: a malformed request.
"""

from __future__ import annotations

OK = "ok"
DONE = "done"
LOGIN = "login"
NOT_FOUND = "404"
NOT_ALLOWED = "405"
BAD_REQUEST = "400"
OUTCOMES = (OK, DONE, LOGIN, NOT_FOUND, NOT_ALLOWED, BAD_REQUEST)
# Outcomes that hand the resource over; every other outcome is a deny.
ALLOWING = frozenset({OK, DONE})

PERSONAS: dict[str, str] = {
    "anonymous": "not signed in",
    "patient_own": "portal user of P (the target record is their own)",
    "patient_other": "portal user of Q (the target record is someone else's)",
    "clinician_team": "clinician on P's care team",
    "clinician_outside": "clinician on another care team only",
    "clinician_break_glass": "clinician outside the team with an active emergency grant on P",
    "administrator": "role administrator, staff, not on P's care team",
    "superuser": "role administrator with is_superuser, not on P's care team",
}

_CLINICIANS = ("clinician_team", "clinician_outside", "clinician_break_glass")
_PATIENTS = ("patient_own", "patient_other")
_ADMINS = ("administrator", "superuser")
_SIGNED_IN = _PATIENTS + _CLINICIANS + _ADMINS


def _cells(default: str, **overrides: str) -> dict[str, str]:
    """One outcome per persona: `default`, with anonymous redirected to login unless given."""
    row = dict.fromkeys(PERSONAS, default)
    row["anonymous"] = LOGIN
    row.update(overrides)
    return row


def _only(allowed: tuple[str, ...], outcome: str = OK, deny: str = NOT_FOUND) -> dict[str, str]:
    return _cells(deny, **dict.fromkeys(allowed, outcome))


# Each resource: the URL name, its arguments (names of objects in the world, see above),
# the HTTP method, an optional query string / form body (values may name world objects as
# "{P.mrn}"), and the expected outcome for each persona.
RESOURCES: dict[str, dict[str, object]] = {
    "home GET": {"url": "home", "method": "GET", "expect": _cells(OK)},
    "patient_detail GET": {
        "url": "patients:patient_detail",
        "args": ("P",),
        "method": "GET",
        # Patients read their record in the portal, never on the clinicians' chart page.
        "expect": _only(("clinician_team", "clinician_break_glass")),
    },
    "patient_detail POST": {
        "url": "patients:patient_detail",
        "args": ("P",),
        "method": "POST",
        "data": {},
        # The dashboard is read-only; its forms post to their own URLs.
        "expect": _cells(NOT_ALLOWED),
    },
    "patient_list GET": {
        "url": "patients:patient_list",
        "method": "GET",
        # The clinicians' list; each sees only the patients the gate gives them.
        "expect": _only(_CLINICIANS),
    },
    "invitation_create GET": {
        "url": "patients:invitation_create",
        "args": ("P_uninvited",),
        "method": "GET",
        "expect": _cells(NOT_ALLOWED),
    },
    "invitation_create POST": {
        "url": "patients:invitation_create",
        "args": ("P_uninvited",),
        "method": "POST",
        "data": {"email": "invitee@example.org"},
        # Break-glass opens the chart, not the right to attach a portal account to it.
        "expect": _only(("clinician_team",), DONE),
    },
    "emergency_access_create GET": {
        "url": "patients:emergency_access_create",
        "method": "GET",
        "expect": _only(_CLINICIANS),
    },
    "emergency_access_create POST": {
        "url": "patients:emergency_access_create",
        "method": "POST",
        "data": {"mrn": "{P.mrn}", "reason": "Febrile neutropenia in the emergency department"},
        "expect": _only(_CLINICIANS, DONE),
    },
    "emergency_access_create POST without reason": {
        "url": "patients:emergency_access_create",
        "method": "POST",
        "data": {"mrn": "{P.mrn}", "reason": ""},
        # The form is shown again with the error: nothing is opened without a written reason.
        "expect": _only(_CLINICIANS, OK),
    },
    "care_team_manage GET": {
        "url": "patients:care_team_manage",
        "args": ("T",),
        "method": "GET",
        # Members without the manage_careteam permission (not leads) do not manage the team.
        "expect": _only(_ADMINS),
    },
    "care_team_manage POST add member": {
        "url": "patients:care_team_manage",
        "args": ("T",),
        "method": "POST",
        "data": {"user": "{clinician_outside.pk}"},
        "expect": _only(_ADMINS, DONE),
    },
    "invitation_accept GET": {
        "url": "patients:invitation_accept",
        "args": ("invitation_token",),
        "method": "GET",
        # The one-time link is the credential: it works without signing in.
        "expect": _cells(OK, anonymous=OK),
    },
    "invitation_accept GET unknown token": {
        "url": "patients:invitation_accept",
        "args": ("unknown_token",),
        "method": "GET",
        "expect": _cells(NOT_FOUND, anonymous=NOT_FOUND),
    },
    # The patient portal has no record id in its URLs: each portal user reaches their own
    # record (patient_other sees Q's portal, never P's); everyone else gets 404.
    **{
        f"{name} GET": {"url": name, "method": "GET", "expect": _only(_PATIENTS)}
        for name in (
            "portal:home",
            "portal:lab_results",
            "portal:symptoms",
            "portal:care_team",
            "portal:access_history",
        )
    },
    "portal:symptoms POST": {
        "url": "portal:symptoms",
        "method": "POST",
        "data": {"symptom": "Tiredness", "severity": "2", "description": ""},
        "expect": _only(_PATIENTS, DONE),
    },
    "portal:symptoms POST without symptom": {
        "url": "portal:symptoms",
        "method": "POST",
        "data": {"symptom": "", "severity": "2"},
        "expect": _only(_PATIENTS, BAD_REQUEST),
    },
    "audit:report GET": {"url": "audit:report", "method": "GET", "expect": _only(_ADMINS)},
    "audit:report GET unknown filter": {
        "url": "audit:report",
        "method": "GET",
        "query": "bogus=1",
        "expect": _only(_ADMINS, BAD_REQUEST),
    },
    "audit:report POST": {
        "url": "audit:report",
        "method": "POST",
        "data": {},
        "expect": _cells(NOT_ALLOWED, anonymous=NOT_ALLOWED),
    },
    "audit:export GET": {"url": "audit:export", "method": "GET", "expect": _only(_ADMINS)},
    # GraphQL: queries are POST-only (a GET without a query is a 400; the playground, for a
    # browser's text/html GET, exists only under DEBUG); a POST that is not a JSON GraphQL
    # request is a 400. Per-record GraphQL access is tested cell by cell in
    # oncoplanner/tests/test_graphql_gate.py (the same gate, surface "graphql").
    "graphql GET": {"url": "graphql", "method": "GET", "expect": _cells(BAD_REQUEST)},
    "graphql POST": {
        "url": "graphql",
        "method": "POST",
        "data": {"query": "{ patients { id } }"},
        "expect": _cells(BAD_REQUEST),
    },
    # Schema documentation: staff only (no patient data, but not the portal's business).
    "docs:data_dictionary GET": {
        "url": "docs:data_dictionary",
        "method": "GET",
        "expect": _only(_CLINICIANS + _ADMINS),
    },
    "docs:er_diagram GET": {
        "url": "docs:er_diagram",
        "method": "GET",
        "expect": _only(_CLINICIANS + _ADMINS),
    },
}

# --- Admin ----------------------------------------------------------------------------------

# PHI models: their admin goes through patients/admin_gate.GatedPhiAdmin (scoped to the user's
# care teams: an administrator or superuser on no team sees no rows and a 404 for any record).
# Value: the world object whose change view is probed (None: only the changelist is probed).
ADMIN_PHI_MODELS: dict[str, str | None] = {
    "patients.Patient": "P",
    "patients.BodyMeasurement": "P_measurement",
    "patients.SymptomReport": "P_symptom_report",
    "treatments.Course": "P_course",
    "treatments.ChemoCycle": "P_cycle",
    "treatments.DoseModification": None,
    "treatments.Administration": None,
    "treatments.SideEffect": "P_side_effect",
    "labs.LabResult": "P_lab_result",
}
# Break-glass and invitation oversight: administrators see these rows unscoped by design, and
# the rows name the patient only by id and MRN (no chart data; patients/admin.py).
ADMIN_OVERSIGHT_MODELS: dict[str, str | None] = {
    "patients.EmergencyAccess": "P_emergency_access",
    "patients.PatientInvitation": "P_invitation",
}
# Configuration and account models: no patient data.
ADMIN_CONFIG_MODELS: dict[str, str | None] = {
    "auth.Group": None,
    "accounts.ApiToken": None,
    "accounts.User": "clinician_team",
    "account.EmailAddress": None,
    "mfa.Authenticator": None,
    "axes.AccessAttempt": None,
    "axes.AccessLog": None,
    "axes.AccessFailureLog": None,
    "django_tasks_database.DBTaskResult": None,
    "patients.CareTeam": "T",
    "treatments.Drug": None,
    "treatments.Regimen": None,
    "treatments.RegimenPhase": None,
    "treatments.RegimenDrug": None,
    "treatments.CtcaeTerm": None,
    "labs.LabTest": None,
    "labs.ReferenceRange": None,
    "labs.PreCycleRule": None,
    "labs.CtcaeGradeCriterion": None,
    # The access log: read-only even to superusers; it names patients by id only.
    "audit.AccessLog": None,
}
# Admin is for staff: everyone else is sent to the (allauth) sign-in page.
ADMIN_VISIBLE = _cells(LOGIN, administrator=OK, superuser=OK)
ADMIN_PHI_RECORD = _cells(LOGIN, administrator=NOT_FOUND, superuser=NOT_FOUND)


def _admin_resources() -> dict[str, dict[str, object]]:
    resources: dict[str, dict[str, object]] = {}
    tables = (
        (ADMIN_PHI_MODELS, ADMIN_PHI_RECORD),
        (ADMIN_OVERSIGHT_MODELS, ADMIN_VISIBLE),
        (ADMIN_CONFIG_MODELS, ADMIN_VISIBLE),
    )
    for table, record_expect in tables:
        for label, obj in table.items():
            app, model = label.lower().split(".")
            resources[f"admin {label} changelist GET"] = {
                "url": f"admin:{app}_{model}_changelist",
                "method": "GET",
                "expect": ADMIN_VISIBLE,
            }
            if obj is not None:
                resources[f"admin {label} change GET"] = {
                    "url": f"admin:{app}_{model}_change",
                    "args": (obj,),
                    "method": "GET",
                    "expect": record_expect,
                }
    return resources


RESOURCES.update(_admin_resources())

# --- Classification of every URL pattern (test_url_walk) ------------------------------------

# URL names reachable without signing in that show no patient data.
PUBLIC_URL_NAMES = frozenset(
    {
        "account_login",
        "account_logout",
        "account_inactive",
        "account_signup",  # closed by the adapter: patients join only through an invitation
        "account_reset_password",
        "account_reset_password_done",
        "account_reset_password_from_key",
        "account_reset_password_from_key_done",
        "account_confirm_email",
        "account_email_verification_sent",
        "account_confirm_login_code",
        "mfa_authenticate",
        "admin_login_redirect",
        "admin:login",
        "patients:invitation_accept",  # the one-time token is the credential
        "api:openapi-json",  # the REST schema: no data
        "api:openapi-view",  # the REST playground page: assets only, calls need auth
        "api:api-root",
    }
)
# Signed-in pages about the user's own account: no patient data.
AUTHENTICATED_URL_NAMES = frozenset(
    {
        "account_reauthenticate",
        "account_email",
        "account_change_password",
        "account_set_password",
        "mfa_index",
        "mfa_reauthenticate",
        "mfa_activate_totp",
        "mfa_deactivate_totp",
        "mfa_view_recovery_codes",
        "mfa_generate_recovery_codes",
        "mfa_download_recovery_codes",
        # Staff-only schema documentation (no patient data); in the matrix above all the same.
        "docs:data_dictionary",
        "docs:er_diagram",
        "api_tokens",  # the user's own personal API tokens
        "api_token_revoke",
    }
)
# Pages that show or change patient data or the access log: each must be in the matrix.
PHI_URL_NAMES = frozenset(
    {
        "home",
        "patients:patient_detail",
        "patients:patient_list",
        "patients:emergency_access_create",
        "patients:care_team_manage",
        "patients:invitation_create",
        "audit:report",
        "audit:export",
        "graphql",
        "portal:home",
        "portal:lab_results",
        "portal:symptoms",
        "portal:care_team",
        "portal:access_history",
    }
)
# Every admin URL is behind is_staff plus allauth's login and MFA; the model views are
# covered by the admin-model walk (ADMIN_*_MODELS above).
ADMIN_NAMESPACE = "admin"
