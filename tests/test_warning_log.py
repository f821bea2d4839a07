"""The workers' warning log of ``collect_warnings`` (append-only, per process)."""

import json
import os
import threading
import warnings

import pytest

from skals import SkalsWarning, collect_warnings
from skals import _warnings as w


def _as_a_worker(directory):
    """Make ``warn`` write to ``directory`` as a joblib worker of a block would."""
    warnings.filterwarnings(
        "always", message=f"{w._MARKER}{os.getpid() + 1}:{directory}"
    )


def test_records_of_threads_writing_at_once_arrive_whole(tmp_path):
    big = "x" * 200_000  # larger than any write buffer
    with warnings.catch_warnings():
        _as_a_worker(tmp_path)
        threads = [
            threading.Thread(target=w.warn, args=(f"{i} {big}",)) for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    records = list(w._worker_records(str(tmp_path)))
    assert sorted(int(m.split()[0]) for _, m in records) == list(range(8))
    assert all(c is SkalsWarning and m.endswith(big) for c, m in records)


def test_an_unfinished_record_of_a_killed_worker_is_skipped(tmp_path):
    whole = json.dumps({"category": "skals._warnings:SkalsWarning", "message": "a"})
    (tmp_path / "11.jsonl").write_text(whole + "\n" + whole[:20])
    # a worker that got the killed one's process id appends after the torn line
    (tmp_path / "12.jsonl").write_text(whole[:20] + whole + "\n" + whole + "\n")
    assert list(w._worker_records(str(tmp_path))) == [(SkalsWarning, "a")] * 2


def test_a_block_counts_a_workers_records():
    with (
        pytest.warns(SkalsWarning, match=r"dropped 1 rows \[2 such warnings"),
        collect_warnings() as log,
    ):
        _as_a_worker(w._collector()[1])  # what a worker of this block does
        for n in (1, 2):
            w.warn(f"dropped {n} rows")
    assert log == [(SkalsWarning, "dropped 1 rows", 2)]
