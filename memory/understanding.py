"""The profile book: a user's profile per scope, its corrections, and what export shows of it.

Reads the graph's typed facts and the archive's saved facts and corrections.
Errors pass through: the manager holds one and decides how to degrade.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, tzinfo
from typing import Any

from memory.errors import InvalidInput
from memory.models import Scope, clean_text
from memory.profile import Profile, build_profile, derive_lines
from memory.protocols import GraphTier
from memory.tiers.ledger import PostgresLedger


async def _utc(user_id: str) -> tzinfo:
    return UTC


class ProfileBook:
    def __init__(self, graph: GraphTier, ledger: PostgresLedger,
                 zone: Callable[[str], Awaitable[tzinfo]] = _utc) -> None:
        self.graph = graph
        self.ledger = ledger
        self.zone = zone  # the user's time zone, which the profile's dates are shown in

    async def profile(self, scope: Scope) -> Profile:
        """The scope's profile: derived lines, corrections applied, and the saved facts.

        Raises TierUnavailable if the graph or the archive is down.
        """
        typed, saved, corrections, zone = await asyncio.gather(
            self.graph.facts(scope), self.ledger.facts(scope), self.ledger.corrections(scope),
            self.zone(scope.user_id))
        return build_profile(scope.user_id, scope.guild_id, typed, saved, corrections, zone=zone)

    async def correct(self, scope: Scope, key: str, replacement: str | None) -> Profile:
        """Remove one line (``replacement`` None) or replace its text; returns the new profile.

        The correction holds while the line's facts stay as they are. Raises InvalidInput
        when the profile has no line ``key`` or the text is unusable; TierUnavailable.
        """
        key = clean_text(key, "line", max_chars=40).strip().lower()
        if replacement is not None:
            replacement = " ".join(clean_text(replacement, "text", max_chars=200).split())
        profile = await self.profile(scope)
        line = profile.line(key)
        if line is None:
            raise InvalidInput(f"your profile has no line {key!r}; lines: "
                               + (", ".join(ln.key for ln in profile.lines) or "none"), field="line")
        derived = derive_lines(await self.graph.facts(scope)).get(key, line.text)
        await self.ledger.correct(scope, key, derived, replacement)
        return await self.profile(scope)

    async def export(self, user_id: str, scopes: Sequence[Scope]) -> dict[str, Any]:
        """Profiles and typed facts of the user per scope; raises TierUnavailable."""
        return {
            "profile": {s.key: (await self.profile(s)).to_json() for s in scopes},
            "typed_facts": {
                s.key: [{"predicate": f.predicate, "object": f.label, "detail": f.detail,
                         "aliases": list(f.aliases), "valid_from": f.valid_from.isoformat(),
                         "valid_to": f.valid_to.isoformat() if f.valid_to else None,
                         "told": f.told.isoformat() if f.told else None,
                         "support": list(f.support)} for f in await self.graph.facts(s)]
                for s in scopes},
        }
