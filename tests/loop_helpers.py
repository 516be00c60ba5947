"""Helpers shared by the loop tests (not tests themselves)."""
from __future__ import annotations

import socket
import threading

import hookloop


class BlockProbe(hookloop.Instrument):
    """Tells another thread when the loop is about to poll with no timeout."""

    def __init__(self):
        self.blocking = threading.Event()
        self.timeouts = []

    def before_poll(self, timeout):
        self.timeouts.append(timeout)
        if timeout is None:
            self.blocking.set()


def wake_blocked_loop(loop, action):
    """Run ``loop`` until ``action()`` (done from another thread while the
    loop is blocked with no timers) makes it stop.

    Returns whether ``action`` woke it.  If it did not within 10 s, a write
    to a socket the loop watches (a separate wake-up path) unblocks the loop
    so that the test fails instead of hanging.
    """
    probe = BlockProbe()
    loop.add_instrument(probe)
    rescue_r, rescue_w = socket.socketpair()
    rescued = []
    woken = threading.Event()

    def rescue():
        rescued.append(True)
        loop.stop()

    def helper():
        if probe.blocking.wait(10):
            action()
        if not woken.wait(10):
            rescue_w.send(b"x")

    loop.add_reader(rescue_r, rescue)
    thread = threading.Thread(target=helper)
    try:
        thread.start()
        loop.run_forever()
        woken.set()
        thread.join()
    finally:
        loop.remove_reader(rescue_r)
        loop.remove_instrument(probe)
        rescue_r.close()
        rescue_w.close()
    assert None in probe.timeouts, "the loop never blocked without a timeout"
    return not rescued
