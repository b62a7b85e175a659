"""The command line's commands: one module each (its parser and a thin handler over the library), in the
order `spikeflops --help` lists them. A module imports what its work needs (torch, pygenn) only when it runs."""

COMMANDS = ("run", "info", "gpt", "superspike", "gate", "calibrate", "compare", "bisect", "report", "error_rates",
            "dashboard", "keep", "kit")
