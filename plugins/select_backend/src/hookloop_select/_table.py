"""The part the select and poll pollers share: an interest table in user space.

``select(2)`` and ``poll(2)`` are *stateless* system calls: the kernel keeps
no interest set between calls, every call hands it the whole list of fds and
what to watch for.  So, unlike epoll or kqueue, the registration lives in this
process, and "registering" an fd is only a dictionary update.  That gives both
pollers the same shape, which lives here once:

* ``_interest`` maps each registered fd to its :data:`~hookloop.poller.READ` /
  :data:`~hookloop.poller.WRITE` mask.  It is the one record of what is
  registered; the subclass's own structures (select's two sets, the
  ``select.poll`` object's dict) are derived from it through :meth:`_apply`
  and :meth:`_discard`, never updated on their own.
* Because nothing reaches the kernel at ``register`` time, a closed fd would
  be accepted silently and only blow up (select: ``EBADF``) or be flagged
  (poll: ``POLLNVAL``) at the next poll.  The contract wants the error at
  ``register`` and nothing left behind, so :meth:`register` validates with
  :func:`hookloop.poller.check_fd` (one ``fstat``) *before* touching any
  structure.
* ``unregister`` cannot fail for a closed fd: it only forgets a number, no
  system call is made.  Unregistering an fd that is not registered is a
  no-op, the same outcome as epoll's swallowed ``ENOENT``.
* ``register`` of an fd that is already registered replaces its mask (what
  ``select.poll.register`` does, and what the epoll backend does on
  ``EEXIST``), so all hookloop backends agree.

Nothing here runs per event: ``poll()`` is each subclass's own code.
"""
from __future__ import annotations

import errno

from hookloop.poller import READ, WRITE, PollerBase, check_fd

__all__ = ["InterestTablePoller"]

_ALL = READ | WRITE


class InterestTablePoller(PollerBase):
    """Base class of the pollers whose interest set lives in this process.

    Subclasses implement :meth:`_apply`, :meth:`_discard` and ``poll()``, and
    may extend :meth:`_validate_fd`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._interest: dict[int, int] = {}

    # -- the contract --------------------------------------------------------

    def register(self, fd: int, events: int) -> None:
        """Start watching ``fd`` for ``events`` (a mask of READ and WRITE).

        :raises ValueError: ``fd`` is negative (or, for select, too large),
            or ``events`` has bits other than READ and WRITE.
        :raises OSError: ``fd`` is closed (``EBADF``).  Nothing is registered.
        """
        self._validate_fd(fd)
        if events & ~_ALL or events < 0:
            raise ValueError(f"invalid events mask {events!r} for fd {fd}")
        self._apply(fd, events)
        self._interest[fd] = events
        self._registered = len(self._interest)

    def modify(self, fd: int, events: int) -> None:
        """Change the mask of a registered fd.

        :raises FileNotFoundError: ``fd`` is not registered (``ENOENT``, as
            epoll reports it).
        """
        if fd not in self._interest:
            raise FileNotFoundError(errno.ENOENT, f"fd {fd} is not registered")
        if events & ~_ALL or events < 0:
            raise ValueError(f"invalid events mask {events!r} for fd {fd}")
        self._apply(fd, events)
        self._interest[fd] = events

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``; never raises, even if it was closed meanwhile."""
        if self._interest.pop(fd, None) is None:
            return
        self._registered = len(self._interest)
        self._discard(fd)

    def close(self) -> None:
        """Forget every fd and close the self-pipe; idempotent."""
        self._interest.clear()
        self._registered = 0
        self._clear()
        self._close_waker()

    # -- what subclasses provide --------------------------------------------

    def _validate_fd(self, fd: int) -> None:
        """Raise unless ``fd`` can be registered; nothing may change here."""
        check_fd(fd)

    def _apply(self, fd: int, events: int) -> None:  # pragma: no cover - abstract
        """Make the subclass's structures watch ``fd`` for ``events``."""
        raise NotImplementedError

    def _discard(self, fd: int) -> None:  # pragma: no cover - abstract
        """Make the subclass's structures forget ``fd``."""
        raise NotImplementedError

    def _clear(self) -> None:  # pragma: no cover - abstract
        """Forget everything (called from :meth:`close`)."""
        raise NotImplementedError
