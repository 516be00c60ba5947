"""The testing kit's loop fixture body, ``checked_loop``: a report left on the
loop's exception handler fails the test; a claimed one does not; the loop is
closed either way, asyncio's own loop as well as ours."""
from __future__ import annotations

import asyncio

import pytest

import hookloop
from hookloop.testing import ExceptionRecorder, checked_loop


def _new_loop(name: str) -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop() if name == "asyncio" else hookloop.new_event_loop(name)


@pytest.fixture(params=["asyncio", *hookloop.available_backends()])
def loop_name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_an_unclaimed_report_fails_the_test(loop_name):
    errors = ExceptionRecorder()
    body = checked_loop(_new_loop(loop_name), errors)
    loop = next(body)
    loop.call_soon(loop.call_exception_handler, {"message": "boom", "exception": OSError(5)})
    loop.run_until_complete(asyncio.sleep(0))
    with pytest.raises(pytest.fail.Exception, match=r"unexpectedly:\n- boom: OSError\(5\)"):
        next(body)
    assert loop.is_closed()


def test_a_claimed_report_passes(loop_name):
    errors = ExceptionRecorder()
    body = checked_loop(_new_loop(loop_name), errors)
    loop = next(body)
    loop.call_exception_handler({"message": "expected trouble", "exception": ValueError()})
    assert errors.expect("expected", ValueError)["message"] == "expected trouble"
    with pytest.raises(StopIteration):
        next(body)
    assert loop.is_closed()


def test_expect_refuses_what_was_not_reported():
    errors = ExceptionRecorder()
    errors(None, {"message": "one thing", "exception": KeyError()})
    with pytest.raises(AssertionError, match="no exception handler call matching 'other'"):
        errors.expect("other")
    with pytest.raises(AssertionError):
        errors.expect("one thing", ValueError)  # the right message, the wrong exception


def test_an_already_closed_loop_is_left_alone(loop_name):
    body = checked_loop(_new_loop(loop_name), ExceptionRecorder())
    next(body).close()
    with pytest.raises(StopIteration):
        next(body)
