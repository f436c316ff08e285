"""seqcast: train and serve LSTM/GRU sequence models over time-series tables.

This package is the Prefect-free library; `tasks/` and `flows/` wire it into a DAG.
"""

__version__ = "0.1.0"

from seqcast.native_logs import quiet_tensorflow_import

quiet_tensorflow_import()  # before any module of the library imports Keras or TensorFlow
