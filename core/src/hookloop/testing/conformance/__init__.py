"""CPython's asyncio suites as a conformance kit for any hookloop backend.

With hookloop and a backend installed (ours or a third party's)::

    pytest --pyargs hookloop.testing.conformance
    pytest --pyargs hookloop.testing.conformance --hookloop-backend=mybackend
    pytest --pyargs hookloop.testing.conformance -n 4 --dist loadscope   # pytest-xdist

runs ``test.test_asyncio``'s suites (events, sock_lowlevel, server,
streams, sendfile, buffered_proto, ssl, subprocess, tasks, locks, queues,
timeouts, taskgroups, runners and more; see :mod:`.test_cpython_asyncio`)
on hookloop loops of each installed backend, with the known-incompatible
tests as strict xfails (each with its reason), the tests that need an
uninstalled plugin (hookloop-tls, hookloop-subprocess) deselected and
counted, and a closing table of how many tests ran on a hookloop loop per
backend.  Where ``test.test_asyncio`` is absent (some distributions strip
it), one skipped test says so.  ``HOOKLOOP_CONFORMANCE_BASELINE=1`` adds
asyncio's own loop as a target, to compare.

The hooks it needs are in :mod:`._hooks` and :mod:`._summary`, registered by
the kit's pytest plugin in every session; they act on these tests only.
hookloop's own CI runs this very module.
"""
