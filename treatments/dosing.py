"""Dose calculation (DOMAIN.md section 3): Mosteller BSA, mg/kg, Cockcroft-Gault and Calvert.

The formula functions are pure and work in Decimal only: a stored dose must never carry a
binary floating-point error. `dose_compute` gathers the inputs from the patient's record and
returns every one of them, so that an administration can show how its dose was made (ASCO/ONS
2024: the second checker verifies the calculation *and its inputs*).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from oncoplanner.dates import day_text
from patients.models import (
    BodyMeasurement,
    MeasurementKey,
    Patient,
    latest_measurement,
    latest_measurements,
)
from treatments.models import Administration, DoseBasis

if TYPE_CHECKING:
    from treatments.models import RegimenDrug

Number = Decimal | int | str

TWO_DP = Decimal("0.01")
ONE_DP = Decimal("0.1")
# Cockcroft-Gault estimates above ~125 mL/min overstate renal function and would overdose
# carboplatin; capping GFR at 125 is the common practice DOMAIN.md cites.
DEFAULT_GFR_CAP = Decimal("125")

BASIS_FORMULA = {
    DoseBasis.MG_M2: Administration.Formula.MOSTELLER,
    DoseBasis.MG_KG: Administration.Formula.WEIGHT,
    DoseBasis.AUC: Administration.Formula.CALVERT,
    DoseBasis.FLAT: Administration.Formula.FLAT,
}


def to_decimal(value: Number, name: str) -> Decimal:
    """A finite, positive Decimal; floats go through str() so 0.1 stays 0.1."""
    if isinstance(value, float):
        value = str(value)
    try:
        result = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{name} is not a number: {value!r}") from None
    if not result.is_finite() or result <= 0:
        raise ValueError(f"{name} must be a positive number, not {value!r}")
    return result


def round_mg(value: Decimal) -> Decimal:
    """Doses are given to 0.1 mg, rounded half up."""
    return value.quantize(ONE_DP, rounding=ROUND_HALF_UP)


def bsa_mosteller(height_cm: Number, weight_kg: Number) -> Decimal:
    """BSA (m²) = sqrt(height cm x weight kg / 3600), to 2 dp.

    No cap at 2.0 m²: ASCO's obesity guideline doses on actual body weight and argues against
    capping, because capping under-doses curative treatment.
    """
    height = to_decimal(height_cm, "height_cm")
    weight = to_decimal(weight_kg, "weight_kg")
    return (height * weight / Decimal(3600)).sqrt().quantize(TWO_DP, rounding=ROUND_HALF_UP)


def crcl_cockcroft_gault(
    age: int,
    weight_kg: Number,
    creatinine_mg_dl: Number,
    sex: str,
    cap: Number | None = DEFAULT_GFR_CAP,
) -> Decimal:
    """Creatinine clearance (mL/min) = (140 - age) x weight x (0.85 if female) / (72 x Cr), 2 dp.

    `sex` is "female" or "male": the formula has no value for anything else, so the caller
    must decide rather than this function guessing. `cap=None` returns the raw estimate.
    """
    if sex not in {"female", "male"}:
        raise ValueError(f"Cockcroft-Gault needs sex female or male, not {sex!r}")
    if not 0 <= age < 140:
        raise ValueError(f"age out of range for Cockcroft-Gault: {age!r}")
    weight = to_decimal(weight_kg, "weight_kg")
    creatinine = to_decimal(creatinine_mg_dl, "creatinine_mg_dl")
    crcl = Decimal(140 - age) * weight / (Decimal(72) * creatinine)
    if sex == "female":
        crcl *= Decimal("0.85")
    crcl = crcl.quantize(TWO_DP, rounding=ROUND_HALF_UP)
    if cap is not None:
        crcl = min(crcl, to_decimal(cap, "cap"))
    return crcl


def carboplatin_calvert(auc: Number, gfr: Number) -> Decimal:
    """Calvert: carboplatin dose (mg) = target AUC x (GFR + 25), to 0.1 mg.

    Pass the already-capped GFR (see crcl_cockcroft_gault).
    """
    return round_mg(to_decimal(auc, "auc") * (to_decimal(gfr, "gfr") + Decimal(25)))


@dataclass(frozen=True)
class DoseCalculation:
    """One computed dose and everything it was computed from (JSON-safe `inputs`)."""

    standard_dose_mg: Decimal
    dose_mg: Decimal
    percent: Decimal
    formula: str  # an Administration.Formula value
    capped: bool = False
    inputs: dict[str, Any] = field(default_factory=dict)


def weight_too_old(*, measured_on: dt.date, on_date: dt.date) -> bool:
    """Whether a weight taken on `measured_on` is too old to dose from on `on_date`."""
    return (on_date - measured_on).days > settings.DOSING_WEIGHT_MAX_AGE_DAYS


def weight_age_check(*, measured_on: dt.date, on_date: dt.date) -> None:
    """ValidationError (weight_kg) when the weight is too old to dose from on `on_date`."""
    if not weight_too_old(measured_on=measured_on, on_date=on_date):
        return
    max_age = settings.DOSING_WEIGHT_MAX_AGE_DAYS
    age = (on_date - measured_on).days
    raise ValidationError(
        {
            "weight_kg": (
                f"The latest weight is from {day_text(measured_on)}, {age} days before "
                f"{day_text(on_date)}; a dose needs a weight from the last {max_age} days. "
                "Weigh the patient and record it on the chart."
            )
        }
    )


@dataclass(frozen=True)
class WeightChange:
    """A new weight against the weight the patient's last dose was computed from."""

    percent: Decimal  # signed: negative is weight lost
    dosed_weight_kg: Decimal
    dosed_on: dt.date

    @property
    def needs_dose_review(self) -> bool:
        return abs(self.percent) >= settings.DOSING_WEIGHT_CHANGE_REVIEW_PERCENT


