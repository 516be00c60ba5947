"""hookloop-bench: ``hookloop bench`` compares event loops on this machine.

The subjects are every installed hookloop backend (found through the
plugins, so a third-party backend is measured by being installed), asyncio's
own loop (always: every ratio is to it), uvloop when installed, and any
loop given as ``module:factory``.  The workloads are scheduling (call_soon,
task steps, timers, loop creation), network servers under load from other
processes (TCP echo Protocol at 1 KiB and 64 KiB, asyncio streams echo, a
minimal HTTP/1.1 server, UDP echo, TLS echo) and subprocess spawning.

Layout: :mod:`.workloads` (catalogue, settings), :mod:`.subjects` (which
loops), :mod:`.scheduling`, :mod:`.network`, :mod:`.spawn` (the measured
code), :mod:`.load` (the client processes), :mod:`.measure` (one measurement
in a fresh process), :mod:`.runner` (the interleaved plan), :mod:`.stats`,
:mod:`.report`, :mod:`.progress`, :mod:`.cli`, and :mod:`.plugin` (the
hook).  This package must never be imported by the core: it is a plugin
like any other.
"""
