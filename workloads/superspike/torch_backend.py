"""SuperSpike in PyTorch: GeNN's equations, step by step, in float32, on CPU or CUDA.

The update order per time step is GeNN's: synapses first (spikes of the previous
step are delivered; per-synapse eligibility traces advance), then neurons
(synaptic input, membrane update, pre/post traces, threshold, reset, spike code).
Weights change every UPDATE_TIME_MS of global time via r_max_prop. The feedback
weights are the transpose of hidden->output at all times, as GeNN's transposed
variable reference keeps them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import partial

import numpy as np
import torch

from ..load import CPU_THREADS, intra_op_threads
from ..timing import Stopwatch
from . import params as P
from .backend import TrialOutput, denormals_flushed
from .conditions import InitialConditions
from .graphed import ChunkedTrials, trial_segments
from .params import NetworkSize
from .targets import SpikeTrains, spike_source_raster

F32 = torch.float32


def _f32(x: float) -> float:
    """Round a derived constant to float32 as GeNN does when it writes it into float code."""
    return float(np.float32(x))


DT = _f32(P.TIMESTEP_MS)
EXP_TC = _f32(math.exp(-P.TIMESTEP_MS / P.TAU_MEM_MS))
R_MEMBRANE = _f32(P.TAU_MEM_MS / P.C_NF)
PSC_DECAY = _f32(math.exp(-P.TIMESTEP_MS / P.TAU_SYN_MS))
PSC_INIT = _f32(P.TAU_SYN_MS * (1.0 - math.exp(-P.TIMESTEP_MS / P.TAU_SYN_MS)) / P.TIMESTEP_MS)
T_RISE_MULT = _f32(math.exp(-P.TIMESTEP_MS / P.TAU_RISE_MS))
T_DECAY_MULT = _f32(math.exp(-P.TIMESTEP_MS / P.TAU_DECAY_MS))
NORM_FACTOR = _f32(P.kernel_norm_factor())
MUL_AVG_ERR = _f32(math.exp(-P.TIMESTEP_MS / P.TAU_AVG_ERR_MS))
EXP_RMS = _f32(math.exp(-P.UPDATE_TIME_MS / P.TAU_RMS_MS))


@dataclass(frozen=True)
class StepConstants:
    """The step's constants, each already rounded to float32 (GeNN writes them into float code so)."""

    dt: float | torch.Tensor = DT
    exp_tc: float | torch.Tensor = EXP_TC
    r_membrane: float | torch.Tensor = R_MEMBRANE
    psc_decay: float | torch.Tensor = PSC_DECAY
    psc_init: float | torch.Tensor = PSC_INIT
    t_rise_mult: float | torch.Tensor = T_RISE_MULT
    t_decay_mult: float | torch.Tensor = T_DECAY_MULT
    norm_factor: float | torch.Tensor = NORM_FACTOR
    mul_avg_err: float | torch.Tensor = MUL_AVG_ERR
    tau_rise: float | torch.Tensor = _f32(P.TAU_RISE_MS)
    tau_decay: float | torch.Tensor = _f32(P.TAU_DECAY_MS)
    tau_refrac: float | torch.Tensor = _f32(P.TAU_REFRAC_MS)
    v_rest: float | torch.Tensor = _f32(P.V_REST_MV)
    v_thresh: float | torch.Tensor = _f32(P.V_THRESH_MV)
    sigma_prime_floor: float | torch.Tensor = _f32(P.SIGMA_PRIME_FLOOR_MV)
    beta: float | torch.Tensor = _f32(P.BETA)
    beta_per_mv: float | torch.Tensor = _f32(P.BETA * 0.001)
    sq_err_scale: float | torch.Tensor = _f32(DT * 0.001)
    zero: float | torch.Tensor = 0.0
    one: float | torch.Tensor = 1.0

    def as_cpu_tensors(self) -> "StepConstants":
        """The same constants as 0-dim float32 CPU tensors. An op with a Python float wraps it in a double
        tensor and converts that to float32 on every call (2.9 us instead of 1.0 us an op on a 178-element
        tensor, ~35 of a CPU step's ~90 ops); a float32 0-dim tensor is the value the kernel used anyway, so
        the bits are the same (tests/test_superspike_torch.py holds a trial to the Python-float step)."""
        return StepConstants(**{f.name: torch.tensor(getattr(self, f.name), dtype=F32) for f in fields(self)})


PYTHON_FLOATS = StepConstants()
CPU_TENSORS = PYTHON_FLOATS.as_cpu_tensors()


