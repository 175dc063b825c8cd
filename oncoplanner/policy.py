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
- ``created``: 201 (a REST write that made a record); ``401``: not signed in, on a door that
  cannot redirect to a login page (the REST API's JSON answer, the live event stream).

Resource keys: ``url`` (URL name), ``args`` (world names; ``"P_cycle.number"`` takes an
attribute instead of the pk), ``method``, ``query`` and ``data`` (form body) whose strings may
name world objects as ``"{P.pk}"``, ``json`` (a JSON body sent as application/json; a string
that is only a placeholder becomes the attribute's own value, an int for a pk), ``settings``
(overridden for the request), ``stream`` (a 200 must be ``text/event-stream``; the body is not
read), ``expect`` (one outcome per persona) and ``xfail`` (persona -> reason: a cell where the
app answers something other than this policy; the cell stays strict, see the matrix test).
"""

from __future__ import annotations

OK = "ok"
DONE = "done"
LOGIN = "login"
NOT_FOUND = "404"
NOT_ALLOWED = "405"
BAD_REQUEST = "400"
CREATED = "created"
UNAUTHORIZED = "401"
# Past the gate, refused by discipline (a pharmacist's act asked of an oncologist).
FORBIDDEN = "403"
OUTCOMES = (
    OK,
    DONE,
    LOGIN,
    NOT_FOUND,
    NOT_ALLOWED,
    BAD_REQUEST,
    CREATED,
    UNAUTHORIZED,
    FORBIDDEN,
)
# Outcomes that hand the resource over; every other outcome is a deny.
ALLOWING = frozenset({OK, DONE, CREATED})

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
# Who may open and document P's chart: its care team, and the break-glass grant (view+change).
_CARE = ("clinician_team", "clinician_break_glass")
_STAFF = _CLINICIANS + _ADMINS


def _cells(default: str, **overrides: str) -> dict[str, str]:
    """One outcome per persona: `default`, with anonymous redirected to login unless given."""
    row = dict.fromkeys(PERSONAS, default)
    row["anonymous"] = LOGIN
    row.update(overrides)
    return row


def _only(allowed: tuple[str, ...], outcome: str = OK, deny: str = NOT_FOUND) -> dict[str, str]:
    return _cells(deny, **dict.fromkeys(allowed, outcome))


def _api_only(allowed: tuple[str, ...], outcome: str = OK) -> dict[str, str]:
    """REST and stream: anonymous is a 401 (no redirect), everyone not allowed the gate's 404."""
    return _cells(NOT_FOUND, anonymous=UNAUTHORIZED, **dict.fromkeys(allowed, outcome))


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
    # Registering a patient: clinicians, on one of their own care teams (the form offers only
    # those; the service checks membership). A clinician on no team, or naming a team they are
    # not on, gets the form back with the error (400): nothing is created.
    "patients:patient_create GET": {
        "url": "patients:patient_create",
        "method": "GET",
        "expect": _only(_CLINICIANS),
    },
    "patients:patient_create POST": {
        "url": "patients:patient_create",
        "method": "POST",
        "data": {
            "mrn": "REG-0000001",
            "given_name": "Wilhelmina",
            "family_name": "Registered",
            "date_of_birth": "1961-07-02",
            "sex": "female",
            "care_team": "{T.pk}",
        },
        "expect": {**_only(_CLINICIANS, BAD_REQUEST), "clinician_team": DONE},
    },
    # Correcting the chart's details: whoever may document the chart (change permission: the
    # care team and break-glass, as the REST PATCH); everyone else the gate's 404.
    "patients:patient_update GET": {
        "url": "patients:patient_update",
        "args": ("P",),
        "method": "GET",
        "expect": _only(_CARE),
    },
    "patients:patient_update POST": {
        "url": "patients:patient_update",
        "args": ("P",),
        "method": "POST",
        "data": {
            "given_name": "{P.given_name}",
            "family_name": "{P.family_name}",
            "date_of_birth": "{P.date_of_birth}",
            "sex": "{P.sex}",
            "phone": "+1 555 0100",
        },
        "expect": _only(_CARE, DONE),
    },
    "patients:patient_update POST new date of birth unconfirmed": {
        "url": "patients:patient_update",
        "args": ("P",),
        "method": "POST",
        "data": {
            "given_name": "{P.given_name}",
            "family_name": "{P.family_name}",
            "date_of_birth": "1968-04-11",
            "sex": "{P.sex}",
        },
        # Doses depend on it: the care team gets the page back asking to confirm (400).
        "expect": _only(_CARE, BAD_REQUEST),
    },
    "patient_fhir_export GET": {
        "url": "patients:patient_fhir_export",
        "args": ("P",),
        "method": "GET",
        # The chart's export: whoever may open the chart, nobody else.
        "expect": _only(("clinician_team", "clinician_break_glass")),
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

# --- Treatment pages (treatments/views.py) --------------------------------------------------
# Every page takes the patient from the URL and fetches the course/cycle under it (the gate's
# "parent mine, child theirs" 404). Reads need view, writes change: break-glass has both.
_COURSE = ("P", "P_course")
_CYCLE = ("P", "P_course", "P_cycle.number")
_REASON = "Grade 3 neutropenia on day 14 blood count"
RESOURCES.update(
    {
        "treatments:course_create GET": {
            "url": "treatments:course_create",
            "args": ("P",),
            "method": "GET",
            "expect": _only(_CARE),
        },
        "treatments:course_create POST": {
            "url": "treatments:course_create",
            "args": ("P",),
            "method": "POST",
            "data": {
                "regimen": "{regimen_second.pk}",
                "start_date": "2026-06-01",
                "intent": "adjuvant",
                "confirm_past_start": "on",  # a fixed date, in the past as the calendar moves
                # P's mFOLFOX6 course is open: a second course is started only when confirmed.
                "confirm_concurrent_course": "on",
                "confirm_reason": "Second course intended by the tumour board",
            },
            "expect": _only(_CARE, DONE),
        },
        "treatments:course_detail GET": {
            "url": "treatments:course_detail",
            "args": _COURSE,
            "method": "GET",
            "expect": _only(_CARE),
        },
        "treatments:course_summary GET": {
            "url": "treatments:course_summary",
            "args": _COURSE,
            "method": "GET",
            "expect": _only(_CARE),
        },
        "treatments:dose_modification_create POST": {
            "url": "treatments:dose_modification_create",
            "args": _COURSE,
            "method": "POST",
            "data": {"from_cycle_number": "2", "percent": "80", "reason": _REASON},
            "expect": _only(_CARE, DONE),
        },
        "treatments:course_stop POST": {
            "url": "treatments:course_stop",
            "args": _COURSE,
            "method": "POST",
            "data": {"reason": "407563006", "note": "", "stopped_on": "2026-03-20"},
            "expect": _only(_CARE, DONE),
        },
        "treatments:cycle_detail GET": {
            "url": "treatments:cycle_detail",
            "args": _CYCLE,
            "method": "GET",
            "expect": _only(_CARE),
        },
        "treatments:cycle_give POST": {
            "url": "treatments:cycle_give",
            "args": _CYCLE,
            "method": "POST",
            # The world's patient has no pre-cycle bloods: giving needs the reason why.
            "data": {"actual_start": "2026-03-02", "override_reason": _REASON},
            "expect": _only(_CARE, DONE),
        },
        "treatments:cycle_delay POST": {
            "url": "treatments:cycle_delay",
            "args": _CYCLE,
            "method": "POST",
            "data": {"days": "7", "reason": _REASON},
            "expect": _only(_CARE, DONE),
        },
        "treatments:cycle_hold POST": {
            "url": "treatments:cycle_hold",
            "args": _CYCLE,
            "method": "POST",
            "data": {"reason": _REASON},
            "expect": _only(_CARE, DONE),
        },
        "treatments:cycle_cancel POST": {
            "url": "treatments:cycle_cancel",
            "args": _CYCLE,
            "method": "POST",
            "data": {"reason": _REASON},
            "expect": _only(_CARE, DONE),
        },
        "treatments:administration_create POST without a drug": {
            "url": "treatments:administration_create",
            "args": _CYCLE,
            "method": "POST",
            "data": {},
            # The gate runs first: the care team gets the form's 400, everyone else the 404.
            "expect": _only(_CARE, BAD_REQUEST),
        },
        "treatments:cycle_verify POST": {
            "url": "treatments:cycle_verify",
            "args": _CYCLE,
            "method": "POST",
            "data": {"note": "Checked", "seen_doses": "1:1=1"},
            # Doses are verified by a pharmacist; the matrix's clinicians are oncologists.
            "expect": _only(_CARE, FORBIDDEN),
        },
        "treatments:administration_stop POST": {
            "url": "treatments:administration_stop",
            "args": (*_CYCLE, "P_administration"),
            "method": "POST",
            "data": {"amount_given_mg": "10", "reason": _REASON},
            "expect": _only(_CARE, DONE),
        },
        "patients:measurement_create GET": {
            "url": "patients:measurement_create",
            "args": ("P",),
            "method": "GET",
            "expect": _only(_CARE),
        },
        "patients:measurement_create POST": {
            "url": "patients:measurement_create",
            "args": ("P",),
            "method": "POST",
            "data": {"measured_on": "2026-03-05", "weight_kg": "64.5"},
            "expect": _only(_CARE, DONE),
        },
        # Allergies: POST-only forms on the chart (the dashboard shows them); care team and
        # break-glass document, everyone else gets the gate's 404.
        "patients:allergy_create GET": {
            "url": "patients:allergy_create",
            "args": ("P",),
            "method": "GET",
            "expect": _cells(NOT_ALLOWED),
        },
        "patients:allergy_create POST": {
            "url": "patients:allergy_create",
            "args": ("P",),
            "method": "POST",
            "data": {"substance": "Latex", "category": "environment", "reaction": ""},
            "expect": _only(_CARE, DONE),
        },
        "patients:allergy_none_known POST": {
            "url": "patients:allergy_none_known",
            "args": ("P_uninvited",),  # no allergy on record (P has one: that is a 400)
            "method": "POST",
            "data": {},
            "expect": _only(_CARE, DONE),
        },
        "patients:allergy_entered_in_error POST": {
            "url": "patients:allergy_entered_in_error",
            "args": ("P", "P_allergy"),
            "method": "POST",
            "data": {"reason": "Recorded on the wrong chart"},
            "expect": _only(_CARE, DONE),
        },
        "treatments:side_effect_create GET": {
            "url": "treatments:side_effect_create",
            "args": ("P",),
            "method": "GET",
            "expect": _only(_CARE),
        },
        "treatments:side_effect_create POST": {
            "url": "treatments:side_effect_create",
            "args": ("P",),
            "method": "POST",
            "data": {"term": "{term.pk}", "grade": "2", "onset": "2026-03-05"},
            "expect": _only(_CARE, DONE),
        },
        # Reference data (no PHI) for staff; patients get the 404 of a page that is not theirs.
        "treatments:ctcae_term_search GET": {
            "url": "treatments:ctcae_term_search",
            "method": "GET",
            "query": "q=nause&patient={P.pk}",
            "expect": _only(_STAFF),
        },
    }
)

# --- Lab pages and the critical-result inbox (labs/views.py) --------------------------------
RESOURCES.update(
    {
        "labs:lab_trends GET": {
            "url": "labs:lab_trends",
            "args": ("P",),
            "method": "GET",
            "expect": _only(_CARE),
        },
        # Opened as a page (no HX-Request) it sends the care team on to the lab page's form.
        "labs:lab_result_create GET": {
            "url": "labs:lab_result_create",
            "args": ("P",),
            "method": "GET",
            "expect": _only(_CARE, DONE),
        },
        "labs:lab_result_create POST": {
            "url": "labs:lab_result_create",
            "args": ("P",),
            "method": "POST",
            "data": {
                "test": "{lab_test.pk}",
                "value": "1.5",
                "unit": "",
                "collected_on": "2026-03-01",
                "collected_time": "08:00",
            },
            "expect": _only(_CARE, DONE),
        },
        "labs:lab_results_release POST": {
            "url": "labs:lab_results_release",
            "args": ("P",),
            "method": "POST",
            "data": {"result": "{P_unreleased_lab_result.pk}"},
            "expect": _only(_CARE, DONE),
        },
        "labs:lab_result_entered_in_error GET": {
            "url": "labs:lab_result_entered_in_error",
            "args": ("P", "P_lab_result"),
            "method": "GET",
            "expect": _only(_CARE),
        },
        "labs:lab_result_entered_in_error POST": {
            "url": "labs:lab_result_entered_in_error",
            "args": ("P", "P_lab_result"),
            "method": "POST",
            "data": {"reason": "Typo: 50 entered as 500"},
            "expect": _only(_CARE, DONE),
        },
        "labs:lab_import GET": {
            "url": "labs:lab_import",
            "args": ("P",),
            "method": "GET",
            "expect": _only(_CARE),
        },
        "labs:lab_import POST without a file": {
            "url": "labs:lab_import",
            "args": ("P",),
            "method": "POST",
            "data": {},
            "expect": _only(_CARE, BAD_REQUEST),
        },
        # The lab's file for many patients: a clinicians' door; which MRNs it may write to is
        # the gate's answer per row (labs/tests/test_csv_import.py), not the page's.
        "labs:clinic_lab_import GET": {
            "url": "labs:clinic_lab_import",
            "method": "GET",
            "expect": _only(_CLINICIANS),
        },
        "labs:clinic_lab_import POST without a file": {
            "url": "labs:clinic_lab_import",
            "method": "POST",
            "data": {},
            "expect": _only(_CLINICIANS, BAD_REQUEST),
        },
        # The regimen library: reference data (no PHI) for staff; patients get a 404.
        "treatments:regimen_library GET": {
            "url": "treatments:regimen_library",
            "method": "GET",
            "expect": _only(_STAFF),
        },
        "treatments:regimen_detail GET": {
            "url": "treatments:regimen_detail",
            "args": ("regimen_draft",),
            "method": "GET",
            "expect": _only(_STAFF),
        },
        # Approving is an oncologist's or a pharmacist's signature: every persona's clinician
        # here is an oncologist, refused on the wrong password (400); an administrator is past
        # the page but not an approver (403).
        "treatments:regimen_approve POST with a wrong password": {
            "url": "treatments:regimen_approve",
            "args": ("regimen_draft",),
            "method": "POST",
            "data": {"checked": "on", "password": "not-their-password"},
            "expect": _cells(
                NOT_FOUND,
                **dict.fromkeys(_CLINICIANS, BAD_REQUEST),
                **dict.fromkeys(_ADMINS, FORBIDDEN),
            ),
        },
        # The clinicians' worklist across their patients (empty for the outsider here).
        "treatments:pharmacy_worklist GET": {
            "url": "treatments:pharmacy_worklist",
            "method": "GET",
            "expect": _only(_CLINICIANS),
        },
        "labs:inbox GET": {
            "url": "labs:inbox",
            "method": "GET",
            "expect": _only(_CLINICIANS),
        },
        "labs:lab_result_acknowledge POST": {
            "url": "labs:lab_result_acknowledge",
            "args": ("P", "P_critical_lab_result"),
            "method": "POST",
            "data": {"note": "Called the patient; G-CSF started"},
            "expect": _only(_CARE, DONE),
        },
        "labs:side_effect_acknowledge POST": {
            "url": "labs:side_effect_acknowledge",
            "args": ("P", "P_severe_side_effect"),
            "method": "POST",
            "data": {"note": "Antiemetics changed to olanzapine"},
            "expect": _only(_CARE, DONE),
        },
        "labs:symptom_report_review POST": {
            "url": "labs:symptom_report_review",
            "args": ("P", "P_severe_symptom_report"),
            "method": "POST",
            "data": {"note": "Phoned the patient; seen in clinic today"},
            "expect": _only(_CARE, DONE),
        },
    }
)

# --- Live updates (oncoplanner/live/views.py) -----------------------------------------------
# An EventSource cannot follow a redirect: anonymous is a plain 401. Signed in, the stream
# carries only events of patients the gate lets the user see (none at all for patients and
# administrators); asking for one patient's events is the gate's 404 for anyone else.
_STREAM_SETTINGS = {"LIVE_STREAM_MAX_SECONDS": 1, "LIVE_STREAM_WAIT_SECONDS": 1}
RESOURCES.update(
    {
        "live:changes GET": {
            "url": "live:changes",
            "method": "GET",
            "settings": _STREAM_SETTINGS,
            "stream": True,
            "expect": _cells(OK, anonymous=UNAUTHORIZED),
        },
        "live:changes GET patient P": {
            "url": "live:changes",
            "method": "GET",
            "query": "patient={P.pk}",
            "settings": _STREAM_SETTINGS,
            "stream": True,
            "expect": _api_only(_CARE),
        },
    }
)

# --- REST API /api/v1/ (oncoplanner/api.py and each app's api.py) ---------------------------
# Session authentication here (tokens: oncoplanner/tests/test_api_tokens.py); anonymous is
# the JSON 401, patient users get the 404 of a missing record on every clinical route, and
# the clinical routes pass the same gate as the pages. Unsafe methods need the CSRF token
# (test_permission_matrix_post_without_csrf_token_is_refused covers every row below).
_P_COURSE = ("P", "P_course")
_P_CYCLE = ("P", "P_cycle")


def _api(
    url: str,
    args: tuple[str, ...] = (),
    expect: dict[str, str] | None = None,
    method: str = "GET",
    body: dict[str, object] | None = None,
) -> dict[str, object]:
    resource: dict[str, object] = {"url": f"api:{url}", "args": args, "method": method}
    if body is not None:
        resource["json"] = body
    resource["expect"] = expect if expect is not None else _api_only(_CARE)
    return resource


_API_WRITE = _api_only(_CARE, CREATED)
RESOURCES.update(
    {
        "api:me GET": _api("me", expect=_cells(OK, anonymous=UNAUTHORIZED)),
        # Patients
        "api:patient_list GET": {
            **_api("patient_list", expect=_api_only(_CLINICIANS)),
        },
        # Registering a patient, as on /patients/new/ (the same service): clinicians on one of
        # their own teams; a clinician naming a team they are not on (or on none) gets the 400
        # naming care_team_id; administrators and patients the 404 of a door not theirs.
        "api:patient_create POST": _api(
            "patient_create",
            (),
            {**_api_only(_CLINICIANS, BAD_REQUEST), "clinician_team": CREATED},
            "POST",
            {
                "mrn": "REG-0000002",
                "given_name": "Wilhelmina",
                "family_name": "Registered",
                "date_of_birth": "1961-07-02",
                "sex": "female",
                "care_team_id": "{T.pk}",
            },
        ),
        "api:patient_detail GET": _api("patient_detail", ("P",)),
        "api:patient_patch PATCH": _api(
            "patient_patch", ("P",), method="PATCH", body={"phone": "+1 555 0100"}
        ),
        "api:patient_readiness GET": _api("patient_readiness", ("P",)),
        "api:patient_fhir_export GET": _api("patient_fhir_export", ("P",)),
        # Reference data (no PHI): staff only
        "api:regimen_list GET": _api("regimen_list", expect=_api_only(_STAFF)),
        "api:regimen_detail GET": _api("regimen_detail", ("regimen",), _api_only(_STAFF)),
        "api:lab_test_list GET": _api("lab_test_list", expect=_api_only(_STAFF)),
        "api:lab_test_detail GET": _api("lab_test_detail", ("lab_test",), _api_only(_STAFF)),
        "api:ctcae_term_list GET": _api("ctcae_term_list", expect=_api_only(_STAFF)),
        # Courses and cycles
        "api:course_list GET": _api("course_list", ("P",)),
        "api:course_create POST": _api(
            "course_create",
            ("P",),
            _API_WRITE,
            "POST",
            {
                "regimen_id": "{regimen_second.pk}",
                "start_date": "2026-06-01",
                "intent": "adjuvant",
                "confirm_past_start": True,
                "confirm_concurrent_course": True,
                "confirm_reason": "Second course intended by the tumour board",
            },
        ),
        "api:course_detail GET": _api("course_detail", _P_COURSE),
        "api:cycle_list GET": _api("cycle_list", _P_COURSE),
        "api:cycle_detail GET": _api("cycle_detail", _P_CYCLE),
        "api:cycle_give POST": _api(
            "cycle_give",
            _P_CYCLE,
            method="POST",
            body={
                "actual_start": "2026-03-02",
                "override_reason": _REASON,
                "seen_version": "{P_cycle.version}",
            },
        ),
        "api:cycle_delay POST": _api(
            "cycle_delay",
            _P_CYCLE,
            method="POST",
            body={"reason": _REASON, "days": 7, "seen_version": "{P_cycle.version}"},
        ),
        "api:cycle_hold POST": _api(
            "cycle_hold",
            _P_CYCLE,
            method="POST",
            body={"reason": _REASON, "seen_version": "{P_cycle.version}"},
        ),
        "api:cycle_cancel POST": _api(
            "cycle_cancel",
            _P_CYCLE,
            method="POST",
            body={"reason": _REASON, "seen_version": "{P_cycle.version}"},
        ),
        "api:administration_list GET": _api("administration_list", _P_CYCLE),
        "api:administration_create POST with another regimen's drug": _api(
            "administration_create",
            _P_CYCLE,
            # The gate runs first: the care team gets the 400 naming regimen_drug_id.
            _api_only(_CARE, BAD_REQUEST),
            "POST",
            {
                "regimen_drug_id": 999999,
                "day_of_cycle": 1,
                "given_at": "2026-03-02T09:00:00Z",
                "verified_by_id": 999999,
                "verifier_password": "not-checked-before-the-drug",
                "label_dose_mg": "1",
            },
        ),
        "api:dose_verification_list GET": _api("dose_verification_list", _P_CYCLE),
        "api:cycle_verify POST": _api(
            "cycle_verify",
            _P_CYCLE,
            _api_only(_CARE, FORBIDDEN),
            "POST",
            {"note": "Checked"},
        ),
        "api:administration_stop POST": _api(
            "administration_stop",
            (*_P_CYCLE, "P_administration"),
            method="POST",
            body={"amount_given_mg": "10", "reason": _REASON},
        ),
        "api:dose_modification_list GET": _api("dose_modification_list", _P_COURSE),
        "api:dose_modification_create POST": _api(
            "dose_modification_create",
            _P_COURSE,
            _API_WRITE,
            "POST",
            {"from_cycle_number": 2, "percent": "80", "reason": _REASON},
        ),
        # Side effects
        "api:measurement_list GET": _api("measurement_list", ("P",)),
        "api:measurement_create POST": _api(
            "measurement_create",
            ("P",),
            _API_WRITE,
            "POST",
            {"measured_on": "2026-03-05", "weight_kg": "64.5"},
        ),
        "api:allergy_list GET": _api("allergy_list", ("P",)),
        "api:allergy_create POST": _api(
            "allergy_create",
            ("P",),
            _API_WRITE,
            "POST",
            {"substance": "Latex", "category": "environment"},
        ),
        "api:allergy_none_known POST": _api(
            "allergy_none_known", ("P_uninvited",), method="POST", body={}
        ),
        "api:allergy_entered_in_error POST": _api(
            "allergy_entered_in_error",
            ("P", "P_allergy"),
            method="POST",
            body={"reason": "Recorded on the wrong chart"},
        ),
        "api:side_effect_list GET": _api("side_effect_list", ("P",)),
        "api:side_effect_create POST": _api(
            "side_effect_create",
            ("P",),
            _API_WRITE,
            "POST",
            {"term_id": "{term.pk}", "grade": 2, "onset": "2026-03-05"},
        ),
        "api:side_effect_detail GET": _api("side_effect_detail", ("P", "P_side_effect")),
        "api:side_effect_acknowledge POST": _api(
            "side_effect_acknowledge",
            ("P", "P_severe_side_effect"),
            method="POST",
            body={"note": "Antiemetics changed to olanzapine"},
        ),
        # Lab results
        "api:lab_result_list GET": _api("lab_result_list", ("P",)),
        "api:lab_result_create POST": _api(
            "lab_result_create",
            ("P",),
            _API_WRITE,
            "POST",
            {
                "test_id": "{lab_test.pk}",
                "value": "1.5",
                "unit": "10*3/uL",
                "collected_at": "2026-03-01T08:00:00Z",
            },
        ),
        "api:lab_result_detail GET": _api("lab_result_detail", ("P", "P_lab_result")),
        "api:lab_result_acknowledge POST": _api(
            "lab_result_acknowledge",
            ("P", "P_critical_lab_result"),
            method="POST",
            body={"note": "Called the patient; G-CSF started"},
        ),
        "api:lab_result_entered_in_error POST": _api(
            "lab_result_entered_in_error",
            ("P", "P_lab_result"),
            method="POST",
            body={"reason": "Typo: 50 entered as 500"},
        ),
        # The portal's own data: each patient user gets their own (never P's for patient_other).
        "api:my_cycles GET": _api("my_cycles", expect=_api_only(_PATIENTS)),
        "api:my_lab_results GET": _api("my_lab_results", expect=_api_only(_PATIENTS)),
    }
)

# --- Admin ----------------------------------------------------------------------------------

# PHI models: their admin goes through patients/admin_gate.GatedPhiAdmin (scoped to the user's
# care teams: an administrator or superuser on no team sees no rows and a 404 for any record).
# Value: the world object whose change view is probed (None: only the changelist is probed).
ADMIN_PHI_MODELS: dict[str, str | None] = {
    "patients.Patient": "P",
    "patients.BodyMeasurement": "P_measurement",
    "patients.SymptomReport": "P_symptom_report",
    "patients.Allergy": "P_allergy",
    "treatments.Course": "P_course",
    "treatments.ChemoCycle": "P_cycle",
    "treatments.DoseModification": None,
    "treatments.Administration": "P_administration",
    "treatments.DoseVerification": None,
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
    "axes.AccessFailureLog": None,
    "django_tasks_database.DBTaskResult": None,
    "patients.CareTeam": "T",
    "treatments.Drug": None,
    "treatments.Regimen": None,
    "treatments.RegimenPhase": None,
    "treatments.RegimenDrug": None,
    "treatments.CtcaeTerm": None,
    "treatments.UnitClosure": None,  # the day unit's own closure days
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
        "favicon",  # a redirect to the static icon: no data
        "bench_baseline",  # only with BENCHMARK_BASELINE (below): a static page, no data
    }
)
# Mounted only when the named setting is true (the URL walk mounts them to check): name ->
# setting. bench_baseline is a static page with no data, for scripts/bench.py's own server.
CONDITIONAL_URL_NAMES: dict[str, str] = {"bench_baseline": "BENCHMARK_BASELINE"}
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
        "api_tokens",  # the user's own personal API tokens
        "api_token_revoke",
        # Staff-only schema documentation (no patient data); in the matrix above all the same.
        "docs:data_dictionary",
        "docs:er_diagram",
        # Reference data without patient data (CTCAE terms, regimens, lab tests) and the
        # user's own identity; all of them in the matrix above all the same.
        "treatments:ctcae_term_search",
        "treatments:regimen_library",
        "treatments:regimen_detail",
        "treatments:regimen_approve",
        "api:me",
        "api:regimen_list",
        "api:regimen_detail",
        "api:lab_test_list",
        "api:lab_test_detail",
        "api:ctcae_term_list",
    }
)
# Pages that show or change patient data or the access log: each must be in the matrix.
PHI_URL_NAMES = frozenset(
    {
        "home",
        "patients:patient_detail",
        "patients:patient_create",
        "patients:patient_update",
        "patients:patient_fhir_export",
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
        "treatments:course_create",
        "treatments:course_detail",
        "treatments:course_summary",
        "treatments:dose_modification_create",
        "treatments:course_stop",
        "treatments:cycle_detail",
        "treatments:cycle_give",
        "treatments:cycle_delay",
        "treatments:cycle_hold",
        "treatments:cycle_cancel",
        "treatments:administration_create",
        "treatments:administration_stop",
        "treatments:cycle_verify",
        "treatments:side_effect_create",
        "patients:measurement_create",
        "patients:allergy_create",
        "patients:allergy_none_known",
        "patients:allergy_entered_in_error",
        "labs:lab_trends",
        "labs:lab_result_create",
        "labs:lab_results_release",
        "labs:lab_result_entered_in_error",
        "labs:lab_import",
        "labs:clinic_lab_import",
        "labs:inbox",
        "treatments:pharmacy_worklist",
        "labs:lab_result_acknowledge",
        "labs:side_effect_acknowledge",
        "labs:symptom_report_review",
        "live:changes",
        "api:patient_list",
        "api:patient_create",
        "api:patient_detail",
        "api:patient_patch",
        "api:patient_readiness",
        "api:patient_fhir_export",
        "api:course_list",
        "api:course_create",
        "api:course_detail",
        "api:cycle_list",
        "api:cycle_detail",
        "api:cycle_give",
        "api:cycle_delay",
        "api:cycle_hold",
        "api:cycle_cancel",
        "api:administration_list",
        "api:administration_create",
        "api:administration_stop",
        "api:dose_verification_list",
        "api:cycle_verify",
        "api:dose_modification_list",
        "api:dose_modification_create",
        "api:measurement_list",
        "api:measurement_create",
        "api:allergy_list",
        "api:allergy_create",
        "api:allergy_none_known",
        "api:allergy_entered_in_error",
        "api:side_effect_list",
        "api:side_effect_create",
        "api:side_effect_detail",
        "api:side_effect_acknowledge",
        "api:my_cycles",
        "api:lab_result_list",
        "api:lab_result_create",
        "api:lab_result_detail",
        "api:lab_result_acknowledge",
        "api:lab_result_entered_in_error",
        "api:my_lab_results",
    }
)
# Every admin URL is behind is_staff plus allauth's login and MFA; the model views are
# covered by the admin-model walk (ADMIN_*_MODELS above).
ADMIN_NAMESPACE = "admin"
