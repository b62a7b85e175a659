"""spikeflops workloads: what to run and what to measure, with no harness code.

Sub-packages: ``gpt`` (GPT-2 FLOPs, max batch, MFU) and ``superspike``
(SuperSpike training with PyGeNN and a PyTorch reference).
"""

__version__ = "0.1.0"
