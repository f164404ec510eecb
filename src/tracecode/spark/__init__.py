"""Apache Spark: the same rule SQL on a cluster (or local mode); see README."""
