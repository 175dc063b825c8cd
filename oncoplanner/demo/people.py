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


GI_TEAM = "GI oncology"
BREAST_LYMPHOMA_TEAM = "Breast and lymphoma"

STAFF = (
    DemoPerson("admin", "Ada", "Ng", "administrator"),
    DemoPerson("dr.okafor", "Chidi", "Okafor", "clinician", "oncologist", (GI_TEAM,)),
    DemoPerson("nurse.lindqvist", "Maja", "Lindqvist", "clinician", "nurse", (GI_TEAM,)),
    DemoPerson(
        "pharm.haddad", "Rami", "Haddad", "clinician", "pharmacist", (GI_TEAM, BREAST_LYMPHOMA_TEAM)
    ),
    DemoPerson("dr.moreau", "Claire", "Moreau", "clinician", "oncologist", (BREAST_LYMPHOMA_TEAM,)),
    DemoPerson("nurse.osei", "Ama", "Osei", "clinician", "nurse", (BREAST_LYMPHOMA_TEAM,)),
)
PORTAL_PATIENT = DemoPerson("patient.demo", "", "", "patient")
