"""spikeflops, the tool: command line, `run`, the regression gate, reports, dashboard and results I/O.

The workloads it measures, and the measurement primitives they use, live in the
``workloads`` package; this package only drives them and reads what they produce.
"""

__version__ = "0.2.0"
