"""SuperSpike in PyGeNN (GeNN 5.x): the demo's network, with its defects fixed.

Fixes against GeNN's demo: no ``generateLineInfo`` preference (rejected by GeNN >= 5.2);
spike-source start indices are written into the host view before being pushed,
so input and target restart every trial on every backend; weights and input come
from the project's seeded generator; CPU code is built with ``optimize_code``;
generated code lives in a cache directory and is reused while the model is
unchanged; every kernel timer is read per trial; each timed trial ends with a
device-to-host pull (CUDA's step_time does not synchronise).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import SpikeflopsError
from . import params as P
from .backend import TrialOutput, denormals_flushed
from .conditions import InitialConditions
from .params import NetworkSize
from .targets import SpikeTrains

GENN_BACKENDS = ("cuda", "single_threaded_cpu")
KERNEL_TIMERS = ("neuron_update", "presynaptic_update", "postsynaptic_update", "synapse_dynamics")
CUSTOM_UPDATES = ("GradientLearn", "CalculateTranspose")
# every timer a profiled trial reports (kernels, then each custom update and its transpose)
TRIAL_TIMERS = KERNEL_TIMERS + tuple(f"custom_update_{name}{suffix}" for name in CUSTOM_UPDATES
                                     for suffix in ("", "_transpose"))
SETUP_STAGES = ("build", "load", "init", "init_sparse", "initial_transpose")     # the one-off costs


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send what child processes print to stdout (GeNN's make and compiler) to stderr for a while:
    stdout carries the commands' JSON and tables."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def pygenn_available() -> bool:
    try:
        import pygenn  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def _build_lock(folder: Path):
    """An exclusive lock on ``folder`` for this process (fcntl; released when the block or the process ends)."""
    import fcntl

    with open(folder / ".build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def default_cache_dir() -> Path:
    base = os.environ.get("SPIKEFLOPS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "spikeflops")
    return Path(base) / "genn"


def genn_backends() -> tuple[str, ...]:
    """The backends this pygenn was built with (its ``<name>_backend`` modules), in GENN_BACKENDS order."""
    import importlib.util

    found = []
    for name in GENN_BACKENDS:
        try:
            if importlib.util.find_spec(f"pygenn.{name}_backend") is not None:
                found.append(name)
        except (ImportError, ValueError):
            continue
    return tuple(found)


def detect_genn_backend() -> str:
    """``cuda`` where pygenn offers it and there is a GPU to run it on, else the CPU backend."""
    import torch

    offered = genn_backends()
    if "cuda" in offered and torch.cuda.is_available():
        return "cuda"
    return "single_threaded_cpu"


def require_genn_backend(backend: str) -> str:
    """``backend`` if this pygenn offers it; else a one-line error (GeNN itself raised KeyError: 'cuda')."""
    if backend not in GENN_BACKENDS:
        raise SpikeflopsError(f"unknown GeNN backend {backend!r}; choose one of {', '.join(GENN_BACKENDS)}")
    offered = genn_backends()
    if backend not in offered:
        raise SpikeflopsError(f"this pygenn has no {backend} backend (it offers: {', '.join(offered) or 'none'}); "
                              "build pygenn with CUDA for GeNN on a GPU (see docs/genn.md)")
    return backend


def _models():
    """The demo's custom models (GeNN code strings), plus a per-trial squared-error accumulator."""
    from pygenn import (create_custom_update_model, create_neuron_model, create_weight_update_model)

    r_max_prop = create_custom_update_model(
        "r_max_prop",
        params=["updateTime", "tauRMS", "epsilon", "wMin", "wMax", "r0"],
        vars=[("upsilon", "scalar")],
        derived_params=[("updateTimesteps", lambda pars, dt: pars["updateTime"] / dt),
                        ("expRMS", lambda pars, dt: np.exp(-pars["updateTime"] / pars["tauRMS"]))],
        var_refs=[("m", "scalar"), ("variable", "scalar")],
        update_code="""
        const scalar gradient = m / updateTimesteps;
        upsilon = fmax(upsilon * expRMS, gradient * gradient);
        const scalar r = r0 / (sqrt(upsilon) + epsilon);
        variable += r * gradient;
        variable = fmin(wMax, fmax(wMin, variable));
        m = 0.0;
        """)

    superspike = create_weight_update_model(
        "superspike",
        params=["tauRise", "tauDecay", "beta", "Vthresh"],
        vars=[("w", "scalar"), ("e", "scalar"), ("lambda", "scalar"), ("m", "scalar")],
        pre_vars=[("z", "scalar"), ("zTilda", "scalar")],
        post_vars=[("sigmaPrime", "scalar")],
        post_neuron_var_refs=[("V", "scalar"), ("errTilda", "scalar")],
        pre_spike_syn_code="addToPost(w);",
        pre_spike_code="z += 1.0;",
        pre_dynamics_code="""
        z += (-z / tauRise) * dt;
        zTilda += ((-zTilda + z) / tauDecay) * dt;
        """,
        post_dynamics_code="""
        if(V < -80.0) {
            sigmaPrime = 0.0;
        }
        else {
            const scalar onePlusHi = 1.0 + fabs(beta * 0.001 * (V - Vthresh));
            sigmaPrime = beta / (onePlusHi * onePlusHi);
        }
        """,
        synapse_dynamics_code="""
        e += (zTilda * sigmaPrime - e / tauRise) * dt;
        lambda += ((-lambda + e) / tauDecay) * dt;
        m += lambda * errTilda;
        """)

    feedback = create_weight_update_model(
        "feedback", vars=[("w", "scalar")], pre_neuron_var_refs=[("errTilda", "scalar")],
        synapse_dynamics_code="addToPost(w * errTilda);")

    lif_sim = """
        if (refracTime == tauRefrac) {
            V = Vrest;
        }
        if (refracTime <= 0.0) {
            scalar alpha = (Isyn * Rmembrane) + Vrest;
            V = alpha - (ExpTC * (alpha - V));
        }
        else {
            refracTime -= dt;
        }
        """
    lif_derived = [("ExpTC", lambda pars, dt: np.exp(-dt / pars["tauMem"])),
                   ("Rmembrane", lambda pars, dt: pars["tauMem"] / pars["C"])]
    threshold = "refracTime <= 0.0 && V >= Vthresh"

    hidden = create_neuron_model(
        "hidden", params=["C", "tauMem", "Vrest", "Vthresh", "tauRefrac"],
        vars=[("V", "scalar"), ("refracTime", "scalar"), ("errTilda", "scalar")],
        additional_input_vars=[("ISynFeedback", "scalar", 0.0)],
        derived_params=lif_derived,
        sim_code=lif_sim + "errTilda = ISynFeedback;\n",
        reset_code="refracTime = tauRefrac;",
        threshold_condition_code=threshold)

    output = create_neuron_model(
        "output",
        params=["C", "tauMem", "Vrest", "Vthresh", "tauRefrac", "tauRise", "tauDecay", "tauAvgErr"],
        vars=[("V", "scalar"), ("refracTime", "scalar"), ("errRise", "scalar"), ("errTilda", "scalar"),
              ("avgSqrErr", "scalar"), ("errDecay", "scalar"), ("trialSqrErr", "scalar"),
              ("startSpike", "unsigned int"), ("endSpike", "unsigned int")],
        extra_global_params=[("spikeTimes", "scalar*")],
        derived_params=lif_derived + [
            ("normFactor", lambda pars, dt: P.kernel_norm_factor()),
            ("tRiseMult", lambda pars, dt: np.exp(-dt / pars["tauRise"])),
            ("tDecayMult", lambda pars, dt: np.exp(-dt / pars["tauDecay"])),
            ("mulAvgErr", lambda pars, dt: np.exp(-dt / pars["tauAvgErr"]))],
        sim_code=lif_sim + """
        scalar sPred = 0.0;
        if (startSpike != endSpike && t >= spikeTimes[startSpike]) {
            startSpike++;
            sPred = 1.0;
        }
        const scalar sReal = (refracTime <= 0.0 && V >= Vthresh) ? 1.0 : 0.0;
        const scalar mismatch = sPred - sReal;
        errRise = (errRise * tRiseMult) + mismatch;
        errDecay = (errDecay * tDecayMult) + mismatch;
        errTilda = (errDecay - errRise) * normFactor;
        const scalar temp = errTilda * errTilda * dt * 0.001;
        avgSqrErr *= mulAvgErr;
        avgSqrErr += temp;
        trialSqrErr += temp;
        """,
        reset_code="refracTime = tauRefrac;",
        threshold_condition_code=threshold)
    return r_max_prop, superspike, feedback, hidden, output


