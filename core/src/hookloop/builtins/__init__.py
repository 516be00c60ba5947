"""The core's builtin plugins.

Each module here is a hookloop plugin exactly like an installed one: it
implements hooks from :mod:`hookloop.hookspecs`, with ``trylast=True`` so any
installed plugin overrides it, and it can be disabled by name
(``HOOKLOOP_DISABLE=signals``).  The assembly registers them under the
names ``executor`` and ``signals``.
"""