# State is a dict of named float32 tensors so one plain function can advance it (and torch.compile can fuse
# that function). Populations that run the same equations share one tensor per variable, so each equation is
# one operator for both (a step of tiny tensors is launch-bound; docs/measurements.md has the count):
#   "v", "refrac", "in_syn", "sigma_prime": the LIF neurons, hidden first, then output;
#   "z", "z_tilda": the presynaptic traces, input first, then hidden.
# Elementwise operators round each element alike whatever tensor holds it, so the shared tensors give the
# separate populations' bits exactly (tests/test_superspike_torch.py holds a trial to that).
# "e_ih" is input->hidden eligibility, "w_ho" hidden->output weight, and so on.
# ``k``: the constants, Python floats (a compiled step folds them; on CUDA a float divisor is a CPU scalar,
# divided by as a reciprocal product: not yet checked on a GPU in tensor form) or, for the eager CPU step,
# 0-dim tensors (StepConstants.as_cpu_tensors).
def _lif_membrane(v, refrac, in_syn, k: StepConstants = PYTHON_FLOATS):
    """Postsynaptic ExpCurr input, then the demo's LIF sim code; returns (v, refrac, in_syn)."""
    isyn = in_syn * k.psc_init
    in_syn = in_syn * k.psc_decay
    v = torch.where(refrac == k.tau_refrac, k.v_rest, v)
    active = refrac <= k.zero
    alpha = isyn * k.r_membrane + k.v_rest
    v = torch.where(active, alpha - k.exp_tc * (alpha - v), v)
    refrac = torch.where(active, refrac, refrac - k.dt)
    return v, refrac, in_syn


def _sigma_prime(v, k: StepConstants = PYTHON_FLOATS):
    one_plus = k.one + torch.abs(k.beta_per_mv * (v - k.v_thresh))
    # beta / x as torch computes a Python float over a tensor: a reciprocal, then a product
    return torch.where(v < k.sigma_prime_floor, k.zero, torch.reciprocal(one_plus * one_plus) * k.beta)


def _traces(z, z_tilda, *spikes, k: StepConstants = PYTHON_FLOATS):
    """Presynaptic traces; GeNN's expressions verbatim so float32 rounding matches. ``spikes``: each
    population's spikes in the order ``z`` holds them, added in place (no concatenated copy)."""
    z = z + (-z / k.tau_rise) * k.dt
    z_tilda = z_tilda + ((z - z_tilda) / k.tau_decay) * k.dt
    begin = 0
    for population in spikes:
        z[begin:begin + population.shape[0]].add_(population)
        begin += population.shape[0]
    return z, z_tilda


def _eligibility(e, lam, m, pre_z_tilda, post_sigma_prime, post_err, k: StepConstants = PYTHON_FLOATS):
    """e += (zTilda sigma' - e / tauRise) dt;  lambda += ((e - lambda) / tauDecay) dt;  m += lambda err."""
    e.add_((torch.outer(pre_z_tilda, post_sigma_prime) - e / k.tau_rise) * k.dt)
    lam.add_(((e - lam) / k.tau_decay) * k.dt)
    m.addcmul_(lam, post_err)                 # err broadcasts along the postsynaptic axis


def superspike_step(s: dict, input_spikes, target_spikes, k: StepConstants = PYTHON_FLOATS):
    """Advance the network one time step in GeNN's order; returns (hidden, output spikes, err^2 dt)."""
    num_input, num_hidden = s["prev_in"].shape[0], s["prev_h"].shape[0]
    # Synapse update: deliver the previous step's spikes, advance per-synapse traces, feed back the error.
    # in place, population by population: the step owns this tensor (the last membrane update made it), and a
    # concatenation would allocate twice what the separate sums did
    in_syn = s["in_syn"]
    in_syn[:num_hidden].add_(s["prev_in"] @ s["w_ih"])
    in_syn[num_hidden:].add_(s["prev_h"] @ s["w_ho"])
    z_tilda, sigma_prime = s["z_tilda"], s["sigma_prime"]
    _eligibility(s["e_ih"], s["lam_ih"], s["m_ih"], z_tilda[:num_input], sigma_prime[:num_hidden], s["err_h"], k)
    _eligibility(s["e_ho"], s["lam_ho"], s["m_ho"], z_tilda[num_input:], sigma_prime[num_hidden:], s["err_o"], k)
    feedback = s["w_ho"] @ s["err_o"]      # DeltaCurr into ISynFeedback (feedback = w_ho transposed)

    # Neuron update of hidden and output together: membrane, post-dynamics (sigma'), threshold, reset. Nothing
    # here reads this step's input traces, so they advance below with the hidden ones (pre-dynamics, then
    # the spike code z += 1, as the spike source array does).
    s["v"], s["refrac"], s["in_syn"] = _lif_membrane(s["v"], s["refrac"], s["in_syn"], k)
    s["err_h"] = feedback
    s["sigma_prime"] = _sigma_prime(s["v"], k)
    fired = (s["refrac"] <= k.zero) & (s["v"] >= k.v_thresh)
    spikes = fired.to(F32)
    s["refrac"] = torch.where(fired, k.tau_refrac, s["refrac"])
    hidden_spikes, output_spikes = spikes[:num_hidden], spikes[num_hidden:]
    s["z"], s["z_tilda"] = _traces(s["z"], s["z_tilda"], input_spikes, hidden_spikes, k=k)

    # Output: filtered spike-train mismatch against the target, running squared error.
    mismatch = target_spikes - output_spikes
    s["err_rise"] = s["err_rise"] * k.t_rise_mult + mismatch
    s["err_decay"] = s["err_decay"] * k.t_decay_mult + mismatch
    s["err_o"] = (s["err_decay"] - s["err_rise"]) * k.norm_factor
    sq = s["err_o"] * s["err_o"] * k.sq_err_scale
    s["avg_sq_err"] = s["avg_sq_err"] * k.mul_avg_err + sq

    s["prev_in"], s["prev_h"] = input_spikes, hidden_spikes
    return hidden_spikes, output_spikes, sq


