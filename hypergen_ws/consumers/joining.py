"""The groups of a connection: joined at connect (again with backoff while the channel layer is down), joined and
left at run time, left at the end."""
from __future__ import annotations

import asyncio
import logging

from ..core import protocol
from ..core.groups import check_group_name
from ..core.logs import fields
from ..core.state import Lifecycle, time_left
from ..delivery import outage
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
                # (an outage of the channel layer is logged once, as such: hypergen_ws.delivery.outage)
                log = logger.debug if outage.is_outage(exc) else logger.warning
                log("A socket of %s could not join %s (%s); it is accepted and joins when the channel layer is back",
                    self.label, group, exc, exc_info=not outage.is_outage(exc),
                    extra=fields("group_join_deferred", consumer=self.label, group=group, state=self.state,
                                 code="unavailable"))
                if self.hub is not None:
                    self.hub.forget(group, self._member(group))
                failed.append(group)
        return failed

    async def _join_within(self, groups: list[str]) -> asyncio.Task[list[str]] | None:
        """Join ``groups`` within what is left of the connect's budget; ``state.pending_groups`` are then those not
        joined (yet). A join still under way is not given up: it goes on in the background, and its task is
        returned (for :meth:`_rejoin`); None when every join is over."""
        state = self.state
        if not groups:
            return None
        if self.hub is not None and self.hub.bypass_layer:  # the in-memory layer never makes a join wait
            state.pending_groups = await self._join_all(groups) or ()  # (no empty list kept per socket)
            return None
        joining = self._rejoining = asyncio.get_running_loop().create_task(self._join_all(groups))
        await asyncio.wait({joining}, timeout=time_left(state))
        if joining.done():
            self._rejoining = None
            state.pending_groups = joining.result() or ()
            return None
        state.pending_groups = [group for group in groups if group not in state.groups]
        logger.debug("A socket of %s is still joining %s after its connect's budget; it is accepted and told",
                     self.label, ", ".join(state.pending_groups),
                     extra=fields("group_join_pending", consumer=self.label, state=state, code="unavailable"))
        return joining

    async def _rejoin(self, joining: asyncio.Task[list[str]] | None = None) -> None:
        """Finish the join the connect left under way (``joining``), then join the groups the connect could not
        join, with backoff; once the primary group is joined, let the features catch up. Never leaves the socket
        outside its group without a word: an unexpected error closes it with 1011 (the client reconnects)."""
        state = self.state
        delay = REJOIN_DELAY
        try:
            while True:
                primary = state.primary_group in state.pending_groups
                if joining is not None:
                    await joining
                    joining = None
                else:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_REJOIN_DELAY)
                    groups = list(state.pending_groups)
                    if primary:
                        for feature in self.hypergen.joiners:
                            feature.before_join(self, groups)
                    await self._join_all(groups)
                state.pending_groups = [group for group in state.pending_groups if group not in state.groups]
                if state.lifecycle is not Lifecycle.OPEN:  # closed while joining: leave again
                    await self._leave_all()
                    return
                if primary and state.primary_group in state.groups:
                    logger.info("A socket of %s joined %s now that the channel layer is back", self.label,
                                state.primary_group,
                                extra=fields("group_joined_late", consumer=self.label, state=state))
                    for feature in self.hypergen.rejoiners:
                        await feature.rejoined(self)
                if not state.pending_groups:
                    return
        except Exception:
            logger.exception("A socket of %s could not join its groups; closing it (1011) so that it reconnects",
                             self.label, extra=fields("group_join_failed", consumer=self.label, state=state,
                                                      code=protocol.CLOSE_INTERNAL_ERROR))
            await self.close(protocol.CLOSE_INTERNAL_ERROR)

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
