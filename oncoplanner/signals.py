"""Project signals. Domain apps send these; `audit` receives them (domain apps never import audit).

record_read: PHI was shown or returned. kwargs: patients (list of Patient), target (the object
    read, or None for a list), action ("read" or "list"; default "read").
access_changed: care-team membership or a permission changed. kwargs: patient (or None),
    actor, granted (bool), detail (dict).
"""

from __future__ import annotations

from django.dispatch import Signal

record_read = Signal()
access_changed = Signal()