def r_max_prop(s: dict, suffix: str, r0: float, update_timesteps: int) -> None:
    """The demo's optimiser: per-synapse AMSGrad-like step on w from the accumulated gradient m."""
    w, m, upsilon = f"w_{suffix}", f"m_{suffix}", f"ups_{suffix}"
    gradient = s[m] / float(update_timesteps)
    s[upsilon] = torch.maximum(s[upsilon] * EXP_RMS, gradient * gradient)
    rate = r0 / (torch.sqrt(s[upsilon]) + P.EPSILON)
    s[w] = torch.clamp(s[w] + rate * gradient, P.W_MIN, P.W_MAX)
    s[m].zero_()


def initial_state(size: NetworkSize, conditions: InitialConditions, device) -> dict:
    def zeros(*shape):
        return torch.zeros(shape, dtype=F32, device=device)

    ni, nh, no = size.num_input, size.num_hidden, size.num_output
    s = {name: zeros(n) for name, n in (("z", ni + nh), ("z_tilda", ni + nh), ("prev_in", ni), ("prev_h", nh),
                                        ("refrac", nh + no), ("in_syn", nh + no), ("sigma_prime", nh + no),
                                        ("err_h", nh), ("err_o", no),
                                        ("err_rise", no), ("err_decay", no), ("avg_sq_err", no))}
    s["v"] = torch.full((nh + no,), P.V_REST_MV, dtype=F32, device=device)
    for suffix, w in (("ih", conditions.w_input_hidden), ("ho", conditions.w_hidden_output)):
        s[f"w_{suffix}"] = torch.as_tensor(w, dtype=F32, device=device).clone()
        for var in ("e", "lam", "m", "ups"):
            s[f"{var}_{suffix}"] = torch.zeros_like(s[f"w_{suffix}"])
    return s


_COMPILED_STEP = None


def _compiled_step():
    global _COMPILED_STEP
    if _COMPILED_STEP is None:
        _COMPILED_STEP = torch.compile(superspike_step, dynamic=False)
    return _COMPILED_STEP


# The step is ~100 ops on tensors of at most 51,200 elements every 0.1 ms of model time: on a CPU it runs
# on workloads.load.CPU_THREADS (one) thread, both faster and far steadier here (measured: docs/measurements.md,
# "One intra-op thread for SuperSpike on a CPU").


