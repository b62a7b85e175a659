"""Regression gate and reports: read asv and pytest-benchmark results, judge each metric by its own
direction and noise model, and show each metric's history over commits and machines."""
