"""The append-only access log (HIPAA 164.312(b), ONC 170.315(d)(2)).

Rows are written by receivers of the domain apps' signals, inside the sender's transaction.
The model refuses updates and deletes; the database refuses them too (see the migrations).

Rows are hash-chained after the fact: a request only INSERTs (no global lock), and
`audit.services.access_log_seal` later gives unsealed rows a `seq`, the previous row's hash and
their own hash, under a lock on the one-row `AccessLogSeal` head. Filling those three columns,
once, is the only UPDATE the log allows (`AppendOnlyQuerySet.seal_row`, and the PostgreSQL
trigger in migration 0004).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

SEAL_FIELDS = ("seq", "prev_hash", "row_hash")


class _RefusesChanges[M: models.Model](models.QuerySet[M]):
    """Rows are only ever added: bulk updates and deletes are refused."""

    def update(self, **kwargs: Any) -> int:
        raise PermissionError("The access log is append-only.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("The access log is append-only.")


class _AppendOnlyRow(models.Model):
    """A row is written once: saving it again or deleting it is refused."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise PermissionError("The access log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("The access log is append-only.")


class AppendOnlyQuerySet(_RefusesChanges["AccessLog"]):
    def seal_row(self, pk: int, *, seq: int, prev_hash: str, row_hash: str) -> int:
        """The one update the log allows: fill the seal columns of a row that has none yet.

        Narrow on purpose: only the three seal columns, only where row_hash is still NULL, so
        a sealed row can never be re-sealed over a tampered value. Called only by
        audit.services.access_log_seal, under the lock on the seal head.
        """
        unsealed = self.filter(pk=pk, row_hash__isnull=True)
        return models.QuerySet.update(unsealed, seq=seq, prev_hash=prev_hash, row_hash=row_hash)


class AccessLog(_AppendOnlyRow):
    class Action(models.TextChoices):
        CREATE = "create", "Create"
        READ = "read", "Read"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete"
        LIST = "list", "List / search"
        EXPORT = "export", "Export"
        LOGIN = "login", "Login"
        LOGOUT = "logout", "Logout"
        LOGIN_FAILED = "login_failed", "Failed login"
        LOCKOUT = "lockout", "Lockout"
        MFA_CHANGE = "mfa_change", "MFA change"
        ACCESS_CHANGE = "access_change", "Care team / permission change"
        BREAK_GLASS = "break_glass", "Emergency access"

    class Surface(models.TextChoices):
        PAGE = "page", "Page"
        FRAGMENT = "fragment", "HTMX fragment"
        ADMIN = "admin", "Admin"
        API = "api", "REST API"
        GRAPHQL = "graphql", "GraphQL"
        STREAM = "stream", "Live stream"
        EXPORT = "export", "Export"
        COMMAND = "command", "Management command"
        SYSTEM = "system", "System"

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        DENIED = "denied", "Denied"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    username = models.CharField(max_length=150, blank=True, help_text="As it was at the time.")
    user_role = models.CharField(max_length=20, blank=True)
    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    patient_ids = models.JSONField(
        default=list, blank=True, help_text="Every patient the access touched."
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    surface = models.CharField(max_length=10, choices=Surface.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    break_glass = models.BooleanField(default=False)
    detail = models.JSONField(default=dict, blank=True)
    # Hash chain, filled by the sealer (NULL until then). seq is the chain order.
    seq = models.PositiveBigIntegerField(null=True, blank=True, unique=True, editable=False)
    prev_hash = models.CharField(max_length=64, null=True, blank=True, editable=False)
    row_hash = models.CharField(max_length=64, null=True, blank=True, editable=False)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        # Related-object access and internals use the append-only queryset too, so a plain
        # Manager cannot be used as a back door to update() or delete().
        base_manager_name = "objects"
        indexes = [
            models.Index(fields=["patient", "-at"], name="accesslog_patient_time"),
            models.Index(fields=["user", "-at"], name="accesslog_user_time"),
            # The report filters by these and sorts by time: each filter plus the window's
            # order is one index range scan, however large the table grows.
            models.Index(fields=["username", "-at"], name="accesslog_username_time"),
            models.Index(fields=["action", "-at"], name="accesslog_action_time"),
            models.Index(fields=["surface", "-at"], name="accesslog_surface_time"),
            models.Index(fields=["outcome", "-at"], name="accesslog_outcome_time"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action} {self.object_type} {self.object_id}"


class AccessLogSeal(models.Model):
    """The head of the hash chain: one row, locked while a batch of log rows is sealed.

    The verifier compares the chain's last row with this head, so rows cut off the end of the
    log are noticed too.
    """

    last_seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    sealed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "access log seal"

    def __str__(self) -> str:
        return f"seal at seq {self.last_seq}"


class AccessLogPatient(_AppendOnlyRow):
    """One row per patient that a log row about several patients showed (a list or search page,
    a GraphQL list), written with it by audit.services.access_log_record.

    Why: "who accessed this record" must include the list views that showed the patient. Read
    from the log's patient-id lists, that needed a JSON containment test, which no index keeps
    in time order: PostgreSQL walked the log backwards until it had found a hundred lists
    showing the patient, so a rarely listed patient's chart got slower with every list anyone
    opened (34 ms at 200,000 list rows). Here it is an index range on (patient, at).

    Derived from AccessLog.patient_ids (the hash-chained record) and append-only like it.
    `log_id` is not a foreign key: the log is partitioned, and its key is (id, at).

    On PostgreSQL it is partitioned like the log, by the UTC month of `at` (its log row's own
    time; migration 0007): `audit_accesslogpatient_YYYY_MM` plus a DEFAULT, created with the
    log's by access_log_ensure_partitions, primary key (id, at). A month's index rows are in
    the same month as its log rows, so archiving a month detaches both partitions (README,
    "Production") and the verifier's index check still holds for what remains.
    """

    log_id = models.BigIntegerField()
    at = models.DateTimeField()
    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the (patient, at) index below serves it
        related_name="+",
    )

    objects = _RefusesChanges.as_manager()

    class Meta:
        base_manager_name = "objects"
        indexes = [
            models.Index(fields=["patient", "-at", "-log_id"], name="accesslogpatient_time"),
        ]

    def __str__(self) -> str:
        return f"log {self.log_id} showed patient {self.patient_id}"
