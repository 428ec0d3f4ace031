"""Hyperparameter search for dense Keras networks on Optuna with SQL storage.

Entry point: `python -m search.run --study fashion` (see search/run.py).
"""

import os

# Before TensorFlow is first imported: the TensorFlow backend, and no C++ info chatter.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
