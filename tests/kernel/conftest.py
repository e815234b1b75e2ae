"""Fixtures of the kernel tests that need more than one test host."""

from __future__ import annotations

import pytest

from overlay_cluster import Cluster, etcd_missing


@pytest.fixture(scope="module")
def cluster(kernel_session):
    """h1..h3 on one underlay with a healthy three-member etcd cluster (see
    tests/overlay_cluster.py). One per module: making it takes seconds. A
    test that kills members starts them again (or the next one finds them down)."""
    why_not = etcd_missing()
    if why_not:
        pytest.skip(why_not)
    made = Cluster()
    yield made
    made.close()