class GeNNSuperSpike:
    """The PyGeNN backend: builds (or reuses) the generated code, then runs trials."""

    name = "genn"

    def __init__(self, size: NetworkSize, conditions: InitialConditions, target: SpikeTrains,
                 backend: str | None = None, optimize_code: bool = True, cache_dir: str | Path | None = None,
                 kernel_profiling: bool = True):
        if not pygenn_available():
            raise SpikeflopsError("the GeNN backend needs pygenn (pip install from GeNN's source; see docs/genn.md)")
        backend = require_genn_backend(backend or detect_genn_backend())
        from pygenn import GeNNModel, create_var_ref, create_wu_var_ref, init_postsynaptic, init_weight_update

        self.size, self.device = size, backend
        r_max_prop, superspike, feedback, hidden_model, output_model = _models()
        prefs = {"optimize_code": optimize_code} if backend == "single_threaded_cpu" else {}
        model = GeNNModel("float", f"superspike_{size.name}_{backend}", backend=backend, **prefs)
        model.dt = P.TIMESTEP_MS
        model.timing_enabled = kernel_profiling
        self.kernel_profiling = kernel_profiling

        inputs = conditions.input_spikes
        self.input_starts, self.target_starts = inputs.starts.astype(np.uint32), target.starts.astype(np.uint32)
        self.input_pop = model.add_neuron_population(
            "Input", size.num_input, "SpikeSourceArray", {},
            {"startSpike": self.input_starts, "endSpike": inputs.ends.astype(np.uint32)})
        lif = {"C": P.C_NF, "tauMem": P.TAU_MEM_MS, "Vrest": P.V_REST_MV, "Vthresh": P.V_THRESH_MV,
               "tauRefrac": P.TAU_REFRAC_MS}
        self.hidden_pop = model.add_neuron_population(
            "Hidden", size.num_hidden, hidden_model, lif, {"V": P.V_REST_MV, "refracTime": 0.0, "errTilda": 0.0})
        self.output_pop = model.add_neuron_population(
            "Output", size.num_output, output_model,
            {**lif, "tauRise": P.TAU_RISE_MS, "tauDecay": P.TAU_DECAY_MS, "tauAvgErr": P.TAU_AVG_ERR_MS},
            {"V": P.V_REST_MV, "refracTime": 0.0, "errRise": 0.0, "errTilda": 0.0, "errDecay": 0.0,
             "avgSqrErr": 0.0, "trialSqrErr": 0.0, "startSpike": self.target_starts,
             "endSpike": target.ends.astype(np.uint32)})
        self.input_pop.extra_global_params["spikeTimes"].set_init_values(inputs.times_ms.astype(np.float32))
        self.output_pop.extra_global_params["spikeTimes"].set_init_values(target.times_ms.astype(np.float32))
        for pop in (self.input_pop, self.hidden_pop, self.output_pop):
            pop.spike_recording_enabled = True

        ss_params = {"tauRise": P.TAU_RISE_MS, "tauDecay": P.TAU_DECAY_MS, "beta": P.BETA, "Vthresh": P.V_THRESH_MV}

        def plastic(name, pre, post, w):
            return model.add_synapse_population(
                name, "DENSE", pre, post,
                init_weight_update(superspike, ss_params,
                                   {"w": w.flatten(), "e": 0.0, "lambda": 0.0, "m": 0.0},
                                   {"z": 0.0, "zTilda": 0.0}, {"sigmaPrime": 0.0},
                                   post_var_refs={"V": create_var_ref(post, "V"),
                                                  "errTilda": create_var_ref(post, "errTilda")}),
                init_postsynaptic("ExpCurr", {"tau": P.TAU_SYN_MS}))

        self.input_hidden = plastic("InputHidden", self.input_pop, self.hidden_pop, conditions.w_input_hidden)
        self.hidden_output = plastic("HiddenOutput", self.hidden_pop, self.output_pop, conditions.w_hidden_output)
        output_hidden = model.add_synapse_population(
            "OutputHidden", "DENSE", self.output_pop, self.hidden_pop,
            init_weight_update(feedback, {}, {"w": 0.0},
                               pre_var_refs={"errTilda": create_var_ref(self.output_pop, "errTilda")}),
            init_postsynaptic("DeltaCurr"))
        output_hidden.post_target_var = "ISynFeedback"

        model.add_custom_update("feedback_transpose", "CalculateTranspose", "Transpose", {}, {},
                                {"variable": create_wu_var_ref(self.hidden_output, "w", output_hidden, "w")})
        opt_params = {"updateTime": P.UPDATE_TIME_MS, "tauRMS": P.TAU_RMS_MS, "epsilon": P.EPSILON,
                      "wMin": P.W_MIN, "wMax": P.W_MAX, "r0": P.R0}
        self.optimisers = []
        for name, syn, transpose in (("input_hidden_optimiser", self.input_hidden, None),
                                     ("hidden_output_optimiser", self.hidden_output, output_hidden)):
            var = (create_wu_var_ref(syn, "w", transpose, "w") if transpose is not None
                   else create_wu_var_ref(syn, "w"))
            cu = model.add_custom_update(name, "GradientLearn", r_max_prop, opt_params, {"upsilon": 0.0},
                                         {"m": create_wu_var_ref(syn, "m"), "variable": var})
            cu.set_param_dynamic("r0")
            self.optimisers.append(cu)

        # timed and profiled builds are different code (timers compiled in or not): one folder each, so they
        # never rebuild over each other, and a lock so two processes never build into one folder at once
        cache = (Path(cache_dir) if cache_dir else default_cache_dir()) / ("timers" if kernel_profiling else "plain")
        cache.mkdir(parents=True, exist_ok=True)
        # One-off costs, each its own metric (SuperSpikeSetup): the per-trial differences never see them.
        with _build_lock(cache):
            t0 = time.perf_counter()
            with _stdout_to_stderr():
                model.build(path_to_model=str(cache))   # GeNN reuses the code while the model hash is unchanged
                t1 = time.perf_counter()
                model.load(num_recording_timesteps=size.trial_timesteps)
            t2 = time.perf_counter()
        model.custom_update("CalculateTranspose")
        if backend == "cuda":
            self.hidden_output.vars["w"].pull_from_device()     # the transpose is done when this returns
        t3 = time.perf_counter()
        code = cache / f"{model.name}_CODE"        # what GeNN generated: deterministic for a GeNN version
        self.generated_code_bytes = sum(f.stat().st_size for f in code.glob("*")
                                        if f.suffix in (".cc", ".cpp", ".cu", ".h")) if code.is_dir() else 0
        self.setup_seconds = {"build": t1 - t0, "load": t2 - t1, "initial_transpose": t3 - t2,
                              "init": model.init_time if kernel_profiling else math.nan,
                              "init_sparse": model.init_sparse_time if kernel_profiling else math.nan}
        self.model = model
        self.global_step = 0
        self._last_timers = self._read_timers()

    def _read_timers(self) -> dict[str, float]:
        if not self.kernel_profiling:
            return {}
        m = self.model
        timers = {name: getattr(m, f"{name}_time") for name in KERNEL_TIMERS}
        timers["init"] = m.init_time
        timers["init_sparse"] = m.init_sparse_time
        for name in CUSTOM_UPDATES:
            timers[f"custom_update_{name}"] = m.get_custom_update_time(name)
            timers[f"custom_update_{name}_transpose"] = m.get_custom_update_transpose_time(name)
        return timers

    def run_trial(self, r0: float, record: bool = False) -> TrialOutput:
        model, size = self.model, self.size
        for cu in self.optimisers:
            cu.set_dynamic_param_value("r0", r0)
        model.timestep = 0
        # the CPU backend steps in this thread: FTZ/DAZ here is FTZ/DAZ in the generated code (backend.py)
        with denormals_flushed():
            for _ in range(size.trial_timesteps):
                model.step_time()
                if self.global_step != 0 and self.global_step % size.update_timesteps == 0:
                    model.custom_update("GradientLearn")
                self.global_step += 1

        # The pulls synchronise the device, so wall time around run_trial is honest on CUDA.
        model.pull_recording_buffers_from_device()
        err = self.output_pop.vars
        err["trialSqrErr"].pull_from_device()
        err["avgSqrErr"].pull_from_device()
        sum_sq = float(np.sum(err["trialSqrErr"].view, dtype=np.float64))
        avg = float(np.sum(err["avgSqrErr"].view, dtype=np.float64))
        spikes = {pop_name: pop.spike_recording_data[0] for pop_name, pop in
                  (("input", self.input_pop), ("hidden", self.hidden_pop), ("output", self.output_pop))}

        # Restart the spike sources: write the host view, then push (the demo pushed an unchanged view).
        self.input_pop.vars["startSpike"].view[:] = self.input_starts
        self.input_pop.vars["startSpike"].push_to_device()
        self.output_pop.vars["startSpike"].view[:] = self.target_starts
        self.output_pop.vars["startSpike"].push_to_device()
        err["trialSqrErr"].view[:] = 0.0
        err["trialSqrErr"].push_to_device()

        timers = self._read_timers()
        per_trial = {k: timers[k] - self._last_timers.get(k, 0.0) for k in timers}
        self._last_timers = timers
        return TrialOutput(
            spike_counts={k: int(len(v[0])) for k, v in spikes.items()},
            sum_sq_error=sum_sq, avg_sqr_err_sum=avg, kernel_seconds=per_trial,
            recorded={k: (np.asarray(t, float), np.asarray(i, np.int64)) for k, (t, i) in spikes.items()}
            if record else None)