class TorchSuperSpike:
    """The PyTorch reference backend."""

    name = "torch"

    def __init__(self, size: NetworkSize, conditions: InitialConditions, target: SpikeTrains,
                 device: str | torch.device = "cpu", profile_phases: bool = False, compile: bool = False,
                 cuda_graph: bool = False, threads: int | None = None):
        self.size = size
        self.device = str(device)
        # CPU: a fixed intra-op thread count, recorded with the results (see CPU_THREADS)
        self.threads = (threads or CPU_THREADS) if torch.device(device).type == "cpu" else None
        self.profile_phases = profile_phases
        dev = torch.device(device)
        steps = size.trial_timesteps
        # The learning rule is written out by hand: nothing here needs autograd, and with it off every one of
        # a trial's tiny ops skips autograd's dispatch (docs/measurements.md: its share of a trial; the same bits).
        # The state is made in the same mode it is stepped in, so a compiled step sees one kind of tensor.
        with torch.inference_mode():
            self.input_raster = torch.as_tensor(spike_source_raster(conditions.input_spikes, steps), dtype=F32,
                                                device=dev)
            self.target_raster = torch.as_tensor(spike_source_raster(target, steps), dtype=F32, device=dev)
            self.state = initial_state(size, conditions, dev)
            self.step_fn = (_compiled_step() if compile
                            else partial(superspike_step, k=CPU_TENSORS) if dev.type == "cpu" else superspike_step)
            self.global_step = 0
            self.stopwatch = Stopwatch(dev)
            # cuda_graph: steps in chunks, each a CUDA graph replay (on a CPU the same chunks run eagerly)
            self.chunked = (ChunkedTrials(self.state, self.step_fn, self.input_raster, self.target_raster)
                            if cuda_graph else None)

    def run_trial(self, r0: float, record: bool = False) -> TrialOutput:
        with intra_op_threads(self.threads), denormals_flushed(), torch.inference_mode():
            return self._run_trial(r0, record)

    def _run_trial(self, r0: float, record: bool) -> TrialOutput:
        if self.chunked is not None:
            return self._run_trial_chunked(r0, record)
        size, s, step_fn = self.size, self.state, self.step_fn
        steps, update_every = size.trial_timesteps, size.update_timesteps
        self.stopwatch.reset()
        dev = self.input_raster.device
        sum_sq = torch.zeros(size.num_output, dtype=F32, device=dev)
        hidden_count = torch.zeros(size.num_hidden, dtype=F32, device=dev)
        output_count = torch.zeros(size.num_output, dtype=F32, device=dev)
        recorded_hidden, recorded_output = [], []
        timed = self._phase_timer()
        for step in range(steps):
            hidden_spikes, output_spikes, sq = timed(
                "step", lambda: step_fn(s, self.input_raster[step], self.target_raster[step]))
            sum_sq.add_(sq)
            hidden_count.add_(hidden_spikes)
            output_count.add_(output_spikes)
            if record:
                recorded_hidden.append(hidden_spikes)
                recorded_output.append(output_spikes)
            if self.global_step != 0 and self.global_step % update_every == 0:
                timed("gradient_learn", lambda: self._learn(s, r0))
            self.global_step += 1
        rasters = (torch.stack(recorded_hidden), torch.stack(recorded_output)) if record else None
        return self._trial_output(sum_sq, hidden_count, output_count, rasters)

    def _run_trial_chunked(self, r0: float, record: bool) -> TrialOutput:
        """The same trial as the step loop, run by :class:`ChunkedTrials` between the weight updates."""
        size, chunked = self.size, self.chunked
        self.stopwatch.reset()
        chunked.reset_sums()
        rasters = None
        if record:
            dev = self.input_raster.device
            rasters = (torch.zeros(size.trial_timesteps, size.num_hidden, dtype=F32, device=dev),
                       torch.zeros(size.trial_timesteps, size.num_output, dtype=F32, device=dev))
        timed = self._phase_timer()
        for begin, steps, update_after in trial_segments(self.global_step, size.trial_timesteps,
                                                         size.update_timesteps):
            timed("step", lambda: chunked.run_segment(begin, steps, record, *(rasters or ())))
            if update_after:
                timed("gradient_learn", lambda: chunked.update(lambda s: self._learn(s, r0)))
        self.global_step += size.trial_timesteps
        return self._trial_output(chunked.sum_sq, chunked.hidden_count, chunked.output_count, rasters)

    def _phase_timer(self):
        """``timed(phase, fn)``: phase timers synchronise the device around every call, so on only when asked for."""
        sw = self.stopwatch
        return (lambda phase, fn: sw.time(phase, fn)) if self.profile_phases else (lambda phase, fn: fn())

    def _learn(self, s: dict, r0: float) -> None:
        """Both plastic projections' weight update (r_max_prop) at learning rate r0."""
        r_max_prop(s, "ih", r0, self.size.update_timesteps)
        r_max_prop(s, "ho", r0, self.size.update_timesteps)

    def _trial_output(self, sum_sq, hidden_count, output_count, rasters) -> TrialOutput:
        """The trial's record; its .item() calls pull from the device, so a clock around the trial is honest."""
        recorded = None
        if rasters is not None:
            recorded = {"input": _events(self.input_raster), "hidden": _events(rasters[0]),
                        "output": _events(rasters[1])}
        return TrialOutput(
            spike_counts={"input": int(self.input_raster.sum().item()), "hidden": int(hidden_count.sum().item()),
                          "output": int(output_count.sum().item())},
            sum_sq_error=float(sum_sq.sum().item()),
            avg_sqr_err_sum=float(self.state["avg_sq_err"].sum().item()),
            kernel_seconds=dict(self.stopwatch.totals),
            recorded=recorded,
        )


def _events(raster: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    steps, ids = np.nonzero(raster.cpu().numpy())
    return steps * P.TIMESTEP_MS, ids
