"""hookloop.handles checks asyncio's handle types at import (rule 1's guard).

The thread-safe handle derives from ``asyncio.events._ThreadSafeHandle``
where asyncio has it (3.13.1+), so ``isinstance()`` checks made by
test_asyncio hold; ``_check_layout()`` makes sure that private type is still
the one the subclass was written against (its one slot, its methods), like
the checks of ``Handle``'s and ``TimerHandle``'s slots.  These tests feed
the check changed types and expect it to refuse them.
"""
from __future__ import annotations

import asyncio

import pytest

from hookloop import handles


class _Expected(asyncio.Handle):
    # What asyncio 3.14's _ThreadSafeHandle looks like, as far as the check goes.
    __slots__ = ("_lock",)

    def __init__(self, callback, args, loop, context=None):
        pass

    def cancel(self):
        pass

    def cancelled(self):
        pass

    def _run(self):
        pass


class _ExtraSlot(asyncio.Handle):
    __slots__ = ("_lock", "_owner")
    __init__, cancel, cancelled, _run = (_Expected.__init__, _Expected.cancel,
                                         _Expected.cancelled, _Expected._run)


class _StringSlot(asyncio.Handle):
    __slots__ = "_lock"
    __init__, cancel, cancelled, _run = (_Expected.__init__, _Expected.cancel,
                                         _Expected.cancelled, _Expected._run)


class _NewMethod(asyncio.Handle):
    # A method our subclass would inherit without knowing it.
    __slots__ = ("_lock",)
    __init__, cancel, cancelled, _run = (_Expected.__init__, _Expected.cancel,
                                         _Expected.cancelled, _Expected._run)

    def get_context(self):
        pass


class _OtherBase(_Expected):
    __slots__ = ()


class _OverridesRepr(asyncio.Handle):
    __slots__ = ("_lock",)
    __init__, cancel, cancelled, _run = (_Expected.__init__, _Expected.cancel,
                                         _Expected.cancelled, _Expected._run)

    def _repr_info(self):
        return ["X"]


class _NoRun(asyncio.Handle):
    __slots__ = ("_lock",)
    __init__, cancel, cancelled = (_Expected.__init__, _Expected.cancel, _Expected.cancelled)


def test_layout_check_accepts_this_python():
    handles._check_layout()


def test_layout_check_accepts_the_expected_threadsafe_type(monkeypatch):
    monkeypatch.setattr(handles, "_AsyncioThreadSafeHandle", _Expected)
    handles._check_layout()
    monkeypatch.setattr(handles, "_AsyncioThreadSafeHandle", _StringSlot)
    handles._check_layout()


@pytest.mark.parametrize("changed", [_ExtraSlot, _NewMethod, _OverridesRepr, _NoRun,
                                     _OtherBase])
def test_layout_check_rejects_a_changed_threadsafe_type(monkeypatch, changed):
    monkeypatch.setattr(handles, "_AsyncioThreadSafeHandle", changed)
    with pytest.raises(ImportError, match="not supported by this hookloop version"):
        handles._check_layout()


def test_threadsafe_handle_derives_from_asyncios_where_it_exists():
    asyncio_type = getattr(asyncio.events, "_ThreadSafeHandle", None)
    assert handles._AsyncioThreadSafeHandle is asyncio_type
    if asyncio_type is not None:
        assert issubclass(handles.ThreadsafeCallbackHandle, asyncio_type)
        # Our classes add no slot to asyncio's.
        assert handles.ThreadsafeCallbackHandle.__slots__ == ()
        assert "_lock" in asyncio_type.__slots__
    else:
        assert "_lock" in handles._ThreadsafeBase.__slots__
