"""One module per DAG step: a Prefect task that reads references, calls the seqcast
library, writes its output atomically and returns a small reference record."""
