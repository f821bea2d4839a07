"""Apache Spark engine: the same pipeline on a Spark DataFrame of events.

Pass a ``pyspark.sql.DataFrame`` to the pipeline's steps and they run as
Spark jobs; :class:`SparkALSRecommender` trains with Spark MLlib's ALS-WR.
Needs ``pip install skals[spark]`` (pyspark and a Java runtime); ``import
skals`` does not import pyspark, and neither does ``import skals.spark``
until Spark is used.
"""

from ._als import SparkALSRecommender
from ._matrix import SparkInteractionMatrix

__all__ = ["SparkALSRecommender", "SparkInteractionMatrix"]
