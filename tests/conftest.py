from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from landing import Landing


@pytest.fixture
def landing(tmp_path: Path) -> Landing:
    """An empty landing directory with the default reference world."""
    return Landing(tmp_path / "landing")


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for the whole session (it takes seconds to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield
