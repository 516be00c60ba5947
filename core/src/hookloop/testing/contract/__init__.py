"""The poller contract kit: tests any hookloop backend must pass.

A backend author who wrote a poller (see :mod:`hookloop.poller` for the
contract) installs their distribution next to hookloop and runs::

    pytest --pyargs hookloop.testing.contract
    pytest --pyargs hookloop.testing.contract --hookloop-backend=mybackend

The tests are written once and run on every installed, available backend:
they take the ``hookloop_backend`` fixture (a backend *name*), which the
hookloop pytest plugin (:mod:`hookloop.testing`, loaded through the ``pytest11``
entry point) parametrizes over :func:`hookloop.available_backends`, or pins
to one with ``--hookloop-backend``.  Each test builds its poller with
``hookloop.get_backend(name).factory()``, exactly as the loop does, so what
passes here is what the loop will get.

The kit tests a poller *in isolation*: no event loop, only sockets, pipes and
the :mod:`select`-level behaviour the core relies on -- readiness reported in
the right native mask, interest changes, timeouts that are never early,
``wakeup()`` across threads, hang-up and error waking both directions (pipes
included, where the kernel reports ``HUP`` without ``IN`` and ``ERR``
without ``OUT``), fds closed behind the poller's back (also while a ``dup``
keeps the file alive, and after the number was reused), validation at
``register``, no fd leaked by ``close()``, hundreds of fds at once, and the
statistics.  Every test fails for a backend that gets its point wrong; the
docstring of each says which rule it checks.

Some tests need ``/proc/self/fd`` or ``/dev/fd`` to count open fds and skip
without them.
"""