def weight_change_since_last_dose(*, patient: Patient, weight_kg: Number) -> WeightChange | None:
    """How far `weight_kg` is from the weight behind the patient's latest weight-based dose;
    None when no dose was computed from a weight yet."""
    last = (
        Administration.objects.filter(cycle__course__patient=patient, inputs__has_key="weight_kg")
        .order_by("-given_at", "-pk")
        .values_list("inputs", "given_at")
        .first()
    )
    if last is None:
        return None
    inputs, given_at = last
    dosed = Decimal(inputs["weight_kg"])
    # The clinic's day of the dose (a dose at 00:30 BST was given that day, not UTC's day before).
    dosed_on = inputs.get("on_date") or timezone.localdate(given_at).isoformat()
    change = (to_decimal(weight_kg, "weight_kg") - dosed) / dosed * 100
    return WeightChange(
        percent=change.quantize(ONE_DP, rounding=ROUND_HALF_UP),
        dosed_weight_kg=dosed,
        dosed_on=dt.date.fromisoformat(dosed_on),
    )


def weight_change_needing_review(*, patient: Patient, weight_kg: Number) -> WeightChange | None:
    """The change against the last dose's weight when it is large enough that the dose must be
    reviewed (settings.DOSING_WEIGHT_CHANGE_REVIEW_PERCENT); None otherwise."""
    change = weight_change_since_last_dose(patient=patient, weight_kg=weight_kg)
    return change if change is not None and change.needs_dose_review else None


CREATININE_LOINC = "2160-0"


