"""The demo clinic's staff and portal patient: one list that seed_demo, demo_logins and the
README agree on."""

from __future__ import annotations

from dataclasses import dataclass

DEMO_PASSWORD = "oncoplanner-demo"  # noqa: S105 - printed for the demo on purpose
# Base32 TOTP secret shared by the demo staff accounts, so that a tester can add it to an
# authenticator app once. Demo only: seed_demo refuses to run with DEBUG off.
DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXPONCOPLAN"  # noqa: S105


@dataclass(frozen=True)
class DemoPerson:
    username: str
    first_name: str
    last_name: str
    role: str
    discipline: str = ""
    teams: tuple[str, ...] = ()
    # A nurse or pharmacist independent prescriber (User.sact_prescriber).
    sact_prescriber: bool = False


GI_TEAM = "GI oncology"
BREAST_LYMPHOMA_TEAM = "Breast and lymphoma"
# (daytime, 24-hour acute oncology) numbers the portal gives each team's patients. Fictional:
# Ofcom keeps 020 7946 0000-0999 for drama, so no real person is ever rung from the demo. One
# hospital-wide 24-hour line, as acute oncology services usually run.
TEAM_PHONES = {
    GI_TEAM: ("020 7946 0410", "020 7946 0999"),
    BREAST_LYMPHOMA_TEAM: ("020 7946 0420", "020 7946 0999"),
}

STAFF = (
    DemoPerson("admin", "Ada", "Ng", "administrator"),
    DemoPerson("dr.okafor", "Chidi", "Okafor", "clinician", "oncologist", (GI_TEAM,)),
    DemoPerson("nurse.lindqvist", "Maja", "Lindqvist", "clinician", "nurse", (GI_TEAM,)),
    DemoPerson(
        "pharm.haddad", "Rami", "Haddad", "clinician", "pharmacist", (GI_TEAM, BREAST_LYMPHOMA_TEAM)
    ),
    DemoPerson("dr.moreau", "Claire", "Moreau", "clinician", "oncologist", (BREAST_LYMPHOMA_TEAM,)),
    # A nurse independent prescriber: sets dose levels, delays, cancels and releases held
    # cycles of the courses Dr Moreau starts (nurse.lindqvist shows a nurse who does not).
    DemoPerson(
        "nurse.osei",
        "Ama",
        "Osei",
        "clinician",
        "nurse",
        (BREAST_LYMPHOMA_TEAM,),
        sact_prescriber=True,
    ),
)
PORTAL_PATIENT = DemoPerson("patient.demo", "", "", "patient")
