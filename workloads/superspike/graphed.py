"""SuperSpike's torch steps run in chunks, each chunk one CUDA graph replay; on a CPU the same chunks run eagerly.

A trial of the demo's network is 18,900 steps of a few dozen tiny kernels each. Launched
from Python one by one, the launches, not the GPU, set the pace. Here a run of steps
between two weight updates (or up to the trial's end) is cut into chunks of fixed
lengths (:data:`CHUNK_STEPS`); each length is captured once in a CUDA graph over the
(optionally compiled) step and replayed. Weight updates stay eager between chunks: they
take the trial's learning rate as a Python number and run 4 times per trial.

A graph reads and writes fixed addresses, so the network state lives in static tensors
that every chunk updates in place, and each chunk reads its steps' input and target rows
from a static window that is filled before the replay. On a CPU there is no graph: the
same chunk function runs eagerly, so the chunking and its bookkeeping are tested there,
and its outputs equal the plain step loop's bit for bit.
"""

from __future__ import annotations

import torch

F32 = torch.float32

# Greedy decomposition: a run of 5,000 steps is 5 replays of 1,000; a trial's 18,900 steps
# between updates are at most a few dozen replays. Longer graphs save few launches and cost
# capture time and graph memory.
CHUNK_STEPS = (1000, 100, 10, 1)


def trial_segments(first_global_step: int, steps: int, update_every: int) -> list[tuple[int, int, bool]]:
    """(first step in the trial, steps, weight update after it) for one trial starting at ``first_global_step``.

    The plain loop updates the weights after the step whose global index is a non-zero
    multiple of ``update_every``; the segments end exactly there.
    """
    segments, begin = [], 0
    offset = (-first_global_step) % update_every
    if first_global_step + offset == 0:
        offset += update_every
    for update_step in range(offset, steps, update_every):
        segments.append((begin, update_step + 1 - begin, True))
        begin = update_step + 1
    if begin < steps:
        segments.append((begin, steps - begin, False))
    return segments


def chunk_lengths(steps: int, sizes=CHUNK_STEPS) -> list[int]:
    """``steps`` as a greedy sum of the chunk sizes (the last size must be 1)."""
    out = []
    for size in sizes:
        count, steps = divmod(steps, size)
        out += [size] * count
    return out


def capture_cuda_graph(fn) -> "torch.cuda.CUDAGraph":
    """``fn``'s kernels recorded (not run) into a CUDA graph; ``replay()`` runs them."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph


def on_side_stream(fn) -> None:
    """Run ``fn`` on a side stream, ordered after and before the current stream's work (torch's warm-up recipe)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream().wait_stream(side)


def _commit(static: dict, updated: dict) -> None:
    """Copy the values a functional update produced back into the static tensors."""
    for name, value in updated.items():
        if value is not static[name]:
            static[name].copy_(value)


class ChunkedTrials:
    """Runs a TorchSuperSpike's trials chunk by chunk: CUDA graphs on a GPU, the same chunks eagerly on a CPU."""

    def __init__(self, state: dict, step_fn, input_raster: torch.Tensor, target_raster: torch.Tensor,
                 sizes=CHUNK_STEPS, capture=None, warm_up=None):
        """``capture``/``warm_up``: how a chunk is captured and warmed up (default on a GPU: a CUDA graph,
        a side stream); given on a CPU, they stand in for the GPU's so the bookkeeping around them is tested."""
        if sizes[-1] != 1:
            raise ValueError("the chunk sizes must end with 1, so every run of steps decomposes")
        self.state, self.step_fn, self.sizes = state, step_fn, tuple(sizes)
        self.input_raster, self.target_raster = input_raster, target_raster
        device = input_raster.device
        self.use_graphs = device.type == "cuda" or capture is not None
        self.capture = capture or capture_cuda_graph
        self.warm_up = warm_up or on_side_stream
        longest = max(sizes)
        num_hidden, num_output = state["prev_h"].shape[0], state["err_o"].shape[0]

        def empty(*shape):
            return torch.zeros(shape, dtype=F32, device=device)

        self.input_window = empty(longest, input_raster.shape[1])
        self.target_window = empty(longest, target_raster.shape[1])
        self.hidden_window, self.output_window = empty(longest, num_hidden), empty(longest, num_output)
        self.sum_sq, self.hidden_count, self.output_count = empty(num_output), empty(num_hidden), empty(num_output)
        self.graphs: dict[tuple[int, bool], object] = {}     # (steps, record) -> captured graph

    def _chunk(self, steps: int, record: bool) -> None:
        """``steps`` steps from the windows' first rows; state and per-trial sums updated in place."""
        s = dict(self.state)
        for i in range(steps):
            hidden, output, sq = self.step_fn(s, self.input_window[i], self.target_window[i])
            self.sum_sq.add_(sq)
            self.hidden_count.add_(hidden)
            self.output_count.add_(output)
            if record:
                self.hidden_window[i].copy_(hidden)
                self.output_window[i].copy_(output)
        _commit(self.state, s)

    def _graph(self, steps: int, record: bool) -> "torch.cuda.CUDAGraph":
        key = (steps, record)
        if key not in self.graphs:
            # Warm-up outside the capture (cuBLAS handles, compiled kernels), on a side stream as
            # torch's recipe asks, then the state and sums put back: a warm-up must not advance the network.
            # Two steps: the second sees its previous input as a view of the window (aliased inputs), which
            # a compiled step may compile anew; nothing may compile inside a capture.
            saved = {k: v.clone() for k, v in self._all_static().items()}
            self.warm_up(lambda: self._chunk(min(2, len(self.input_window)), record))
            for k, v in self._all_static().items():
                v.copy_(saved[k])
            self.graphs[key] = self.capture(lambda: self._chunk(steps, record))
        return self.graphs[key]

    def _all_static(self) -> dict:
        return {**self.state, "_sum_sq": self.sum_sq, "_hidden_count": self.hidden_count,
                "_output_count": self.output_count}

    def run_segment(self, begin: int, steps: int, record: bool, hidden_raster=None, output_raster=None) -> None:
        """Steps ``begin .. begin + steps - 1`` of the trial, as replays (or eager calls) of whole chunks."""
        for length in chunk_lengths(steps, self.sizes):
            self.input_window[:length].copy_(self.input_raster[begin:begin + length])
            self.target_window[:length].copy_(self.target_raster[begin:begin + length])
            if self.use_graphs:
                self._graph(length, record).replay()
            else:
                self._chunk(length, record)
            if record:
                hidden_raster[begin:begin + length].copy_(self.hidden_window[:length])
                output_raster[begin:begin + length].copy_(self.output_window[:length])
            begin += length

    def update(self, fn) -> None:
        """A weight update written as a functional change of the state, kept in the static tensors."""
        s = dict(self.state)
        fn(s)
        _commit(self.state, s)

    def reset_sums(self) -> None:
        for t in (self.sum_sq, self.hidden_count, self.output_count):
            t.zero_()
