"""Writes that never destroy a good file (issue 19, item 2).

* A subprocess SIGKILLed while ``skals.save`` writes a 200+ MB model over a
  good file: the path still loads (the good file or the complete new one).
* A write that fails halfway (a full disk, simulated): the previous file
  loads and no temporary file is left.
"""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import skals
import skals._atomic
from skals import io
from skals._atomic import atomic_path, atomic_write
from skals.datasets import make_sessions


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    events = make_sessions(200, n_items=30, random_state=0)
    rec = skals.ImplicitALSRecommender(
        factors=4, iterations=2, random_state=0, num_threads=1
    )
    pipe = skals.make_recommender_pipeline(rec).fit(events)
    path = tmp_path_factory.mktemp("good") / "good.skals"
    skals.save(pipe, path)
    return path, pipe, events


def _strays(directory):
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


class _FullDisk:
    """A file whose writes stop halfway with ENOSPC."""

    def __init__(self, fh):
        self._fh = fh

    def write(self, data):
        data = memoryview(data) if not isinstance(data, str) else data
        self._fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()

    def __getattr__(self, name):
        return getattr(self._fh, name)


def _full_disk(monkeypatch):
    real = open
    for module in (skals._atomic, io):  # io writes a model file by its name
        monkeypatch.setattr(
            module,
            "open",
            lambda *a, **k: _FullDisk(real(*a, **k)),
            raising=False,
        )


def test_a_model_file_is_written_under_a_tmp_name(good, tmp_path, monkeypatch):
    path, pipe, _ = good
    seen = []
    real = skals._atomic._replacing

    def spy(target, suffix):
        seen.append(suffix)
        return real(target, suffix)

    monkeypatch.setattr(skals._atomic, "_replacing", spy)
    skals.save(pipe, tmp_path / "m.skals")
    assert seen == [".tmp"]  # .<name>.<random>.tmp, as documented


def test_a_save_that_fails_halfway_keeps_the_previous_file(good, monkeypatch):
    path, pipe, events = good
    before = path.read_bytes()
    _full_disk(monkeypatch)
    other = skals.make_recommender_pipeline(skals.PopularityRecommender()).fit(events)
    with pytest.raises(OSError, match="No space left"):
        skals.save(other, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _strays(path.parent) == []
    loaded = skals.load(path)
    assert loaded.predict(events.head(50)).equals(pipe.predict(events.head(50)))


def test_json_output_that_fails_halfway_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "p.json"
    io.write_challenge_json({"1": [1, 2]}, path)
    before = path.read_text()
    _full_disk(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        io.write_challenge_json({str(i): [i] * 50 for i in range(1000)}, path)
    monkeypatch.undo()
    assert path.read_text() == before
    assert _strays(tmp_path) == []


def test_an_exception_in_the_block_leaves_the_target_alone(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("old")
    os.chmod(path, 0o640)
    with pytest.raises(RuntimeError), atomic_write(path, "w") as fh:
        fh.write("half")
        raise RuntimeError
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            fh.write("half")
        raise RuntimeError
    assert path.read_text() == "old" and _strays(tmp_path) == []
    with atomic_write(path, "w") as fh:
        fh.write("new")
    assert path.read_text() == "new"
    assert os.stat(path).st_mode & 0o777 == 0o640  # permissions kept
    with pytest.raises(ValueError, match="mode must be"), atomic_write(path, "a"):
        pass  # pragma: no cover


_KILLED_SAVE = textwrap.dedent(
    """
    import sys
    import numpy as np
    import skals

    pipe = skals.load(sys.argv[1])
    als = pipe.steps[-1][1]
    # a 256 MB model: the item factors of a large catalogue
    als.item_factors_ = np.ones((1_000_000, 64), dtype=np.float32)
    print("saving", flush=True)
    skals.save(pipe, sys.argv[1])
    print("saved", flush=True)
    """
)


def test_sigkill_during_a_200mb_save_leaves_a_loadable_file(good, tmp_path):
    path = tmp_path / "model.skals"
    path.write_bytes(good[0].read_bytes())
    root = os.path.dirname(os.path.dirname(skals.__file__))
    env = {**os.environ, "PYTHONPATH": root}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_SAVE, str(path)],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == b"saving"
        deadline = time.monotonic() + 120
        # kill it while the temporary file is being written
        while time.monotonic() < deadline:
            tmp = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
            if tmp and tmp[0].stat().st_size > 20_000_000:
                break
            if proc.poll() is not None:  # pragma: no cover - too quick to catch
                break
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    finally:
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    loaded = skals.load(path)  # the good file, untouched
    assert loaded.steps[-1][1].item_factors_.shape == (30, 4)
    # the temporary file of a killed write is a hidden, clearly named file
    assert all(
        p.name.startswith(".model.skals.") for p in tmp_path.iterdir() if p != path
    )

    # and a save that completes replaces the file with the complete new one
    big = skals.load(path)
    big.steps[-1][1].item_factors_ = np.ones((1_000_000, 64), dtype=np.float32)
    skals.save(big, path)
    assert path.stat().st_size > 200_000_000
    assert skals.load(path).steps[-1][1].item_factors_.shape == (1_000_000, 64)
