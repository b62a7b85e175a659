"""The SuperSpike steps that the counted family counts (``workloads.counting`` runs them under callgrind).

Each factory takes a case's fields, prepares its backend outside the instrumented span (GeNN: code
generation, compilation and loading; torch: the model and its tensors) and returns ``(step, close)``:
``step`` is what is counted, ``close`` releases what was prepared.
"""

from __future__ import annotations


def _case(fields: dict):
    from .case import SuperSpikeCase

    return SuperSpikeCase(**{"trials": 1, **fields})


def torch_step(fields: dict):
    """One simulation step of the torch backend."""
    from .workload import prepare

    model = prepare(_case(fields))
    state = {name: value.clone() for name, value in model.state.items()}
    inputs, targets = model.input_raster.clone(), model.target_raster.clone()
    return (lambda: model.step_fn(state, inputs[0], targets[0])), (lambda: None)


def torch_update(fields: dict):
    """One weight update (both r_max_prop optimisers) of the torch backend."""
    from .torch_backend import r_max_prop
    from .training import learning_rate
    from .workload import prepare

    case = _case(fields)
    model = prepare(case)
    state = {name: value.clone() for name, value in model.state.items()}

    def update():
        r_max_prop(state, "ih", learning_rate(0), case.network.update_timesteps)
        r_max_prop(state, "ho", learning_rate(0), case.network.update_timesteps)
    return update, (lambda: None)


def _genn_model(fields: dict):
    from .training import learning_rate
    from .workload import prepare

    # no kernel timers: the timed program, not the profiled one (timers add clock reads to every kernel)
    backend = prepare(_case({**fields, "backend": "genn", "device": "cpu", "kernel_profiling": False}))
    for optimiser in backend.optimisers:
        optimiser.set_dynamic_param_value("r0", learning_rate(0))
    return backend


def genn_step(fields: dict):
    """One ``step_time`` of GeNN's CPU backend from the start of a trial: the generated neuron update
    (``updateNeurons``), presynaptic and synapse-dynamics updates (``updateSynapses``), with denormals
    flushed as in every trial."""
    from .backend import denormals_flushed

    backend = _genn_model(fields)
    flushed = denormals_flushed()
    flushed.__enter__()
    return backend.model.step_time, (lambda: flushed.__exit__(None, None, None))


def genn_update(fields: dict):
    """One learning update of GeNN's CPU backend: the ``GradientLearn`` custom update (r_max_prop on both
    plastic projections, and the feedback weights' transpose), after a trial's first update period."""
    from .backend import denormals_flushed

    backend = _genn_model(fields)
    with denormals_flushed():
        for _ in range(backend.size.update_timesteps):      # gradients to apply: one update period's steps
            backend.model.step_time()
    return (lambda: backend.model.custom_update("GradientLearn")), (lambda: None)
