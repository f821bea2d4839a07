"""The package as a user gets it: a quick command line and a complete wheel."""

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import skals
from skals.cli import _commands, _options

ROOT = Path(skals.__file__).resolve().parents[1]


# ------------------------------------------------------------ quick --help
def test_help_defaults_are_the_estimators_defaults():
    # `skals fit --help` prints _options.DEFAULTS without importing the
    # library; they must be what the pipeline really uses
    names = [name for name, _, _ in _options.HYPERPARAMETERS]
    assert sorted(_options.DEFAULTS) == sorted(names)
    assert _commands.defaults(names) == _options.DEFAULTS


def test_help_shows_the_defaults(capsys):
    from skals.cli import main

    assert main(["fit", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for name, value in _options.DEFAULTS.items():
        assert f"--{name.replace('_', '-')}" in out
        assert f"(default: {value})" in out


@pytest.mark.parametrize("command", ["fit", "tune", "demo", "predict"])
def test_command_help_imports_no_heavy_dependency(command):
    heavy = ("polars", "sklearn", "implicit", "numpy", "scipy", "joblib", "tqdm")
    probe = (
        "import sys\nfrom skals.cli import main\n"
        f"assert main([{command!r}, '--help']) == 0\n"
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


# ------------------------------------------------------------------ wheel
def _build_wheel(tmp_path: Path) -> Path:
    """Build the wheel from a copy of the sources (no build/ in the tree)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "setup.cfg"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "skals", src / "skals", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out)]
        + [str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 and any(
        why in result.stderr
        for why in ("No matching distribution", "NewConnectionError", "Network")
    ):  # the isolated build fetches setuptools>=77 from the package index
        pytest.skip(f"no setuptools for the build: {result.stderr[-300:]}")
    assert result.returncode == 0, result.stderr
    (wheel,) = out.glob("skals-*.whl")
    return wheel


def test_wheel_ships_the_package_and_its_licence_and_no_tests(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (info,) = {n.split("/")[0] for n in names if ".dist-info/" in n}
        metadata = email.message_from_bytes(z.read(f"{info}/METADATA"))
        licence = z.read(f"{info}/licenses/LICENSE").decode()
        entry_points = z.read(f"{info}/entry_points.txt").decode()
    # the licence its metadata names, as a file
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert licence == (ROOT / "LICENSE").read_text()
    assert "BSD 3-Clause License" in licence and "skals developers" in licence
    # every module and data file of the package, nothing else at the top
    shipped = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "skals").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert shipped <= names, sorted(shipped - names)
    assert {n.split("/")[0] for n in names} == {"skals", info}
    assert not [n for n in names if "test" in n.split("/")[-1].lower()]
    assert "skals = skals.cli:main" in entry_points
    assert metadata["Version"] == skals.__version__
