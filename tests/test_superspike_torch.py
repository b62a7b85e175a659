"""The torch backend's step shares one tensor per variable between populations that run the same equations,
and on a CPU takes its constants as 0-dim float32 tensors; held here, bit for bit, to the same equations
stepped population by population (GeNN's own layout) with Python-float constants."""

import torch

from workloads.superspike import params as P
from workloads.superspike import torch_backend as tb
from workloads.superspike.conditions import make_initial_conditions
from workloads.superspike.params import get_size
from workloads.superspike.targets import default_target
from workloads.superspike.training import learning_rate


def _split(s: dict, ni: int, nh: int) -> dict:
    """The shared state as one tensor per population and variable."""
    out = {k: v.clone() for k, v in s.items() if k not in ("v", "refrac", "in_syn", "sigma_prime", "z", "z_tilda")}
    for shared, hidden, output in (("v", "v_h", "v_o"), ("refrac", "ref_h", "ref_o"),
                                   ("in_syn", "insyn_h", "insyn_o"), ("sigma_prime", "sp_h", "sp_o")):
        out[hidden], out[output] = s[shared][:nh].clone(), s[shared][nh:].clone()
    for shared, inp, hidden in (("z", "z_in", "z_h"), ("z_tilda", "zt_in", "zt_h")):
        out[inp], out[hidden] = s[shared][:ni].clone(), s[shared][ni:].clone()
    return out


def _step_by_population(s: dict, input_spikes, target_spikes):
    """One step in GeNN's order with each population's variables apart (the layout before the sharing)."""
    s["insyn_h"] = s["insyn_h"] + s["prev_in"] @ s["w_ih"]
    s["insyn_o"] = s["insyn_o"] + s["prev_h"] @ s["w_ho"]
    tb._eligibility(s["e_ih"], s["lam_ih"], s["m_ih"], s["zt_in"], s["sp_h"], s["err_h"])
    tb._eligibility(s["e_ho"], s["lam_ho"], s["m_ho"], s["zt_h"], s["sp_o"], s["err_o"])
    feedback = s["w_ho"] @ s["err_o"]
    s["z_in"], s["zt_in"] = tb._traces(s["z_in"], s["zt_in"], input_spikes)
    s["v_h"], s["ref_h"], s["insyn_h"] = tb._lif_membrane(s["v_h"], s["ref_h"], s["insyn_h"])
    s["err_h"] = feedback
    s["sp_h"] = tb._sigma_prime(s["v_h"])
    hidden = ((s["ref_h"] <= 0.0) & (s["v_h"] >= P.V_THRESH_MV)).to(tb.F32)
    s["ref_h"] = torch.where(hidden > 0, P.TAU_REFRAC_MS, s["ref_h"])
    s["z_h"], s["zt_h"] = tb._traces(s["z_h"], s["zt_h"], hidden)
    s["v_o"], s["ref_o"], s["insyn_o"] = tb._lif_membrane(s["v_o"], s["ref_o"], s["insyn_o"])
    output = ((s["ref_o"] <= 0.0) & (s["v_o"] >= P.V_THRESH_MV)).to(tb.F32)
    mismatch = target_spikes - output
    s["err_rise"] = s["err_rise"] * tb.T_RISE_MULT + mismatch
    s["err_decay"] = s["err_decay"] * tb.T_DECAY_MULT + mismatch
    s["err_o"] = (s["err_decay"] - s["err_rise"]) * tb.NORM_FACTOR
    sq = s["err_o"] * s["err_o"] * (tb.DT * 0.001)
    s["avg_sq_err"] = s["avg_sq_err"] * tb.MUL_AVG_ERR + sq
    s["sp_o"] = tb._sigma_prime(s["v_o"])
    s["ref_o"] = torch.where(output > 0, P.TAU_REFRAC_MS, s["ref_o"])
    s["prev_in"], s["prev_h"] = input_spikes, hidden
    return hidden, output, sq


def test_shared_population_tensors_give_the_separate_populations_bits_across_weight_updates():
    size = get_size("ci")
    conditions = make_initial_conditions(size, 5)
    target = default_target(size.num_output, size.trial_ms)
    shared = tb.TorchSuperSpike(size, conditions, target)
    apart = tb.TorchSuperSpike(size, conditions, target)
    apart.state = _split(apart.state, size.num_input, size.num_hidden)
    apart.step_fn = _step_by_population
    assert shared.step_fn.keywords["k"] is tb.CPU_TENSORS     # the CPU step as it runs: tensor constants
    for trial in range(3):                   # 4 weight updates a trial; the output layer fires from trial 3 on
        a = shared.run_trial(learning_rate(trial), record=True)
        b = apart.run_trial(learning_rate(trial), record=True)
        assert a.spike_counts == b.spike_counts and a.spike_counts["hidden"] > 0
        assert (a.sum_sq_error, a.avg_sqr_err_sum) == (b.sum_sq_error, b.avg_sqr_err_sum)
        for population in ("hidden", "output"):
            for x, y in zip(a.recorded[population], b.recorded[population]):
                assert (x == y).all(), f"trial {trial}: {population} spikes differ"
    assert a.spike_counts["output"] > 0
    expected = _split(shared.state, size.num_input, size.num_hidden)
    assert expected.keys() == apart.state.keys()
    for name, value in apart.state.items():
        assert torch.equal(expected[name], value), name
    assert not torch.equal(shared.state["w_ho"], torch.as_tensor(conditions.w_hidden_output))    # it learned
