"""The core's builtin plugins.

Each module here is a hookloop plugin exactly like an installed one: it
implements hooks from :mod:`hookloop.hookspecs`, with ``trylast=True`` so any
installed plugin overrides it, and it can be disabled by name
(``HOOKLOOP_DISABLE=signals``).  They are a layer above the kernel: they
import only public names (``hookloop``, ``hookloop.transport``), as a
third-party plugin would, and the kernel imports none of them: the assembly
registers them by module name (``hookloop.assembly.BUILTIN_PLUGINS``).
"""
