"""Many servers in parallel: under pytest-xdist each worker process gets its own session
``unkai`` (its own port and state), and ``unkai_clean`` isolates the tests each worker
runs, so a suite can run on every core with nothing shared between tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SUITE = '''
import os
import pytest

pytest_plugins = ["unkai.testing"]


@pytest.mark.parametrize("n", range(6))
def test_each_test_starts_clean(unkai_clean, n, tmp_path_factory):
    sqs = unkai_clean.client("sqs")
    assert sqs.list_queues().get("QueueUrls", []) == []  # nothing of an earlier test, on this worker
    sqs.create_queue(QueueName=f"q{n}")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(os.path.join(os.environ["SEEN_DIR"], f"{worker}-{n}"), "w") as f:
        f.write(unkai_clean.endpoint)
'''


def test_each_xdist_worker_runs_its_own_unkai_and_each_test_starts_clean(tmp_path):
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SUITE))
    seen = tmp_path / "seen"
    seen.mkdir()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:randomly",
                           "-p", "no:cacheprovider", "test_suite.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, SEEN_DIR=str(seen)))
    assert done.returncode == 0 and "6 passed" in done.stdout, done.stdout + done.stderr
    by_worker: dict[str, set[str]] = {}
    for path in seen.iterdir():
        by_worker.setdefault(path.name.split("-")[0], set()).add(path.read_text())
    assert len(by_worker) == 2 and all(len(e) == 1 for e in by_worker.values())  # one server per worker
    assert len(set.union(*by_worker.values())) == 2  # and not the same one
