"""Apache Spark engine: the same pipeline on a Spark DataFrame of events.

Pass a ``pyspark.sql.DataFrame`` to the pipeline's steps and they run as
Spark jobs; ``ImplicitALSRecommender(engine="spark")`` trains with Spark
MLlib's ALS. Needs ``pip install skals[spark]`` (pyspark and a Java
runtime); ``import skals`` does not import pyspark.
"""

from ._matrix import SparkInteractionMatrix

__all__ = ["SparkInteractionMatrix"]