def _recorded_creatinine(patient: Patient, on_date: dt.date, inputs: dict[str, Any]) -> Decimal:
    """The latest serum creatinine on record by the end of `on_date`, if recent enough.

    Calvert dosing had read only a creatinine typed into the form, with no date and no check
    against the result on record (a µmol/L value typed as mg/dL goes unseen). The result on
    record is used, with its date, unless one is typed on purpose.
    """
    from labs.models import LabResult  # labs depends on treatments, not the reverse

    end_of_day = timezone.make_aware(dt.datetime.combine(on_date, dt.time.max))
    result = (
        LabResult.objects.filter(
            patient=patient, test__loinc=CREATININE_LOINC, collected_at__lte=end_of_day
        )
        .order_by("-collected_at", "-pk")
        .first()
    )
    max_age = settings.CALVERT_CREATININE_MAX_AGE_DAYS
    if result is None:
        raise ValidationError(
            {
                "creatinine_mg_dl": "Calvert dosing needs a serum creatinine: none is on "
                f"record by {day_text(on_date)}. Record the result, or enter it (mg/dL)."
            }
        )
    collected_on = timezone.localdate(result.collected_at)
    if (on_date - collected_on).days > max_age:
        raise ValidationError(
            {
                "creatinine_mg_dl": f"The latest creatinine ({result.value} {result.unit}, "
                f"{day_text(collected_on)}) is more than {max_age} days old for "
                f"{day_text(on_date)}. Record a new result, or enter it (mg/dL)."
            }
        )
    inputs["creatinine_source"] = "lab"
    inputs["creatinine_collected_on"] = collected_on.isoformat()
    inputs["creatinine_result_id"] = result.pk
    return Decimal(result.value).quantize(Decimal("0.01"))  # stored to 4 places: "1.00"


# latest_measurement's signature: the newest of a column (height_cm, weight_kg) on or before a day.
MeasurementReader = Callable[[Patient, str, dt.date], BodyMeasurement | None]

# The measurements dose_compute reads for a dose basis: a weight for every dose by body size
# (mg/m², mg/kg, and Cockcroft-Gault's GFR for Calvert), a height for BSA only.
MEASUREMENTS_READ: dict[str, tuple[str, ...]] = {
    DoseBasis.MG_M2: ("weight_kg", "height_cm"),
    DoseBasis.MG_KG: ("weight_kg",),
    DoseBasis.AUC: ("weight_kg",),
    DoseBasis.FLAT: (),
}


def measurements_read(regimen_drug: RegimenDrug) -> tuple[str, ...]:
    """The columns dose_compute reads, on or before the dose's day, to dose `regimen_drug`."""
    return MEASUREMENTS_READ.get(regimen_drug.dose_basis, ())


def remembered_measurements(wanted: Iterable[MeasurementKey] = ()) -> MeasurementReader:
    """latest_measurement, each (patient, column, day) read once. The doses of a cycle share
    the patient's height and weight (mFOLFOX6 has four mg/m² doses on day 1, each of which read
    both), and a list of cycles would read them once per dose. `wanted`: the (patient id,
    column, day) questions the caller knows it will ask (cycle_dose_plans: those of every dose
    to give of every cycle), read together in one query (latest_measurements, the rule of
    latest_measurement itself); a question not among them is read when asked. Same rows, same
    choice: only the repeated reads go. For one computation (a cycle's plan, a list of plans);
    a measurement recorded after it is read by the next."""
    read = latest_measurements(wanted)

    def latest(patient: Patient, column: str, on_date: dt.date) -> BodyMeasurement | None:
        key = (patient.pk, column, on_date)
        if key not in read:
            read.update(latest_measurements([key]))
        return read[key]

    return latest


