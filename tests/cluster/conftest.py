"""A private Redis Cluster per test (3 masters, 1 replica each): these tests kill its nodes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.store.local_cluster import LocalCluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    started = LocalCluster(tmp_path / "cluster").start()
    yield started
    started.stop()
