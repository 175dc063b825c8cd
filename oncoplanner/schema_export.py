"""Schema documents generated from the models (never a hand-kept copy).

- ``seed_classes()``: the seed's JSON format ``{"classes": [{"className", "fields": {name:
  {"type", "required", "targetClass"}}}]}``.
- ``json_schemas()``: one JSON Schema (draft 2020-12) per record type.
- ``mermaid_er()``: a Mermaid ``erDiagram`` with every foreign key and its cardinality.
- ``data_dictionary_markdown()``: model, field, type, description, required, choices.

Covered: the domain apps (patients, treatments, labs, audit) and ``accounts.User``. Secrets
never appear: the password hash and token hashes are left out (EXCLUDED_FIELDS).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db import models

DOMAIN_APPS = ("patients", "treatments", "labs", "audit")
EXTRA_MODELS = ("accounts.User",)
# Secrets and their derivatives: documenting that they exist is enough, and the User model's
# Django internals (password, groups/permissions M2M) say nothing about the care record.
EXCLUDED_FIELDS = {
    "accounts.User": {"password", "groups", "user_permissions"},
    "patients.PatientInvitation": {"token_hash"},
}
JSON_SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class FieldDoc:
    name: str
    type: str  # the Django field class, e.g. "CharField"
    json_type: dict[str, Any]
    required: bool
    description: str
    choices: list[tuple[str, str]]
    target: str | None  # the related model's label for a relation
    relation: str | None  # "many_to_one", "one_to_one", "many_to_many"
    nullable: bool


@dataclass(frozen=True)
class ModelDoc:
    label: str  # "patients.Patient"
    name: str  # "Patient"
    description: str
    fields: list[FieldDoc]


def documented_models() -> list[type[models.Model]]:
    found = [
        model
        for model in apps.get_models()
        if model._meta.app_label in DOMAIN_APPS and not model._meta.auto_created
    ]
    found += [apps.get_model(label) for label in EXTRA_MODELS]
    return sorted(found, key=lambda m: m._meta.label)


def _json_type(field: models.Field) -> dict[str, Any]:
    if isinstance(field, (models.ForeignKey, models.OneToOneField)):
        return _json_type(field.target_field)
    if isinstance(field, models.ManyToManyField):
        return {"type": "array", "items": {"type": "integer"}}
    if isinstance(field, models.BooleanField):
        result: dict[str, Any] = {"type": "boolean"}
    elif isinstance(field, (models.AutoField, models.IntegerField)):
        result = {"type": "integer"}
    elif isinstance(field, models.DecimalField):
        # Decimals travel as strings so no precision is lost (e.g. "1.2500").
        result = {"type": "string", "format": "decimal"}
    elif isinstance(field, models.FloatField):
        result = {"type": "number"}
    elif isinstance(field, models.DateTimeField):
        result = {"type": "string", "format": "date-time"}
    elif isinstance(field, models.DateField):
        result = {"type": "string", "format": "date"}
    elif isinstance(field, models.TimeField):
        result = {"type": "string", "format": "time"}
    elif isinstance(field, models.DurationField):
        result = {"type": "string", "format": "duration"}
    elif isinstance(field, models.UUIDField):
        result = {"type": "string", "format": "uuid"}
    elif isinstance(field, models.EmailField):
        result = {"type": "string", "format": "email"}
    elif isinstance(field, models.JSONField):
        result = {}
    elif isinstance(field, models.GenericIPAddressField):
        result = {"type": "string", "format": "ip"}
    else:
        result = {"type": "string"}
        if getattr(field, "max_length", None):
            result["maxLength"] = field.max_length
    if field.choices and not isinstance(field, models.BooleanField):
        result["enum"] = [value for value, _ in field.flatchoices]
    return result


def _description(field: models.Field) -> str:
    text = str(field.help_text or "").strip()
    verbose = str(field.verbose_name or "").strip()
    if text:
        return text
    return verbose[:1].upper() + verbose[1:] if verbose else ""


def _required(field: models.Field) -> bool:
    if field.primary_key or isinstance(field, models.ManyToManyField):
        return False
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return False
    return not field.null and not field.blank and not field.has_default()


def model_doc(model: type[models.Model]) -> ModelDoc:
    excluded = EXCLUDED_FIELDS.get(model._meta.label, set())
    fields: list[FieldDoc] = []
    for field in [*model._meta.concrete_fields, *model._meta.many_to_many]:
        if field.name in excluded:
            continue
        relation = None
        target = None
        if field.is_relation and field.related_model is not None:
            target = field.related_model._meta.label
            relation = (
                "one_to_one"
                if field.one_to_one
                else "many_to_many"
                if field.many_to_many
                else "many_to_one"
            )
        fields.append(
            FieldDoc(
                name=field.name,
                type=type(field).__name__,
                json_type=_json_type(field),
                required=_required(field),
                description=_description(field),
                choices=[(str(v), str(lbl)) for v, lbl in field.flatchoices]
                if field.choices
                else [],
                target=target,
                relation=relation,
                nullable=field.null,
            )
        )
    doc = (model.__doc__ or "").strip()
    # Django's generated docstring ("Patient(id, mrn, ...)") says nothing: use verbose_name.
    if not doc or doc.startswith(f"{model.__name__}("):
        doc = str(model._meta.verbose_name).capitalize()
    return ModelDoc(
        label=model._meta.label,
        name=model.__name__,
        description=doc.splitlines()[0],
        fields=fields,
    )


def model_docs() -> list[ModelDoc]:
    return [model_doc(model) for model in documented_models()]


def _class_name(label: str) -> str:
    return label.split(".", 1)[1]


# --- the seed's JSON format ----------------------------------------------------------------


def seed_classes(docs: list[ModelDoc] | None = None) -> dict[str, Any]:
    docs = docs if docs is not None else model_docs()
    return {
        "classes": [
            {
                "className": doc.name,
                "fields": {
                    f.name: {
                        "type": f.type,
                        "required": f.required,
                        "targetClass": _class_name(f.target) if f.target else None,
                    }
                    for f in doc.fields
                },
            }
            for doc in docs
        ]
    }


# --- JSON Schema ---------------------------------------------------------------------------


def json_schema(doc: ModelDoc) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for f in doc.fields:
        prop = dict(f.json_type)
        if f.description:
            prop["description"] = f.description
        if f.target:
            prop["x-target"] = _class_name(f.target)
        if f.nullable and "type" in prop:
            prop["type"] = [prop["type"], "null"]
            if "enum" in prop:
                prop["enum"] = [*prop["enum"], None]
        properties[f.name] = prop
    return {
        "$schema": JSON_SCHEMA_DRAFT,
        "$id": f"urn:oncoplanner:schema:{doc.label}",
        "title": doc.name,
        "description": doc.description,
        "type": "object",
        "properties": properties,
        "required": [f.name for f in doc.fields if f.required],
        "additionalProperties": False,
    }


def json_schemas(docs: list[ModelDoc] | None = None) -> dict[str, dict[str, Any]]:
    docs = docs if docs is not None else model_docs()
    return {doc.name: json_schema(doc) for doc in docs}


# --- Mermaid ER diagram --------------------------------------------------------------------

_MERMAID_TYPES = {
    "AutoField": "int",
    "BigAutoField": "bigint",
    "BooleanField": "bool",
    "CharField": "string",
    "TextField": "text",
    "EmailField": "string",
    "DateField": "date",
    "DateTimeField": "datetime",
    "DecimalField": "decimal",
    "JSONField": "json",
    "ForeignKey": "fk",
    "OneToOneField": "fk",
}


def _mermaid_type(f: FieldDoc) -> str:
    return _MERMAID_TYPES.get(f.type, f.type.removesuffix("Field").lower() or "string")


def mermaid_er(docs: list[ModelDoc] | None = None) -> str:
    docs = docs if docs is not None else model_docs()
    documented = {doc.label for doc in docs}
    lines = ["erDiagram"]
    for doc in docs:
        for f in doc.fields:
            if not f.target or f.target not in documented:
                continue
            left = _class_name(f.target)
            if f.relation == "many_to_many":
                card = "}o--o{"
            elif f.relation == "one_to_one":
                card = "|o--o|" if f.nullable else "||--o|"
            else:
                card = "|o--o{" if f.nullable else "||--o{"
            lines.append(f'    {left} {card} {doc.name} : "{f.name}"')
    for doc in docs:
        lines.append(f"    {doc.name} {{")
        for f in doc.fields:
            if f.relation == "many_to_many":
                continue
            key = " PK" if f.name == "id" else " FK" if f.target else ""
            lines.append(f"        {_mermaid_type(f)} {f.name}{key}")
        lines.append("    }")
    return "\n".join(lines) + "\n"


# --- Markdown data dictionary --------------------------------------------------------------


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def data_dictionary_markdown(docs: list[ModelDoc] | None = None) -> str:
    docs = docs if docs is not None else model_docs()
    out = [
        "# OncoPlanner data dictionary",
        "",
        "Generated from the Django models by `manage.py export_schema`; do not edit by hand.",
        "",
    ]
    for doc in docs:
        out += [f"## {doc.name} (`{doc.label}`)", "", _md(doc.description), ""]
        out += ["| Field | Type | Description | Required | Choices |", "|---|---|---|---|---|"]
        for f in doc.fields:
            kind = f"{f.type} → {_class_name(f.target)}" if f.target else f.type
            choices = ", ".join(f"`{v}` ({lbl})" for v, lbl in f.choices)
            out.append(
                f"| `{f.name}` | {_md(kind)} | {_md(f.description)} | "
                f"{'yes' if f.required else 'no'} | {_md(choices)} |"
            )
        out.append("")
    return "\n".join(out)


# --- Writing -------------------------------------------------------------------------------


def export_all(out_dir: Path) -> list[Path]:
    """Write every document under `out_dir`; returns the files written."""
    docs = model_docs()
    out_dir.mkdir(parents=True, exist_ok=True)
    schema_dir = out_dir / "json-schema"
    schema_dir.mkdir(exist_ok=True)
    written = []

    def write(path: Path, text: str) -> None:
        path.write_text(text, encoding="utf-8")
        written.append(path)

    write(out_dir / "classes.json", json.dumps(seed_classes(docs), indent=2) + "\n")
    for name, schema in json_schemas(docs).items():
        write(schema_dir / f"{name}.schema.json", json.dumps(schema, indent=2) + "\n")
    write(out_dir / "er-diagram.mmd", mermaid_er(docs))
    write(out_dir / "data-dictionary.md", data_dictionary_markdown(docs))
    return written
