"""Non-medical SACT prescribers: nurse and pharmacist independent prescribers the trust
authorised to prescribe cycles after an oncologist's decision to treat (User.sact_prescriber).
Every existing user gets False, so nobody gains a permission by this migration."""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_encrypt_mfa_secrets"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="sact_prescriber",
            field=models.BooleanField(
                default=False,
                help_text="Nurse and pharmacist independent prescribers authorised by the trust "
                "to prescribe chemotherapy (SACT) cycles after an oncologist's decision to "
                "treat: dose levels, delaying, cancelling and releasing held cycles. Starting "
                "and stopping a course stay with the oncologist.",
                verbose_name="Non-medical SACT prescriber",
            ),
        ),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("sact_prescriber", False),
                    models.Q(("discipline__in", ["nurse", "pharmacist"]), ("role", "clinician")),
                    _connector="OR",
                ),
                name="sact_prescriber_is_nurse_or_pharmacist",
                violation_error_message="Only a nurse or a pharmacist clinician is a non-medical "
                "SACT prescriber.",
            ),
        ),
    ]
