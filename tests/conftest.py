"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest
import responses


@pytest.fixture
def rsps():
    """HTTP faked at the transport; every registered response must be used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock
