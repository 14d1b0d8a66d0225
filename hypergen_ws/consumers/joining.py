"""The groups of a connection: joined at connect (again with backoff while the channel layer is down), joined and
left at run time, left at the end."""
from __future__ import annotations

import asyncio
import logging

from ..core.groups import check_group_name
from ..core.logs import fields
from ..core.state import Lifecycle
from ..delivery.hub import Member, get_hub
from .parts import MAX_REJOIN_DELAY, REJOIN_DELAY, ConsumerParts

logger = logging.getLogger("hypergen_ws")


class JoiningMixin(ConsumerParts):
    """Joining and leaving the connection's groups through the process's hub."""

    async def _join_all(self, groups: list[str]) -> list[str]:
        """Join ``groups``; return those the channel layer could not join now (it is down or frozen)."""
        failed = []
        for group in groups:
            try:
                await self.join(group)
            except (TimeoutError, ConnectionError) as exc:
                logger.warning("A socket of %s could not join %s (%s); it is accepted and joins when the channel "
                               "layer is back", self.label, group, exc,
                               extra=fields("group_join_deferred", consumer=self.label, group=group,
                                            state=self.state, code="unavailable"))
                if self.hub is not None:
                    self.hub.forget(group, self._member(group))
                failed.append(group)
        return failed

    async def _rejoin(self) -> None:
        """Join the groups the connect could not join, with backoff, then let the features catch up."""
        state = self.state
        delay = REJOIN_DELAY
        while state.is_open and state.pending_groups:
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_REJOIN_DELAY)
            groups = list(state.pending_groups)
            primary = state.primary_group in groups
            if primary:
                for feature in self.hypergen.joiners:
                    feature.before_join(self, groups)
            state.pending_groups = await self._join_all(groups)
            if state.lifecycle is not Lifecycle.OPEN:  # closed while joining: leave again
                await self._leave_all()
                return
            if primary and state.primary_group in state.groups:
                logger.info("A socket of %s joined %s now that the channel layer is back", self.label,
                            state.primary_group, extra=fields("group_joined_late", consumer=self.label, state=state))
                for feature in self.hypergen.rejoiners:
                    await feature.rejoined(self)

    def _member(self, group: str) -> Member:
        for feature in self.hypergen.members:
            member = feature.member(self, group)
            if member is not None:
                return member
        return self

    async def join(self, group: str) -> None:
        """Join an extra group at run time (the group name must be valid for the channel layer)."""
        check_group_name(group)
        if group in self.state.groups:
            return
        hub = self.hub = self.hub or get_hub()
        await hub.join(group, self._member(group))
        self.state.groups.append(group)

    async def leave(self, group: str) -> None:
        """Leave a group joined at connect or with ``join()``."""
        if group in self.state.groups and self.hub is not None:
            self.state.groups.remove(group)
            await self.hub.leave(group, self._member(group))

    async def _leave_all(self) -> None:
        state = self.state
        if state.groups:
            state.last_groups = list(state.groups)
        if self.hub is not None:
            for group in list(state.groups):
                await self.hub.leave(group, self._member(group))
        state.groups.clear()
