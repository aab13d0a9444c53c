"""Cross-framework conformance suite for loss functions.

YAML cases -> one worker process per framework (PyTorch, TensorFlow/Keras, JAX/optax,
PaddlePaddle) -> compared with a float64 NumPy oracle -> results table and HTML report.
The core never imports a framework; see ``conformance.adapters``.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
