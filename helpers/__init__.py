"""Hashtag Predictor: train an image classifier on Instagram hashtags.

Importing ``helpers`` is cheap and has no side effects; TensorFlow is imported
by :mod:`helpers.tf` only when a module that needs it is first used.
"""

__version__ = "0.1.0"
