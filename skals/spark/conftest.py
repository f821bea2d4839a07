"""Doctests of the Spark engine: skipped where pyspark is not installed."""

import importlib.util
from pathlib import Path

import pytest

collect_ignore_glob = [] if importlib.util.find_spec("pyspark") else ["*.py"]

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    # pyspark's own notice about pandas 3, raised inside createDataFrame
    quiet = pytest.mark.filterwarnings(
        "ignore:PySpark does not yet fully support pandas:FutureWarning"
    )
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(quiet)
