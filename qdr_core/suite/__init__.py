"""Evaluation suites: many models scored over a fixed, seeded matrix of conditions at once.

``conditions`` holds the matrix and the scoring; ``report`` writes the JSON, markdown and figure.
"""
