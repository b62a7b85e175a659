"""The harnesses of this checkout: asv's suites (``suites.py``) and pytest-benchmark's twins
(``test_pytest_benchmark.py``), generated from the registry."""
