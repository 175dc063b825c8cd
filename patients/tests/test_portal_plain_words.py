"""The portal in a patient's words: what each test is, and a footer addressed to the patient.

A reviewer found "ANC ×10³/µL" in the portal's results with no explanation, and the clinicians'
footer ("decision support, not a substitute for clinical judgement") under every portal page.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from labs.models import LabResult, LabTest
from labs.tests.factories import LabTestFactory
from oncoplanner.accounts.tests.factories import UserFactory
from patients.portal_views import PATIENT_TEST_WORDS
from patients.services import care_team_update

pytestmark = pytest.mark.django_db

CLINICIAN_FOOTER = "decision support, not a substitute for clinical judgement"
PATIENT_FOOTER = "If you feel unwell, do not wait"
# DOMAIN.md, section 4: the tests a patient on chemotherapy sees most.
COMMON_LOINCS = {
    "6690-2": "White blood cells",
    "751-8": "Neutrophils",
    "718-7": "Haemoglobin",
    "777-3": "Platelets",
    "2160-0": "Creatinine",
    "98979-8": "eGFR",
    "1742-6": "ALT",
    "1920-8": "AST",
    "1975-2": "Bilirubin",
    "2039-6": "CEA",
    "10334-1": "CA-125",
    "24108-3": "CA 19-9",
    "2857-1": "PSA",
}


def _released(patient, loinc: str, value: str, *, days_ago: int = 1) -> LabResult:
    test = LabTest.objects.get(loinc=loinc)
    return LabResult.objects.create(
        patient=patient,
        test=test,
        value=Decimal(value),
        unit=test.unit,
        collected_at=timezone.now() - dt.timedelta(days=days_ago),
        is_released=True,
    )


def _footer(page: str) -> str:
    return page.split('<footer class="footer">', 1)[1].split("</footer>", 1)[0]


def _analyte(page: str, heading: str) -> str:
    return page.split(f">{heading}</h2>", 1)[1].split("</section>", 1)[0]


# --- Test names and explanations ---------------------------------------------------------------


def test_every_common_test_has_a_plain_name_and_a_one_line_explanation():
    assert set(PATIENT_TEST_WORDS) >= set(COMMON_LOINCS)
    for loinc, word in COMMON_LOINCS.items():
        name, explanation = PATIENT_TEST_WORDS[loinc]
        assert word in name, loinc
        assert explanation.endswith("."), loinc
        assert "\n" not in explanation
        assert len(explanation) < 160, loinc  # one line, not a leaflet


def test_portal_results_name_and_explain_each_test(portal_client, patient):
    _released(patient, "751-8", "1.4")
    _released(patient, "777-3", "180")
    _released(patient, "2039-6", "4.2")

    page = portal_client.get(reverse("portal:lab_results")).content.decode()

    anc = _analyte(page, "Neutrophils (ANC)")
    assert "White cells that fight infection; low during chemotherapy" in anc
    assert "×10³/µL: thousand cells in each microlitre of blood" in anc
    assert "Cells that help your blood clot" in _analyte(page, "Platelets (PLT)")
    assert "changes over time" in _analyte(page, "CEA (tumour marker)")
    # Blood counts before tumour markers, in the order a patient reads them.
    assert page.index(">Neutrophils (ANC)</h2>") < page.index(">Platelets (PLT)</h2>")
    assert page.index(">Platelets (PLT)</h2>") < page.index(">CEA (tumour marker)</h2>")
    # No bare abbreviation as a heading any more.
    assert ">ANC <span" not in page


def test_portal_results_chart_uses_the_plain_name(portal_client, patient):
    _released(patient, "718-7", "11.2", days_ago=3)
    _released(patient, "718-7", "10.8", days_ago=1)
    response = portal_client.get(reverse("portal:lab_results"))
    (analyte,) = response.context["analytes"]
    assert analyte["chart"]["name"] == "Haemoglobin (Hb)"


def test_a_test_without_plain_words_shows_its_catalogue_name(portal_client, patient):
    test = LabTestFactory.create(name="Sodium", short_name="Na", unit="mmol/L", decimal_places=0)
    LabResult.objects.create(
        patient=patient,
        test=test,
        value=Decimal("139"),
        unit="mmol/L",
        collected_at=timezone.now() - dt.timedelta(days=1),
        is_released=True,
    )
    page = portal_client.get(reverse("portal:lab_results")).content.decode()
    assert ">Sodium (Na)</h2>" in page


# --- Footer: the patient's, and the clinicians' --------------------------------------------------


@pytest.mark.parametrize("page", ["portal:home", "portal:lab_results", "portal:symptoms"])
def test_portal_footer_speaks_to_the_patient_with_their_24_hour_number(
    portal_client, care_team, page
):
    care_team_update(team=care_team, updated_by=None, phone_24h="020 7946 0999")

    footer = _footer(portal_client.get(reverse(page)).content.decode())

    assert CLINICIAN_FOOTER not in footer
    assert PATIENT_FOOTER in footer
    assert '<a href="tel:02079460999">020 7946 0999</a>' in footer


def test_portal_footer_without_a_24_hour_number_sends_the_patient_to_999(portal_client):
    footer = _footer(portal_client.get(reverse("portal:lab_results")).content.decode())
    assert PATIENT_FOOTER in footer
    assert "call 999 (or 112)" in footer
    assert CLINICIAN_FOOTER not in footer


def test_patient_outside_the_portal_pages_gets_the_patient_footer(client):
    unlinked = UserFactory.create()  # a patient account with no record: the plain home page
    client.force_login(unlinked)
    footer = _footer(client.get(reverse("home")).content.decode())
    assert PATIENT_FOOTER in footer
    assert CLINICIAN_FOOTER not in footer


def test_clinicians_keep_the_decision_support_footer(client, login, treating_clinician):
    login(client, treating_clinician)
    for url in (reverse("home"), reverse("patients:patient_list"), reverse("labs:inbox")):
        footer = _footer(client.get(url).content.decode())
        assert CLINICIAN_FOOTER in footer
        assert PATIENT_FOOTER not in footer
