"""Names and label values that always fit Kubernetes' limits, shortened with a hash."""

from __future__ import annotations

import hashlib

# Label values, Service names (DNS-1035 labels) and the name part of label keys.
MAX_LABEL_VALUE = 63


def bounded(value: str, limit: int = MAX_LABEL_VALUE) -> str:
    """`value` itself when it fits, else a prefix and a hash of the whole: still unique."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:10]
    return f"{value[: limit - 11].rstrip('.-_')}-{digest}"


def owner_label(kind: str, namespace: str, name: str) -> str:
    """`KIND.NAMESPACE.NAME`, the value of every child's owner label."""
    return bounded(f"{kind}.{namespace}.{name}")


def service_name(name: str) -> str:
    """A Service named after a resource (Service names are DNS labels of 63 characters)."""
    return bounded(name)
