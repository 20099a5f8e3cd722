"""Typed errors of the memory library.

Every error the library raises on purpose derives from ``MemoryStoreError``;
each subclass tells the caller what to do next::

    MemoryStoreError
    ├── InvalidInput(reason)          fix the input; nothing was written
    │   └── MemoryPaused(scope)       the user paused memory in that scope; nothing was stored
    ├── RateLimited(retry_after)      wait ``retry_after`` seconds, then retry
    ├── TierUnavailable(tier)         a store is down or slow; the manager degrades
    │   ├── ArchiveUnavailable        the source of truth is down: writes cannot be accepted
    │   └── ForgetPending(tiers)      forgotten everywhere else; those tiers are cleared when back
    ├── NotFound(what)                the named exchange, topic or user holds nothing
    └── ConfigurationError(setting)   a setting is missing or wrong; fix it and restart

Driver errors are translated once, at the tier edge (``raise ... from exc``).
Only the manager decides how to degrade when a tier is unavailable.
"""

from __future__ import annotations


class MemoryStoreError(Exception):
    """Base of every error raised on purpose by the memory library."""


class InvalidInput(MemoryStoreError):
    """The input cannot be stored or used as given; nothing was written."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"{field}: {reason}" if field else reason)


class MemoryPaused(InvalidInput):
    """The user paused memory in this scope (``/memory pause``): the exchange was not stored."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__(f"memory is paused for this user in {scope}", field="user_id")


class RateLimited(MemoryStoreError):
    """Too many requests in the current window; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: float, *, scope: str = "user") -> None:
        self.retry_after = max(0.0, float(retry_after))
        self.scope = scope
        self.notify = True  # False when the caller was already told in this window
        super().__init__(f"rate limited ({scope}); retry in {self.retry_after:.0f}s")


class TierUnavailable(MemoryStoreError):
    """A storage tier did not answer (down, refused, timed out or failed)."""

    def __init__(self, tier: str, detail: str = "") -> None:
        self.tier = tier
        self.detail = detail
        super().__init__(f"{tier} tier unavailable" + (f": {detail}" if detail else ""))


class ArchiveUnavailable(TierUnavailable):
    """The archive (source of truth) is down: nothing can be stored until it is back."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("archive", detail)


class ForgetPending(TierUnavailable):
    """A forget reached the archive but not every derived tier; the rest is queued.

    ``removed`` holds what was removed per tier; ``pending`` names the tiers the
    worker will clear as soon as they answer again (the request is durable).
    """

    def __init__(self, pending: list[str], removed: dict[str, int]) -> None:
        self.pending = sorted(set(pending))
        self.removed = removed
        super().__init__(",".join(self.pending), "unavailable now; queued to be cleared when it is back")


class NotFound(MemoryStoreError):
    """The named thing (an exchange, a topic, a fact) does not exist for this user and scope."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"not found: {what}")


class ConfigurationError(MemoryStoreError):
    """A setting is missing or invalid, or a configured server cannot be used."""

    def __init__(self, setting: str, reason: str) -> None:
        self.setting = setting
        self.reason = reason
        super().__init__(f"{setting}: {reason}")
