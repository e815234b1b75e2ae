"""The undo steps of a transaction (core.base.Undo): reverse order, and a step
that fails neither hides the transaction's own error nor stops the others."""

import logging

import pytest

from cnet.core.base import Undo
from cnet.errors import Conflict, OperationFailed


def test_undo_runs_the_steps_in_reverse_when_the_block_fails():
    done = []
    with pytest.raises(Conflict):
        with Undo() as undo:
            undo.callback(done.append, "first")
            undo.callback(done.append, "second")
            raise Conflict("the step after them failed")
    assert done == ["second", "first"]


def test_a_failing_undo_step_keeps_the_original_error_and_the_other_steps(caplog):
    done = []

    def broken():
        raise OperationFailed("cannot delete link cn0")

    caplog.set_level(logging.DEBUG, logger="cnet")
    with pytest.raises(Conflict, match="address taken"):
        with Undo() as undo:
            undo.callback(done.append, "first")
            undo.callback(broken)
            undo.callback(done.append, "third")
            raise Conflict("address taken")
    assert done == ["third", "first"]
    assert "cannot delete link cn0" in caplog.text and "broken" in caplog.text


def test_pop_all_keeps_what_was_done():
    done = []
    with Undo() as undo:
        undo.callback(done.append, "x")
        undo.pop_all()
    assert done == []
