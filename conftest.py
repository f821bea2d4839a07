"""Repository-level pytest hooks: the Spark engine's doctests need pyspark.

Here rather than in ``skals/spark/`` so that no conftest ships in the wheel.
"""

import importlib.util
from pathlib import Path

import pytest

collect_ignore_glob = (
    [] if importlib.util.find_spec("pyspark") else ["skals/spark/*.py"]
)

SPARK = Path(__file__).resolve().parent / "skals" / "spark"


def pytest_collection_modifyitems(items):
    # pyspark's own notice about pandas 3, raised inside createDataFrame
    quiet = pytest.mark.filterwarnings(
        "ignore:PySpark does not yet fully support pandas:FutureWarning"
    )
    for item in items:
        if SPARK in Path(str(item.path)).resolve().parents:
            item.add_marker(quiet)
