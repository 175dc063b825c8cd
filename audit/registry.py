"""Which models hold patient data, and how to get from a row to its patient.

One declarative list: every model here gets post_save/post_delete log rows (audit.receivers).
A new PHI model is one new line. audit/tests/test_registry.py walks every installed model and
fails on any model that can reach Patient through foreign keys but is neither here nor in
NOT_PHI, so a forgotten model is caught by the suite, not by an auditor.
"""

from __future__ import annotations

from patients.selectors import PHI_PATIENT_PATHS, patient_id_for  # noqa: F401  (re-exported)

# model label -> dotted path from an instance to its Patient ("" for Patient itself).
# Derived from the access gate's own table, so the gate and the log can never disagree about
# which models are patient data. The last hop is read as `<name>_id`, so a direct foreign key
# costs no query.
PHI_MODELS: dict[str, str] = {
    label: path.replace("__", ".") for label, path in PHI_PATIENT_PATHS.items()
}

# Models that point at a patient but are not themselves patient data, and why.
NOT_PHI: dict[str, str] = {
    "audit.AccessLog": "the log itself; reads of it are logged by the admin and report views",
    "audit.AccessLogPatient": "an index of the log's list views, derived from its patient_ids",
    "patients.PatientUserObjectPermission": "permission rows; grants are logged as access changes",
    "patients.PatientGroupObjectPermission": "permission rows; grants are logged as access changes",
}
