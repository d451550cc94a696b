"""Shared fixtures."""

import pytest
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect server and database for the tests that run flows and tasks."""
    with prefect_test_harness(server_startup_timeout=60):
        yield
