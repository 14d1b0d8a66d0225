"""The state of one connection (hypergen_ws.core.state): its lifecycle and every transition, legal or not."""
from __future__ import annotations

import itertools

import pytest

from hypergen_ws.core.state import ConnectionState, IllegalTransition, Lifecycle

C, O, G, X = Lifecycle.CONNECTING, Lifecycle.OPEN, Lifecycle.CLOSING, Lifecycle.CLOSED
LEGAL = {(C, O), (C, G), (C, X), (O, G), (O, X), (G, X)}
ILLEGAL = sorted(set(itertools.product(Lifecycle, Lifecycle)) - LEGAL, key=lambda t: (t[0].value, t[1].value))
PATHS = {C: [], O: [O], G: [O, G], X: [X]}


def state_at(lifecycle: Lifecycle) -> ConnectionState:
    state = ConnectionState()
    for step in PATHS[lifecycle]:
        state.advance(step)
    assert state.lifecycle is lifecycle
    return state


@pytest.mark.parametrize(("start", "target"), sorted(LEGAL, key=lambda t: (t[0].value, t[1].value)),
                         ids=lambda v: v.value)
def test_legal_transitions_move_the_state(start, target):
    state = state_at(start)
    state.advance(target)
    assert state.lifecycle is target


@pytest.mark.parametrize(("start", "target"), ILLEGAL, ids=lambda v: v.value)
def test_each_illegal_transition_raises_and_leaves_the_state_as_it_was(start, target):
    state = state_at(start)
    with pytest.raises(IllegalTransition) as info:
        state.advance(target)
    assert f"from {start.value} to {target.value}" in str(info.value)
    assert state.lifecycle is start


def test_a_new_connection_is_connecting_and_knows_nothing_yet():
    state = ConnectionState()
    assert state.lifecycle is C and not state.is_open and not state.opened
    assert state.groups == [] and state.primary_group is None and state.position is None
    assert state.identity is None and state.expires_at is None and state.close_code is None


def test_opened_stays_true_once_the_connection_was_open():
    state = ConnectionState()
    state.advance(O)
    assert state.is_open and state.opened
    state.advance(G)
    assert not state.is_open and state.opened
    refused = ConnectionState()
    refused.advance(G)  # refused: accepted only to send the close code
    assert not refused.opened
