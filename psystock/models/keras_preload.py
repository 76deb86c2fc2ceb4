"""Imported by the forkserver of the Keras family's steps (:mod:`psystock.forking`):
TensorFlow and Keras loaded, with TensorFlow's settings, before any step forks. Importing
TensorFlow starts no thread, so its steps fork from a single-threaded server."""

from psystock.models.keras_net import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402, F401
import tensorflow  # noqa: E402, F401
