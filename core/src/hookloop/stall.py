"""Stall injection: find the timing assumptions in your own code.

On a busy machine a process is descheduled for milliseconds at a time, a GC
pause or a slow callback holds the loop, and code that "always worked" on an
idle laptop breaks: a timeout fires first, a queue is empty when a callback
thought it could not be.  :class:`StallInjector` makes such stalls happen on
purpose: after a random fraction ``probability`` of the callbacks and I/O
callbacks a loop runs, it sleeps a random time up to ``max_ms``
milliseconds.

What it must never do: reorder anything.  It only moves time, exactly as
the operating system may, so a program that is correct under asyncio's
rules (call_soon order, a due timer never overtaking an earlier call_soon,
timeouts measured on ``loop.time()``) stays correct with stalls on; what
breaks was relying on luck.

How it is switched on (off by default, and then it costs nothing: it is an
:class:`~hookloop.Instrument`, and a loop without instruments runs its
uninstrumented fast path):

* ``new_event_loop(stall="0.05:20")`` or ``loop.set_stall(...)`` (refused
  while the loop runs);
* ``HOOKLOOP_STALL=PROB[:MAX_MS]`` in the environment, for every hookloop
  loop created in the process (policies and loop factories included);
* ``pytest --hookloop-stall=PROB[:MAX_MS]`` (the testing kit), which sets
  that variable for the test session.

The random source is seeded, so a failure can be replayed.  The seed of one
loop is made of a base seed (``seed=``, else ``$HOOKLOOP_STALL_SEED``, else
drawn at random), the test running when the loop was made
(``$PYTEST_CURRENT_TEST``, so rerunning one failed test alone gives its
loops the same seeds) and the loop's number among those made since that
test began.  :attr:`StallInjector.seed` and the repr show it.  What a seed
fixes is the sequence of decisions; which callback meets which decision
still depends on the order things become ready, so a replay reproduces a
failure most of the time, not always.
"""
from __future__ import annotations

import os
import random
import time
from typing import Any

from .instruments import Instrument

__all__ = ["DEFAULT_MAX_MS", "StallInjector", "loop_seed", "make_stall", "parse_stall",
           "stall_from_environment"]

#: MAX_MS when the specification gives only the probability.
DEFAULT_MAX_MS = 20.0
ENV_STALL = "HOOKLOOP_STALL"
ENV_SEED = "HOOKLOOP_STALL_SEED"


class StallInjector(Instrument):
    """An instrument that sleeps ``0..max_ms`` ms after a random fraction
    ``probability`` of callbacks and I/O callbacks.

    :param probability: chance, in ``[0, 1]``, that a callback is followed
        by a stall.
    :param max_ms: the longest stall, in milliseconds (``>= 0``).
    :param seed: the random source's seed (any value ``random.Random``
        takes); ``None`` draws one, kept in :attr:`seed`.
    """

    def __init__(self, probability: float, max_ms: float = DEFAULT_MAX_MS,
                 seed: Any = None) -> None:
        self.probability = _check_probability(probability, "probability")
        self.max_ms = _check_max_ms(max_ms, "max_ms")
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self._random = random.Random(self.seed).random
        self._max_s = self.max_ms / 1000.0
        #: how many stalls were made, and their total length in seconds
        self.stalls = 0
        self.stalled = 0.0

    def __repr__(self) -> str:
        return (f"<StallInjector probability={self.probability} max_ms={self.max_ms} "
                f"seed={self.seed!r} stalls={self.stalls}>")

    def _maybe_stall(self) -> None:
        if self._random() < self.probability:
            pause = self._random() * self._max_s
            self.stalls += 1
            self.stalled += pause
            time.sleep(pause)

    def after_callback(self, handle: Any, duration: float) -> None:
        self._maybe_stall()

    def after_io_callback(self, fd: int, callback: Any, duration: float) -> None:
        self._maybe_stall()


def _check_probability(value: Any, name: str) -> float:
    try:
        probability = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= probability <= 1.0:  # also refuses nan
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return probability


def _check_max_ms(value: Any, name: str) -> float:
    try:
        max_ms = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of milliseconds >= 0, got {value!r}") from None
    if not 0.0 <= max_ms < float("inf"):
        raise ValueError(f"{name} must be a finite number of milliseconds >= 0, got {value!r}")
    return max_ms


def parse_stall(text: str, *, name: str = "stall") -> tuple[float, float]:
    """``"PROB[:MAX_MS]"`` as ``(probability, max_ms)``.

    :param name: what to call the value in errors (the option or variable
        it came from).
    :raises ValueError: naming ``name``, for a probability outside
        ``[0, 1]``, a negative or non-numeric MAX_MS, or anything else.
    """
    prob_text, sep, ms_text = str(text).strip().partition(":")
    if sep and not ms_text:
        raise ValueError(f"{name}: expected PROB[:MAX_MS], got {text!r}")
    probability = _check_probability(prob_text, f"{name}: PROB")
    max_ms = _check_max_ms(ms_text, f"{name}: MAX_MS") if sep else DEFAULT_MAX_MS
    return probability, max_ms


_loops_made: dict[str, int] = {}  # {the test they are made in: how many so far}


def loop_seed(base: Any) -> str:
    """The seed of the next loop's stalls, from a base seed (see module doc)."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    if test not in _loops_made:
        _loops_made.clear()  # a new test: count from 1 again
    number = _loops_made[test] = _loops_made.get(test, 0) + 1
    return f"{base}/{test}/{number}" if test else f"{base}/{number}"


def make_stall(spec: Any, *, name: str = "stall") -> StallInjector | None:
    """A :class:`StallInjector` for a ``stall=`` argument: a ``"PROB[:MAX_MS]"``
    string, an injector (used as is) or ``None``/``False`` (no stalls)."""
    if spec is None or spec is False:
        return None
    if isinstance(spec, StallInjector):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"{name} must be a 'PROB[:MAX_MS]' string, a hookloop.StallInjector "
                        f"or None, got {spec!r}")
    probability, max_ms = parse_stall(spec, name=name)
    if probability == 0.0:
        return None
    base = os.environ.get(ENV_SEED) or random.SystemRandom().randrange(2**32)
    return StallInjector(probability, max_ms, seed=loop_seed(base))


def stall_from_environment() -> StallInjector | None:
    """The injector ``$HOOKLOOP_STALL`` asks for, or ``None``."""
    spec = os.environ.get(ENV_STALL)
    if not spec:
        return None
    return make_stall(spec, name=ENV_STALL)
