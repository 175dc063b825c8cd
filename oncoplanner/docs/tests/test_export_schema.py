"""manage.py export_schema and its generators (oncoplanner/schema_export.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import models

from oncoplanner import schema_export

pytestmark = pytest.mark.django_db


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    call_command("export_schema", "--out", str(tmp_path))
    return tmp_path


def _domain_models() -> list[type[models.Model]]:
    return schema_export.documented_models()


def test_export_schema_writes_every_document(exported: Path) -> None:
    assert (exported / "classes.json").is_file()
    assert (exported / "er-diagram.mmd").is_file()
    assert (exported / "data-dictionary.md").is_file()
    names = {p.name for p in (exported / "json-schema").iterdir()}
    assert {f"{m.__name__}.schema.json" for m in _domain_models()} == names


def test_export_schema_covers_the_domain_apps_and_user() -> None:
    labels = {m._meta.label for m in _domain_models()}
    for label in (
        "patients.Patient",
        "treatments.Course",
        "treatments.ChemoCycle",
        "labs.LabResult",
        "audit.AccessLog",
        "accounts.User",
    ):
        assert label in labels
    for app in schema_export.DOMAIN_APPS:
        for model in apps.get_app_config(app).get_models():
            assert model._meta.label in labels


def test_export_schema_seed_json_format(exported: Path) -> None:
    data = json.loads((exported / "classes.json").read_text())
    classes = {c["className"]: c["fields"] for c in data["classes"]}
    assert classes["Course"]["patient"] == {
        "type": "ForeignKey",
        "required": True,
        "targetClass": "Patient",
    }
    assert classes["Patient"]["mrn"]["required"] is True
    assert classes["Patient"]["phone"]["required"] is False
    assert classes["Patient"]["mrn"]["targetClass"] is None


def test_export_schema_json_schema_has_every_field(exported: Path) -> None:
    for model in _domain_models():
        schema = json.loads(
            (exported / "json-schema" / f"{model.__name__}.schema.json").read_text()
        )
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["type"] == "object"
        excluded = schema_export.EXCLUDED_FIELDS.get(model._meta.label, set())
        expected = {
            f.name
            for f in [*model._meta.concrete_fields, *model._meta.many_to_many]
            if f.name not in excluded
        }
        assert set(schema["properties"]) == expected
        assert set(schema["required"]) <= expected


def test_export_schema_json_schema_types_and_choices(exported: Path) -> None:
    schema = json.loads((exported / "json-schema" / "LabResult.schema.json").read_text())
    props = schema["properties"]
    assert props["value"]["type"] == "string"
    assert props["value"]["format"] == "decimal"
    assert props["collected_at"]["format"] == "date-time"
    assert props["is_released"]["type"] == "boolean"
    assert props["patient"]["x-target"] == "Patient"
    assert "HH" in props["flag"]["enum"]
    assert props["released_at"]["type"] == ["string", "null"]
    assert {"patient", "test", "value", "unit", "collected_at"} <= set(schema["required"])


def test_export_schema_json_schema_validates_a_stored_record(exported: Path) -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")  # installed with schemathesis (dev)
    from django.core import serializers

    from labs.tests.factories import LabTestFactory

    schema = json.loads((exported / "json-schema" / "LabTest.schema.json").read_text())
    assert jsonschema_rs.meta.is_valid(schema)
    validator = jsonschema_rs.Draft202012Validator(schema)
    (row,) = json.loads(serializers.serialize("json", [LabTestFactory.create()]))
    record = {"id": row["pk"], **row["fields"]}
    assert validator.is_valid(record), list(validator.iter_errors(record))
    assert not validator.is_valid({**record, "decimal_places": "two"})
    assert not validator.is_valid({**record, "surprise": 1})


def test_export_schema_never_exports_secrets(exported: Path) -> None:
    user = json.loads((exported / "json-schema" / "User.schema.json").read_text())
    assert "password" not in user["properties"]
    text = (exported / "data-dictionary.md").read_text() + (exported / "classes.json").read_text()
    assert "password" not in text
    assert "token_hash" not in text


def test_export_schema_mermaid_has_every_foreign_key(exported: Path) -> None:
    text = (exported / "er-diagram.mmd").read_text()
    assert text.startswith("erDiagram\n")
    documented = {m._meta.label for m in _domain_models()}
    for model in _domain_models():
        for field in model._meta.concrete_fields:
            if field.is_relation and field.related_model._meta.label in documented:
                target = field.related_model.__name__
                assert f"{target} " in text
                line = next(
                    (
                        ln
                        for ln in text.splitlines()
                        if ln.strip().startswith(f"{target} ")
                        and ln.strip().endswith(f'{model.__name__} : "{field.name}"')
                    ),
                    None,
                )
                assert line is not None, (model, field.name)


def test_export_schema_mermaid_cardinalities(exported: Path) -> None:
    text = (exported / "er-diagram.mmd").read_text()
    assert '    Patient ||--o{ Course : "patient"' in text  # required many-to-one
    assert '    User |o--o| Patient : "portal_user"' in text  # optional one-to-one
    assert '    Drug |o--o{ DoseModification : "drug"' in text  # optional many-to-one


def test_export_schema_data_dictionary_markdown(exported: Path) -> None:
    text = (exported / "data-dictionary.md").read_text()
    assert "## Patient (`patients.Patient`)" in text
    assert "| `medical_history` | TextField | Relevant past medical history. | no |  |" in text
    assert "`female` (Female)" in text or "`F`" in text
    assert "| `loinc` | CharField | LOINC | yes |  |" in text


def test_export_schema_is_generated_from_the_models() -> None:
    # A model change shows up without editing any copy: the generators read _meta.
    doc = schema_export.model_doc(apps.get_model("labs.LabTest"))
    assert [f.name for f in doc.fields][:3] == ["id", "loinc", "name"]
