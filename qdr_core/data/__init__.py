"""Data: clean-photo sources, degradation synthesis, training and evaluation datasets."""