def dose_compute(
    *,
    regimen_drug: RegimenDrug,
    patient: Patient,
    on_date: dt.date,
    percent: Number = Decimal(100),
    creatinine_mg_dl: Number | None = None,
    read_measurement: MeasurementReader = latest_measurement,
) -> DoseCalculation:
    """Compute the dose of `regimen_drug` for `patient` on `on_date` at `percent` of standard.

    Reads the patient's latest height and weight on or before `on_date`. A missing input, or a
    weight older than settings.DOSING_WEIGHT_MAX_AGE_DAYS, is a ValidationError naming it
    (height_cm, weight_kg, creatinine_mg_dl, sex): a dose is never computed from a guess. RegimenDrug.max_dose_mg caps the final dose (e.g. vincristine 2 mg),
    and the result says so. Writes nothing. `read_measurement`: how the height and weight are
    read (remembered_measurements, for the doses of a plan).
    """
    try:
        pct = to_decimal(percent, "percent")
    except ValueError as exc:
        raise ValidationError({"percent": str(exc)}) from None
    basis = regimen_drug.dose_basis
    standard = Decimal(regimen_drug.dose)
    inputs: dict[str, Any] = {
        "on_date": on_date.isoformat(),
        "drug": regimen_drug.drug.name,
        "dose_basis": basis,
        "standard_dose": str(standard),
        "percent": str(pct),
    }

    def need_weight() -> Decimal:
        row = read_measurement(patient, "weight_kg", on_date)
        if row is None or row.weight_kg is None:
            raise ValidationError(
                {"weight_kg": f"No weight recorded on or before {day_text(on_date)}."}
            )
        weight_age_check(measured_on=row.measured_on, on_date=on_date)
        inputs["weight_kg"] = str(row.weight_kg)
        inputs["weight_measured_on"] = row.measured_on.isoformat()
        return Decimal(row.weight_kg)

    if basis == DoseBasis.MG_M2:
        weight = need_weight()
        height_row = read_measurement(patient, "height_cm", on_date)
        if height_row is None or height_row.height_cm is None:
            raise ValidationError(
                {"height_cm": f"No height recorded on or before {day_text(on_date)}."}
            )
        inputs["height_cm"] = str(height_row.height_cm)
        inputs["height_measured_on"] = height_row.measured_on.isoformat()
        bsa = bsa_mosteller(height_row.height_cm, weight)
        inputs["bsa_m2"] = str(bsa)
        inputs["bsa_formula"] = "mosteller"
        standard_mg = standard * bsa
    elif basis == DoseBasis.MG_KG:
        standard_mg = standard * need_weight()
    elif basis == DoseBasis.AUC:
        weight = need_weight()
        if creatinine_mg_dl is None:
            creatinine_mg_dl = _recorded_creatinine(patient, on_date, inputs)
        else:
            inputs["creatinine_source"] = "typed"
        try:
            creatinine = to_decimal(creatinine_mg_dl, "creatinine_mg_dl")
        except ValueError as exc:
            raise ValidationError({"creatinine_mg_dl": str(exc)}) from None
        if patient.sex not in {"female", "male"}:
            raise ValidationError(
                {"sex": "Cockcroft-Gault needs the patient's sex recorded as female or male."}
            )
        age = patient.age_on(on_date)
        raw = crcl_cockcroft_gault(age, weight, creatinine, patient.sex, cap=None)
        gfr = min(raw, DEFAULT_GFR_CAP)
        inputs.update(
            {
                "age_years": age,
                "sex": patient.sex,
                "creatinine_mg_dl": str(creatinine),
                "crcl_cockcroft_gault_ml_min": str(raw),
                "gfr_cap_ml_min": str(DEFAULT_GFR_CAP),
                "gfr_ml_min": str(gfr),
                "gfr_capped": raw > DEFAULT_GFR_CAP,
                "auc": str(standard),
            }
        )
        standard_mg = standard * (gfr + Decimal(25))
    else:
        standard_mg = standard

    calculated_mg = round_mg(standard_mg)
    # The full (100%) dose is the calculated one, capped (vincristine 2 mg); a reduced level
    # is a share of that full dose. Taken before the cap, 80% of a 3.1 mg calculation was
    # 2.5 mg, capped back to 2 mg: the full dose, recorded as a reduction (a pharmacist's
    # find), and every patient above 1.79 m² got no reduction at all.
    full_mg = calculated_mg
    capped = False
    if regimen_drug.max_dose_mg is not None:
        inputs["max_dose_mg"] = str(regimen_drug.max_dose_mg)
        if calculated_mg > regimen_drug.max_dose_mg:
            inputs["uncapped_dose_mg"] = str(calculated_mg)
            full_mg = round_mg(Decimal(regimen_drug.max_dose_mg))
            capped = True
        inputs["level_after_cap"] = pct != 100
    dose_mg = round_mg(full_mg * pct / Decimal(100))
    inputs["capped"] = capped
    inputs["calculated_dose_mg"] = str(calculated_mg)
    inputs["standard_dose_mg"] = str(full_mg)
    inputs["dose_mg"] = str(dose_mg)
    return DoseCalculation(
        standard_dose_mg=full_mg,
        dose_mg=dose_mg,
        percent=pct.quantize(ONE_DP, rounding=ROUND_HALF_UP),
        formula=BASIS_FORMULA[DoseBasis(basis)],
        capped=capped,
        inputs=inputs,
    )
