"""Builds a believable demo clinic (issue 2, item 7).

The first patients (up to `REALISTIC_PATIENTS`) are built through the real services, so their
courses, doses, flags and access-log rows are exactly what the app would have written. Beyond
that (benchmark sizes, `--patients 10000`) rows are bulk-inserted with the same clinical rules
(flags from the same function, cycles on the same schedule): signals do not fire for bulk
inserts, so those synthetic rows have no access-log entries.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from allauth.mfa.totp.internal.auth import TOTP
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from labs.models import LabResult, LabTest
from labs.rules import interpretation_flag
from labs.services import applied_range_for, lab_result_record
from oncoplanner.accounts.models import User
from oncoplanner.demo.people import (
    BREAST_LYMPHOMA_TEAM,
    DEMO_PASSWORD,
    DEMO_TOTP_SECRET,
    GI_TEAM,
    PORTAL_PATIENT,
    STAFF,
    TEAM_PHONES,
)
from patients.models import BodyMeasurement, CareTeam, Patient
from patients.selectors import allergy_status_recorded
from patients.services import (
    PATIENT_OBJECT_PERMS,
    allergy_mark_entered_in_error,
    allergy_record,
    care_team_add_member,
    care_team_create,
    care_team_update,
    measurement_record,
    patient_create,
    patient_no_known_allergies_record,
)
from treatments.models import (
    ChemoCycle,
    Course,
    CtcaeTerm,
    CycleStatusChange,
    Drug,
    Regimen,
)
from treatments.services import (
    administration_record,
    course_start,
    cycle_delay,
    cycle_doses_verify,
    cycle_give,
    dose_modification_record,
    side_effect_record,
    status_change_of,
)

REALISTIC_PATIENTS = 30
MRN_PREFIX = "DEMO"

GIVEN_NAMES_F = [
    "Amara",
    "Beatriz",
    "Chloe",
    "Dalia",
    "Elena",
    "Fatima",
    "Grace",
    "Hana",
    "Ines",
    "Joanna",
    "Keiko",
    "Lena",
    "Mirela",
    "Nadia",
    "Olga",
    "Priya",
]
GIVEN_NAMES_M = [
    "Aaron",
    "Bilal",
    "Carlos",
    "Dmitri",
    "Emeka",
    "Farid",
    "Gareth",
    "Hiro",
    "Ivan",
    "Jonas",
    "Kwame",
    "Luca",
    "Mateo",
    "Niall",
    "Omar",
    "Pavel",
]
FAMILY_NAMES = [
    "Abbott",
    "Barros",
    "Chen",
    "Dubois",
    "Eze",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ibrahim",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Mensah",
    "Novak",
    "O'Brien",
    "Petrov",
    "Quinn",
    "Rossi",
    "Silva",
    "Tanaka",
    "Uddin",
    "Varga",
    "Walsh",
    "Xu",
    "Yilmaz",
    "Zhou",
]


@dataclass(frozen=True)
class Plan:
    regimen: str
    team: str
    diagnosis: str
    icd10: str
    stages: tuple[str, ...]
    sexes: tuple[str, ...]
    nadir_depth: float  # fraction of baseline ANC lost at the nadir of a cycle
    marker_loinc: str | None
    typical_effects: tuple[str, ...]


PLANS = (
    Plan(
        "mFOLFOX6",
        GI_TEAM,
        "Adenocarcinoma of sigmoid colon",
        "C18.7",
        ("IIIA", "IIIB", "IIIC"),
        ("female", "male"),
        0.45,
        "2039-6",
        ("Nausea", "Fatigue", "Peripheral sensory neuropathy", "Diarrhea", "Mucositis oral"),
    ),
    Plan(
        "Dose-dense AC-T",
        BREAST_LYMPHOMA_TEAM,
        "Invasive ductal carcinoma of breast",
        "C50.911",
        ("IIA", "IIB", "IIIA"),
        ("female",),
        0.65,
        None,
        ("Nausea", "Fatigue", "Alopecia", "Vomiting", "Peripheral sensory neuropathy"),
    ),
    Plan(
        "CHOP",
        BREAST_LYMPHOMA_TEAM,
        "Diffuse large B-cell lymphoma",
        "C83.3",
        ("II", "III", "IV"),
        ("female", "male"),
        0.6,
        None,
        ("Nausea", "Fatigue", "Constipation", "Alopecia", "Peripheral sensory neuropathy"),
    ),
)

# Allergies by patient index: (substance, category, severity, reaction). Patients not listed
# have "no known allergies" recorded when their index is even, and nothing recorded when odd
# (the banner's warning: somebody must still ask).
DEMO_ALLERGIES: dict[int, tuple[tuple[str, str, str, str], ...]] = {
    0: (
        ("Paclitaxel", "medication", "severe", "Anaphylaxis"),
        ("Penicillin", "medication", "moderate", "Urticaria"),
    ),
    1: (("Carboplatin", "medication", "severe", "Bronchospasm and hypotension"),),
    3: (("Oxaliplatin", "medication", "mild", "Flushing and itch during the infusion"),),
    5: (("Latex", "environment", "mild", "Contact dermatitis"),),
    7: (("Peanut", "food", "severe", "Anaphylaxis"),),
}
# One entry later found to be wrong: kept on the record, marked entered in error.
DEMO_ALLERGY_IN_ERROR = (
    3,
    "Carboplatin",
    "Recorded on the wrong chart: belongs to another patient.",
)

# Illustrative healthy baselines (DOMAIN.md section 4 ranges) for the analytes charted by default.
BASELINES = {
    "6690-2": 6.5,
    "751-8": 4.0,
    "718-7": 13.2,
    "777-3": 260.0,
    "2160-0": 0.85,
    "1742-6": 24.0,
    "1920-8": 22.0,
    "1975-2": 0.6,
}
COUNT_LOINCS = ("6690-2", "751-8", "718-7", "777-3")
CHEMISTRY_LOINCS = ("2160-0", "1742-6", "1920-8", "1975-2")
DEPTH_BY_LOINC = {"6690-2": 0.8, "751-8": 1.0, "718-7": 0.12, "777-3": 0.55}


def nadir_factor(day_of_cycle: int, depth: float) -> float:
    """Counts fall to a nadir around day 10-12 of a cycle and recover by its end."""
    return 1.0 - depth * math.exp(-((day_of_cycle - 11) ** 2) / 18.0)


# The demo pharmacy's dose-banding choice (DemoClinic.ensure_dose_banding).
DEMO_BANDED_DRUGS = (
    "fluorouracil",
    "cyclophosphamide",
    "doxorubicin",
    "paclitaxel",
    "oxaliplatin",
    "irinotecan",
    "gemcitabine",
)
DEMO_BANDING_TOLERANCE_PERCENT = Decimal("5")


def aware(day: dt.date, hour: int = 8, minute: int = 30) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))


class DemoClinic:
    def __init__(
        self,
        *,
        today: dt.date,
        seed: int = 20261123,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.today = today
        self.seed = seed
        self.progress = progress or (lambda done, total: None)
        self.tests = {t.loinc: t for t in LabTest.objects.prefetch_related("ranges")}
        self.terms = {t.term: t for t in CtcaeTerm.objects.filter(version="5.0")}
        self.regimens = {
            r.name: r
            for r in Regimen.objects.filter(is_active=True).prefetch_related("phases__drugs__drug")
        }

    # --- staff and teams ------------------------------------------------------------------

    def ensure_staff(self) -> dict[str, User]:
        users: dict[str, User] = {}
        for person in STAFF:
            user = User.objects.filter(username=person.username).first()
            if user is None:
                user = User(
                    username=person.username,
                    first_name=person.first_name,
                    last_name=person.last_name,
                    role=person.role,
                    discipline=person.discipline,
                    sact_prescriber=person.sact_prescriber,
                    email=f"{person.username}@clinic.example",
                    is_staff=person.role == "administrator",
                    is_superuser=person.role == "administrator",
                )
                user.set_password(DEMO_PASSWORD)
                user.full_clean()
                user.save()
                if person.role in ("administrator", "clinician"):
                    # Demo only: a known TOTP secret so testers can log in (demo_totp prints codes).
                    TOTP.activate(user, DEMO_TOTP_SECRET)
            users[person.username] = user
        return users

    def ensure_teams(self, users: dict[str, User]) -> dict[str, CareTeam]:
        teams: dict[str, CareTeam] = {}
        for name in (GI_TEAM, BREAST_LYMPHOMA_TEAM):
            daytime, acute_24h = TEAM_PHONES[name]
            team = CareTeam.objects.filter(name=name).first() or care_team_create(
                name=name, phone_daytime=daytime, phone_24h=acute_24h
            )
            if not (team.phone_daytime or team.phone_24h):
                # A demo built before teams had numbers; numbers an administrator set stay.
                team = care_team_update(
                    team=team, updated_by=None, phone_daytime=daytime, phone_24h=acute_24h
                )
            teams[name] = team
        for person in STAFF:
            for team_name in person.teams:
                team = teams[team_name]
                if not users[person.username].groups.filter(pk=team.group_id).exists():
                    care_team_add_member(
                        team=team, clinician=users[person.username], granted_by=users["admin"]
                    )
        return teams

    # --- patients ---------------------------------------------------------------------------

    def _identity(self, index: int, rng: random.Random, plan: Plan) -> dict[str, object]:
        sex = rng.choice(plan.sexes)
        given = rng.choice(GIVEN_NAMES_F if sex == "female" else GIVEN_NAMES_M)
        age = rng.randint(34, 82)
        dob = self.today - dt.timedelta(days=age * 365 + rng.randint(0, 364))
        return {
            "mrn": f"{MRN_PREFIX}-{index + 1:06d}",
            "given_name": given,
            "family_name": rng.choice(FAMILY_NAMES),
            "date_of_birth": dob,
            "sex": sex,
            "primary_diagnosis": plan.diagnosis,
            "icd10_code": plan.icd10,
            "stage": rng.choice(plan.stages),
            "ecog": rng.choice((0, 0, 1, 1, 2)),
            "phone": f"07700 9{rng.randint(10000, 99999)}",
            "medical_history": rng.choice(
                (
                    "Hypertension, well controlled.",
                    "Type 2 diabetes on metformin.",
                    "No significant history.",
                    "Previous DVT (2019).",
                )
            ),
        }

    def ensure_dose_banding(self) -> None:
        """Set the demo pharmacy's dose-banding tolerance on the drugs pharmacies commonly band.

        A pharmacy's own choice, not clinical reference data (so not a migration): NHS
        England's dose-banding principle allows at most 5% from the calculated dose, and
        this demo pharmacy bands these drugs at that. A tolerance an administrator has set
        already stays as it is.
        """
        for drug in Drug.objects.filter(
            name__in=DEMO_BANDED_DRUGS, dose_banding_tolerance_percent__isnull=True
        ):
            drug.dose_banding_tolerance_percent = DEMO_BANDING_TOLERANCE_PERCENT
            drug.full_clean()
            drug.save()

    def build_realistic(
        self, count: int, users: dict[str, User], teams: dict[str, CareTeam]
    ) -> int:
        self.ensure_dose_banding()
        built = 0
        for index in range(count):
            mrn = f"{MRN_PREFIX}-{index + 1:06d}"
            if Patient.objects.filter(mrn=mrn).exists():
                continue  # safe to run twice
            rng = random.Random(self.seed + index)
            plan = PLANS[index % len(PLANS)]
            with transaction.atomic():
                self._realistic_patient(index, rng, plan, users, teams)
            built += 1
            self.progress(index + 1, count)
        return built

    def _realistic_patient(
        self,
        index: int,
        rng: random.Random,
        plan: Plan,
        users: dict[str, User],
        teams: dict[str, CareTeam],
    ) -> None:
        team = teams[plan.team]
        oncologist = users["dr.okafor" if plan.team == GI_TEAM else "dr.moreau"]
        nurse = users["nurse.lindqvist" if plan.team == GI_TEAM else "nurse.osei"]
        pharmacist = users["pharm.haddad"]
        identity = self._identity(index, rng, plan)
        regimen = self.regimens[plan.regimen]
        phases = list(regimen.phases.all())
        total_cycles = sum(p.planned_cycles for p in phases)
        # Patients at every stage: not started yet, mid-course, nearly done.
        elapsed = (index * 7) % (total_cycles + 2) - 1
        length = phases[0].cycle_length_days
        start = _on_a_weekday(
            self.today + dt.timedelta(days=4)
            if elapsed < 0
            else self.today - dt.timedelta(days=elapsed * length + rng.randint(1, 6))
        )
        identity["diagnosed_on"] = _diagnosed_before(start, index)
        patient = patient_create(created_by=oncologist, care_team=team, **identity)
        height = Decimal(rng.randint(152, 190))
        weight = Decimal(rng.randint(52, 104))
        measurement_record(
            patient=patient,
            measured_on=min(start, self.today) - dt.timedelta(days=3),
            height_cm=height,
            weight_kg=weight,
            recorded_by=nurse,
        )
        self._allergies(index, patient, nurse, oncologist)
        course = course_start(
            patient=patient,
            regimen=regimen,
            start_date=start,
            intent=regimen.intent,
            created_by=oncologist,
            confirm_past_start=True,  # the demo's history: courses that began months ago
            # Patient 3 continues oxaliplatin with premedication after a mild infusion reaction.
            confirm_allergy=True,
            confirm_reason="Mild infusion reaction only: continue with premedication and a "
            "slower infusion, as agreed with the patient.",
        )
        baselines = {loinc: value * rng.uniform(0.85, 1.15) for loinc, value in BASELINES.items()}
        reduced = False
        for number in range(1, total_cycles + 1):
            cycle = ChemoCycle.objects.select_related("phase").get(course=course, number=number)
            if cycle.planned_start >= self.today:
                # Pre-cycle bloods for the next cycle: usually fresh, sometimes low or missing.
                if cycle.planned_start <= self.today + dt.timedelta(days=3) and index % 5 != 4:
                    low = 0.3 if index % 6 == 1 else 1.0
                    self._labs(
                        patient,
                        {**baselines, "751-8": baselines["751-8"] * low},
                        self.today - dt.timedelta(days=1),
                        nurse,
                        0,
                        0.0,
                        chemistry=True,
                    )
                    measurement_record(
                        patient=patient,
                        measured_on=self.today - dt.timedelta(days=1),
                        height_cm=None,
                        weight_kg=weight,
                        recorded_by=nurse,
                    )
                break
            self._labs(
                patient,
                baselines,
                cycle.planned_start - dt.timedelta(days=1),
                nurse,
                0,
                0.0,
                chemistry=True,
            )
            if number > 1 and rng.random() < 0.12:
                cycle = cycle_delay(
                    cycle=cycle,
                    days=7,
                    by=oncologist,
                    reason="ANC 1.2 ×10³/µL on the pre-cycle check: delayed 7 days per protocol.",
                )
                if cycle.planned_start >= self.today:
                    break
            # Weighed on the day of every cycle: each dose is computed from a current weight.
            weight -= Decimal(rng.choice([0, 0, 1]))
            measurement_record(
                patient=patient,
                measured_on=cycle.planned_start,
                height_cm=None,
                weight_kg=weight,
                recorded_by=nurse,
            )
            try:
                cycle = cycle_give(cycle=cycle, actual_start=cycle.planned_start, given_by=nurse)
            except PermissionDenied:
                # The pre-cycle check did not clear it (a borderline count): giving it anyway
                # is the oncologist's decision, with the reason kept on the cycle.
                cycle = cycle_give(
                    cycle=cycle,
                    actual_start=cycle.planned_start,
                    given_by=oncologist,
                    override_reason="Counts reviewed: proceed at full dose.",
                )
            self._administer(cycle, nurse, pharmacist)
            depth = plan.nadir_depth * (0.8 if reduced else 1.0)
            nadir_day = cycle.planned_start + dt.timedelta(days=10)
            if nadir_day < self.today:
                self._labs(patient, baselines, nadir_day, nurse, 11, depth)
            self._side_effects(patient, cycle, plan, rng, nurse, oncologist)
            if number == 3 and not reduced and rng.random() < 0.3:
                term = self.terms["Neutrophil count decreased"]
                side_effect_record(
                    patient=patient,
                    term=term,
                    grade=3,
                    onset=nadir_day if nadir_day < self.today else cycle.planned_start,
                    recorded_by=oncologist,
                    cycle=cycle,
                    description="Nadir ANC 0.8 with no fever.",
                )
                if number < total_cycles:
                    dose_modification_record(
                        course=course,
                        from_cycle_number=number + 1,
                        percent=Decimal("80"),
                        created_by=oncologist,
                        reason="Grade 3 neutropenia in cycle 3: 80% dose from cycle 4 (protocol).",
                    )
                    reduced = True
        if plan.marker_loinc:
            self._marker_series(patient, start, plan.marker_loinc, rng, nurse)

    def _allergies(self, index: int, patient: Patient, nurse: User, oncologist: User) -> None:
        """A few allergies (one severe paclitaxel reaction), several "no known allergies", and
        some charts where nobody has asked yet; one entry marked entered in error."""
        entries = DEMO_ALLERGIES.get(index, ())
        for substance, category, severity, reaction in entries:
            allergy_record(
                patient=patient,
                substance=substance,
                category=category,
                severity=severity,
                reaction=reaction,
                recorded_by=nurse,
            )
        wrong_index, wrong_substance, reason = DEMO_ALLERGY_IN_ERROR
        if index == wrong_index:
            wrong = allergy_record(patient=patient, substance=wrong_substance, recorded_by=nurse)
            allergy_mark_entered_in_error(allergy=wrong, by=oncologist, reason=reason)
        if not entries and index % 2 == 0:
            patient_no_known_allergies_record(patient=patient, recorded_by=nurse)

    def _administer(self, cycle: ChemoCycle, nurse: User, pharmacist: User) -> None:
        patient = cycle.course.patient
        patient.refresh_from_db()
        if not allergy_status_recorded(patient=patient):
            # Verification needs an allergy status: the pharmacist asked, and there were none.
            # Charts without treatment yet keep "not recorded".
            patient_no_known_allergies_record(patient=patient, recorded_by=pharmacist)
        # Patient 3 continues oxaliplatin with premedication after a mild reaction.
        cycle_doses_verify(cycle=cycle, by=pharmacist, confirm_allergy=True)
        for regimen_drug in cycle.phase.drugs.all():
            from treatments.models import parse_days

            for day in parse_days(regimen_drug.days):
                day_date = cycle.planned_start + dt.timedelta(days=day - 1)
                if day_date >= self.today:
                    break
                administration_record(
                    cycle=cycle,
                    regimen_drug=regimen_drug,
                    day_of_cycle=day,
                    given_at=aware(day_date, 10, 15),
                    administered_by=nurse,
                    verified_by=pharmacist,
                    confirm_allergy=True,  # patient 3's oxaliplatin, with premedication
                    # Paclitaxel's required premedication (the regimen's supportive care, seeded
                    # by treatments/0015) was given before it.
                    confirm_premedication=True,
                )

    def _labs(
        self,
        patient: Patient,
        baselines: dict[str, float],
        day: dt.date,
        nurse: User,
        day_of_cycle: int,
        depth: float,
        *,
        chemistry: bool = False,
    ) -> None:
        if day >= self.today + dt.timedelta(days=1):
            return
        loincs = COUNT_LOINCS + (CHEMISTRY_LOINCS if chemistry else ())
        for loinc in loincs:
            test = self.tests[loinc]
            value = baselines[loinc] * nadir_factor(
                day_of_cycle, depth * DEPTH_BY_LOINC.get(loinc, 0.0)
            )
            lab_result_record(
                patient=patient,
                test=test,
                value=Decimal(str(round(value, test.decimal_places))),
                unit=test.unit,
                collected_at=aware(day),
                recorded_by=nurse,
            )

    def _marker_series(
        self, patient: Patient, start: dt.date, loinc: str, rng: random.Random, nurse: User
    ) -> None:
        test = self.tests[loinc]
        value = rng.uniform(6.0, 18.0)
        day = start - dt.timedelta(days=7)
        while day < self.today:
            lab_result_record(
                patient=patient,
                test=test,
                value=Decimal(str(round(value, 1))),
                unit=test.unit,
                collected_at=aware(day),
                recorded_by=nurse,
            )
            value *= rng.uniform(0.7, 0.95)
            day += dt.timedelta(days=28)

    def _side_effects(
        self,
        patient: Patient,
        cycle: ChemoCycle,
        plan: Plan,
        rng: random.Random,
        nurse: User,
        oncologist: User,
    ) -> None:
        for term_name in plan.typical_effects:
            if rng.random() < 0.25:
                term = self.terms[term_name]
                grade = min(term.max_grade, rng.choice((1, 1, 1, 2, 2)))
                onset = min(
                    cycle.planned_start + dt.timedelta(days=rng.randint(1, 6)),
                    self.today - dt.timedelta(days=1),
                )
                side_effect_record(
                    patient=patient,
                    term=term,
                    grade=grade,
                    onset=max(onset, cycle.planned_start),
                    recorded_by=rng.choice((nurse, oncologist)),
                    cycle=cycle,
                )

    def link_portal_patient(self) -> User | None:
        patient = Patient.objects.filter(mrn=f"{MRN_PREFIX}-000001").first()
        if patient is None or patient.portal_user_id:
            return None
        user = User(
            username=PORTAL_PATIENT.username,
            first_name=patient.given_name,
            last_name=patient.family_name,
            role="patient",
        )
        user.set_password(DEMO_PASSWORD)
        user.full_clean()
        user.save()
        patient.portal_user = user
        patient.save(update_fields=["portal_user", "updated_at"])
        return user

    # --- bulk (benchmark sizes) ----------------------------------------------------------

    def build_bulk(
        self,
        start_index: int,
        count: int,
        teams: dict[str, CareTeam],
        creator: User,
        *,
        history_days: int,
        batch: int = 500,
    ) -> int:
        built = 0
        for first in range(start_index, start_index + count, batch):
            size = min(batch, start_index + count - first)
            built += self._bulk_batch(first, size, teams, creator, history_days)
            self.progress(first - start_index + size, count)
        return built

    def _bulk_batch(
        self, first: int, size: int, teams: dict[str, CareTeam], creator: User, history_days: int
    ) -> int:
        mrns = [f"{MRN_PREFIX}-{i + 1:06d}" for i in range(first, first + size)]
        existing = set(Patient.objects.filter(mrn__in=mrns).values_list("mrn", flat=True))
        rows: list[tuple[int, random.Random, Plan, Patient]] = []
        for index in range(first, first + size):
            if f"{MRN_PREFIX}-{index + 1:06d}" in existing:
                continue
            rng = random.Random(self.seed + index)
            plan = PLANS[index % len(PLANS)]
            rows.append(
                (
                    index,
                    rng,
                    plan,
                    Patient(
                        care_team=teams[plan.team],
                        # Before the earliest day a bulk course may start (history_days ago).
                        diagnosed_on=_diagnosed_before(
                            self.today - dt.timedelta(days=history_days), index
                        ),
                        **self._identity(index, rng, plan),
                    ),
                )
            )
        if not rows:
            return 0
        with transaction.atomic():
            patients = Patient.objects.bulk_create([row[3] for row in rows])
            for team in teams.values():
                team_patients = Patient.objects.filter(
                    pk__in=[p.pk for p in patients], care_team=team
                )
                for perm in PATIENT_OBJECT_PERMS:
                    assign_perm(perm, Group.objects.get(pk=team.group_id), team_patients)
            measurements, courses, results = [], [], []
            for (_index, rng, plan, _), patient in zip(rows, patients, strict=True):
                weight = Decimal(rng.randint(52, 104))
                measurements += [
                    BodyMeasurement(
                        patient=patient,
                        measured_on=self.today - dt.timedelta(days=history_days),
                        height_cm=Decimal(rng.randint(152, 190)),
                        weight_kg=weight + 2,
                    ),
                    # Weighed at the last visit, so the next cycle's dose has a current weight.
                    BodyMeasurement(
                        patient=patient,
                        measured_on=self.today - dt.timedelta(days=rng.randint(0, 6)),
                        weight_kg=weight,
                    ),
                ]
                regimen = self.regimens[plan.regimen]
                phases = list(regimen.phases.all())
                phase = phases[0]
                # Somewhere in the course, with at least the last cycle still to give.
                course_days = sum(p.cycle_length_days * p.planned_cycles for p in phases)
                course_days -= phases[-1].cycle_length_days
                start = _on_a_weekday(
                    self.today - dt.timedelta(days=rng.randint(0, min(history_days, course_days)))
                )
                courses.append(
                    Course(
                        patient=patient,
                        regimen=regimen,
                        start_date=start,
                        intent=regimen.intent,
                        status=Course.Status.ACTIVE,
                        created_by=creator,
                    )
                )
                results.extend(
                    self._bulk_labs(
                        patient, rng, plan, start, phase.cycle_length_days, history_days
                    )
                )
            BodyMeasurement.objects.bulk_create(measurements)
            Course.objects.bulk_create(courses)
            nurses = self._team_nurses()
            cycles = [
                cycle
                for course in courses
                for cycle in self._bulk_cycles(course, nurses[course.patient.care_team.name])
            ]
            ChemoCycle.objects.bulk_create(cycles, batch_size=2000)
            # Bulk rows go through no service: each given cycle's history row is written here.
            CycleStatusChange.objects.bulk_create(bulk_status_history(cycles), batch_size=2000)
            insert_lab_rows(results)
        return len(rows)

    @staticmethod
    def _team_nurses() -> dict[str, User]:
        """Each team's nurse (STAFF), who gives the team's bulk-built cycles."""
        usernames = {p.teams[0]: p.username for p in STAFF if p.discipline == "nurse"}
        users = User.objects.in_bulk(list(usernames.values()), field_name="username")
        return {team: users[username] for team, username in usernames.items()}

    def _bulk_cycles(self, course: Course, nurse: User) -> Iterator[ChemoCycle]:
        day, number = course.start_date, 1
        for phase in course.regimen.phases.all():
            for _ in range(phase.planned_cycles):
                given = day < self.today
                yield ChemoCycle(
                    course=course,
                    phase=phase,
                    number=number,
                    planned_start=day,
                    actual_start=day if given else None,
                    end_date=day + dt.timedelta(days=phase.cycle_length_days - 1)
                    if given
                    else None,
                    status=ChemoCycle.Status.GIVEN if given else ChemoCycle.Status.PLANNED,
                    status_changed_by=nurse if given else None,
                    status_changed_at=aware(day, 9, 0) if given else None,
                )
                day += dt.timedelta(days=phase.cycle_length_days)
                number += 1

    def _bulk_labs(
        self,
        patient: Patient,
        rng: random.Random,
        plan: Plan,
        start: dt.date,
        length: int,
        history_days: int,
    ) -> Iterator[tuple[object, ...]]:
        """Weekly counts (and chemistry on day 1) as rows for insert_lab_rows (LAB_COLUMNS)."""
        baselines = {loinc: value * rng.uniform(0.85, 1.15) for loinc, value in BASELINES.items()}
        # The same range rule as lab_result_record (sex- and age-specific ranges win).
        limits = {
            loinc: applied_range_for(
                test=self.tests[loinc], patient=patient, collected_at=aware(self.today)
            )
            for loinc in BASELINES
        }
        now = timezone.now()
        day = self.today - dt.timedelta(days=history_days)
        while day < self.today:
            on_treatment = day >= start
            day_of_cycle = ((day - start).days % length) + 1 if on_treatment else 0
            depth = plan.nadir_depth if on_treatment else 0.0
            collected_at = aware(day)
            for loinc in COUNT_LOINCS + (CHEMISTRY_LOINCS if day_of_cycle in (0, 1) else ()):
                test = self.tests[loinc]
                factor = nadir_factor(day_of_cycle, depth * DEPTH_BY_LOINC.get(loinc, 0.0))
                value = Decimal(str(round(baselines[loinc] * factor, test.decimal_places)))
                applied = limits[loinc]
                yield (
                    patient.pk,
                    test.pk,
                    value,
                    test.unit,
                    collected_at,
                    applied.ref_low,
                    applied.ref_high,
                    applied.critical_low,
                    applied.critical_low_inclusive,
                    applied.critical_high,
                    applied.critical_high_inclusive,
                    interpretation_flag(value, applied).value,
                    False,
                    LabResult.Source.IMPORT.value,
                    "",
                    None,
                    now,
                    "",
                    "",
                )
            day += dt.timedelta(days=7)


def bulk_status_history(cycles: list[ChemoCycle]) -> list[CycleStatusChange]:
    """The history row of each bulk-built cycle that was given (saved cycles, with ids): what
    cycle_give would have written."""
    return [
        status_change_of(cycle, planned_start_before=cycle.planned_start)
        for cycle in cycles
        if cycle.status == ChemoCycle.Status.GIVEN
    ]


LAB_COLUMNS = (
    "patient_id",
    "test_id",
    "value",
    "unit",
    "collected_at",
    "ref_low",
    "ref_high",
    "critical_low",
    "critical_low_inclusive",
    "critical_high",
    "critical_high_inclusive",
    "flag",
    "is_released",
    "source",
    "note",
    "recorded_by_id",
    "created_at",
    "acknowledgement_note",
    "reported_unit",
)


def insert_lab_rows(rows: list[tuple[object, ...]]) -> None:
    """Millions of synthetic lab rows for benchmark databases, fast.

    The ORM's bulk_create spends ~300 us a row preparing values; COPY (PostgreSQL) and
    executemany (SQLite) take the rows as they are. Synthetic seed data only: these rows go
    through no service and no signal, which is why this lives in the demo builder.
    """
    table = LabResult._meta.db_table
    columns = ", ".join(LAB_COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        adapt_time = connection.ops.adapt_datetimefield_value
        prepared = [
            (
                *row[:2],
                str(row[2]),
                row[3],
                adapt_time(row[4]),
                *(str(v) if isinstance(v, Decimal) else v for v in row[5:16]),
                adapt_time(row[16]),
                *row[17:],
            )
            for row in rows
        ]
        placeholders = ", ".join(["%s"] * len(LAB_COLUMNS))
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", prepared)  # noqa: S608 - fixed identifiers


def _diagnosed_before(start: dt.date, index: int) -> dt.date:
    """A plausible date of diagnosis for a course starting on `start`: 3 to 9 weeks before it
    (biopsy, staging scans, the multidisciplinary meeting, then consent). From the index, not
    the patient's random stream, so the rest of the demo data stays as it was."""
    return start - dt.timedelta(days=21 + (index * 11) % 43)


def _on_a_weekday(day: dt.date) -> dt.date:
    """The Friday before a Saturday or Sunday: a day unit's courses start on weekdays, and
    their cycles (whole weeks long) stay on the same weekday."""
    return day - dt.timedelta(days=max(0, day.weekday() - 4))
