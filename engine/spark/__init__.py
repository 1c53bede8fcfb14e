"""Apache Spark as a backend (issue 14): production data at scale, the same compiled plans rendered in Spark SQL.

pyspark and a Java runtime are optional: `pip install 'flywheel-eval[spark]'` and a JDK 17+ on the PATH (or
JAVA_HOME). Nothing here is imported unless `backend=spark` is chosen."""
