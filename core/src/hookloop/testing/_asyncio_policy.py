"""``--hookloop-loop`` for pytest-asyncio before 1.4, which has no loop
factory hook: its ``event_loop_policy`` fixture, overridden.
:mod:`hookloop.testing.session_loop` registers this module as a plugin in
that case only, after putting the backend's name in ``config.stash[BACKEND]``."""
from __future__ import annotations

import pytest

from ..policy import EventLoopPolicy

#: The backend the policy's loops use.
BACKEND = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def event_loop_policy(request: pytest.FixtureRequest) -> EventLoopPolicy:
    """pytest-asyncio's loops come from this policy: hookloop's."""
    return EventLoopPolicy(request.config.stash[BACKEND])
