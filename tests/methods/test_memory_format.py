"""``memory_format: channels_last`` (issue 18): every method trains, attacks, bounds and scores the same model in NHWC
as in NCHW, to float32 rounding; a reference's fresh initialisation draws the same weights in both."""

import copy

import pytest
import torch

from privrob.methods import (DiffAITraining, IBPTraining, NaturalTraining, NoiseLayerTraining, PGDTraining,
                             TRADESTraining, WongKolterTraining, WRMTraining)
from privrob.models import CifarResNet, DigitsCNN
from privrob.privacy import Adversarial, Benign, Verified, score_examples
from privrob.privacy.evaluation import evaluation_mode

METHODS = {
    "natural": lambda f: NaturalTraining(CifarResNet(width=1, units_per_stage=1), memory_format=f),
    # small attack steps: a sign step carries a rounding difference of the gradient into the input at full size
    "pgd": lambda f: PGDTraining(CifarResNet(width=1, units_per_stage=1), eps=8 / 255, steps=3, rel_step_size=0.02,
                                 memory_format=f),
    "trades": lambda f: TRADESTraining(CifarResNet(width=1, units_per_stage=1), eps=8 / 255, steps=3,
                                       step_size=0.1 / 255, memory_format=f),
    "wrm": lambda f: WRMTraining(DigitsCNN(width=1), steps=3, memory_format=f),
    "ibp": lambda f: IBPTraining(DigitsCNN(width=1), eps=0.1, warmup_steps=0, ramp_steps=1, bound="crown_ibp",
                                 memory_format=f),
    "diffai": lambda f: DiffAITraining(DigitsCNN(width=1, init="diffai", padding="one", conv_bias=True), eps=0.1,
                                       domain="zonotope", warmup_epochs=0, ramp_epochs=1, memory_format=f),
    "wong_kolter": lambda f: WongKolterTraining(DigitsCNN(width=1), eps=0.05, eps_start=0.05, ramp_epochs=0,
                                                projections=4, memory_format=f),
    "noise_layer": lambda f: NoiseLayerTraining(DigitsCNN(width=1), eval_draws=4, memory_format=f),
}


def _input(model):
    if isinstance(model.backbone, CifarResNet):
        return torch.rand(6, 3, 32, 32), torch.randint(0, 10, (6,))
    return torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))


def _pair(name):
    """The method in both formats with the same weights (the contiguous one's, copied by value)."""
    torch.manual_seed(0)
    nchw = METHODS[name]("contiguous")
    nhwc = METHODS[name]("channels_last")
    nhwc.load_state_dict(nchw.state_dict())
    return nchw, nhwc


def test_channels_last_puts_every_convolution_kernel_in_nhwc():
    _, nhwc = _pair("pgd")
    kernels = [p for p in nhwc.backbone.parameters() if p.dim() == 4]
    assert kernels and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                           for p in kernels if p.shape[1] > 1)
    with pytest.raises(ValueError, match="memory_format"):
        NaturalTraining(DigitsCNN(width=1), memory_format="nhwc")


@pytest.mark.parametrize("name", METHODS)
def test_a_training_step_is_the_same_in_both_formats(name):
    """Loss, logits and every parameter's gradient (bounds and attacks included) agree to float32 rounding (a gradient
    to 0.1% of its norm; a layout error moves it by its whole norm); batch-norm buffers move alike."""
    models = _pair(name)
    x, y = _input(models[0])
    out = []
    for model in models:
        model.train()
        torch.manual_seed(1)  # the same random starts and noise draws
        loss, logits = model.training_loss(x, y)
        loss.backward()
        out.append((loss.detach(), logits.detach(), {n: p.grad for n, p in model.named_parameters()},
                    {n: b.clone() for n, b in model.named_buffers()}))
    (l0, z0, g0, b0), (l1, z1, g1, b1) = out
    torch.testing.assert_close(l1, l0, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(z1, z0, rtol=1e-4, atol=1e-5)
    for n in g0:
        assert g1[n] is not None and g0[n] is not None, n
        assert float((g1[n] - g0[n]).norm()) <= 1e-3 * float(g0[n].norm()) + 1e-7, n
    for n in b0:
        assert float((b1[n] - b0[n]).float().norm()) <= 1e-3 * float(b0[n].float().norm()) + 1e-7, n
    assert any(n.endswith("running_mean") for n in b0) == isinstance(models[0].backbone, CifarResNet)


@pytest.mark.parametrize("name, strategy", [
    ("pgd", Adversarial(eps=8 / 255, steps=5)), ("pgd", Benign()),
    ("wong_kolter", Verified(eps=0.05, methods=("dual",))), ("ibp", Verified(eps=0.1, methods=("crown_ibp",))),
    ("noise_layer", Benign()),
])
def test_scores_are_the_same_in_both_formats(name, strategy):
    models = _pair(name)
    for model, fmt in zip(models, ("contiguous", "channels_last")):
        model.scoring_memory_format = fmt  # each scored in its own format (auto would score both in NHWC)
    x, y = _input(models[0])
    dataset = torch.utils.data.TensorDataset(x, y)
    rows = [score_examples(m, dataset, torch.arange(len(y)), strategy, 4, torch.device("cpu")).compute()
            for m in models]
    torch.testing.assert_close(rows[1]["scores"], rows[0]["scores"], rtol=1e-4, atol=1e-6)
    assert torch.equal(rows[1]["correct"], rows[0]["correct"])


def _kernels(model):
    return [p for p in model.backbone.parameters() if p.dim() == 4 and p.shape[1] > 1]


@pytest.mark.parametrize("choice, nhwc", [("auto", True), ("channels_last", True), ("contiguous", False)])
def test_scoring_runs_in_its_memory_format_and_puts_back_the_very_kernels(choice, nhwc):
    """A contiguous model is scored in NHWC on the CPU by default (issue 18: an attack step up to 2.4x faster); its
    kernels after scoring are the tensors it had (storage, strides, values), whatever the scoring format."""
    model = PGDTraining(CifarResNet(width=1, units_per_stage=1), eps=8 / 255, steps=2, rel_step_size=0.5,
                        scoring_memory_format=choice)
    before = [(p.data_ptr(), p.stride(), p.detach().clone()) for p in model.parameters()]
    seen = []

    def probe(m, x, y):
        seen.append([p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                     for p in _kernels(m)])
        return Adversarial(eps=8 / 255, steps=2)(m, x, y)

    x, y = _input(model)
    score_examples(model, torch.utils.data.TensorDataset(x, y), torch.arange(6), probe, 3, torch.device("cpu"))
    assert len(seen) == 2 and all(flags and all(f == nhwc for f in flags) for flags in seen)
    for p, (ptr, stride, value) in zip(model.parameters(), before):
        assert p.data_ptr() == ptr and p.stride() == stride and torch.equal(p, value)
    with pytest.raises(RuntimeError), evaluation_mode(model):
        raise RuntimeError  # put back on an error too
    for p, (ptr, stride, value) in zip(model.parameters(), before):
        assert p.data_ptr() == ptr and p.stride() == stride
    with pytest.raises(ValueError, match="scoring_memory_format"):
        NaturalTraining(DigitsCNN(width=1), scoring_memory_format="nhwc")


def test_auto_scores_in_the_training_format_off_the_cpu():
    from privrob.memory_format import scoring_memory_format

    model = NaturalTraining(DigitsCNN(width=1))
    assert scoring_memory_format(model) == torch.channels_last
    assert scoring_memory_format(model.to("meta")) is None  # a GPU's (or any other device's) model: unchanged
    model.scoring_memory_format = "contiguous"
    assert scoring_memory_format(model) == torch.contiguous_format


@pytest.mark.parametrize("strategy", [Benign(), Adversarial(eps=8 / 255, steps=5, rel_step_size=0.02)])
def test_a_score_in_either_scoring_format_is_the_same_to_float32_rounding(strategy):
    """The default (NHWC on the CPU) scores what contiguous scoring does, on a batch-norm network: the scores to
    1e-4 relative, the same examples correct."""
    torch.manual_seed(0)
    model = PGDTraining(CifarResNet(width=1, units_per_stage=1), eps=8 / 255, steps=2, rel_step_size=0.5)
    x, y = _input(model)
    dataset = torch.utils.data.TensorDataset(x, y)
    rows = []
    for choice in ("contiguous", "auto"):
        model.scoring_memory_format = choice
        rows.append(score_examples(model, dataset, torch.arange(6), strategy, 4, torch.device("cpu")).compute())
    torch.testing.assert_close(rows[1]["scores"], rows[0]["scores"], rtol=1e-4, atol=1e-6)
    assert torch.equal(rows[1]["correct"], rows[0]["correct"])


@pytest.mark.parametrize("name", ["pgd", "ibp"])
def test_a_fresh_initialisation_draws_the_same_weights_in_both_formats(name):
    """What ``privrob references`` draws for reference k under seed k, whatever the config's memory format."""
    weights = []
    for fmt in ("contiguous", "channels_last"):
        torch.manual_seed(0)
        model = METHODS[name](fmt)
        torch.manual_seed(5)
        model.reset_backbone()
        weights.append(model.state_dict())
        kernels = [p for p in model.backbone.parameters() if p.dim() == 4 and p.shape[1] > 1]
        assert all(p.is_contiguous(memory_format=torch.channels_last) == (fmt == "channels_last") for p in kernels)
    for n in weights[0]:
        assert torch.equal(weights[0][n], weights[1][n]), n


def test_scoring_freezes_the_parameters_and_restores_each_flag():
    """An attack during scoring records no weight-gradient graph; a parameter frozen before stays frozen after."""
    model = METHODS["pgd"]("channels_last")
    frozen = next(model.backbone.parameters())
    frozen.requires_grad_(False)
    seen = []

    def probe(m, x, y):
        seen.append([p.requires_grad for p in m.parameters()])
        return Adversarial(eps=8 / 255, steps=2)(m, x, y)

    x, y = _input(model)
    score_examples(model, torch.utils.data.TensorDataset(x, y), torch.arange(6), probe, 3, torch.device("cpu"))
    assert len(seen) == 2 and not any(any(flags) for flags in seen)
    assert [p.requires_grad for p in model.parameters()] == [p is not frozen for p in model.parameters()]
    with pytest.raises(RuntimeError), evaluation_mode(model):
        raise RuntimeError  # restored on an error too
    assert [p.requires_grad for p in model.parameters()] == [p is not frozen for p in model.parameters()]


def test_a_channels_last_checkpoint_loads_into_a_contiguous_model():
    nchw, nhwc = _pair("pgd")
    torch.manual_seed(2)
    with torch.no_grad():
        for p in nhwc.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    state = copy.deepcopy(nhwc.state_dict())
    nchw.load_state_dict(state)
    x, _ = _input(nchw)
    nchw.eval(), nhwc.eval()
    torch.testing.assert_close(nchw(x), nhwc(x), rtol=1e-4, atol=1e-5)
    assert all(p.is_contiguous() for p in nchw.parameters())


def test_a_compiled_backbone_trains_attacks_and_loads_as_the_eager_one():
    """``compile``: the training step (attack included) equals eager's to float32 rounding, and the parameter names,
    so the checkpoints, are the eager model's."""
    torch.manual_seed(0)
    eager = PGDTraining(DigitsCNN(width=1), eps=0.1, steps=2, rel_step_size=0.5)
    compiled = PGDTraining(DigitsCNN(width=1), eps=0.1, steps=2, rel_step_size=0.5, compile="default")
    compiled.load_state_dict(eager.state_dict())
    assert list(compiled.state_dict()) == list(eager.state_dict())
    assert compiled.backbone._compiled_call_impl is not None and eager.backbone._compiled_call_impl is None
    x, y = torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))
    losses = []
    for model in (eager, compiled):
        torch.manual_seed(1)
        losses.append(model.training_loss(x, y)[0].detach())
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="compile"):
        NaturalTraining(DigitsCNN(width=1), compile="fast")


def test_a_compiled_training_bound_is_the_eager_one_at_every_eps():
    """``compile`` compiles IBP's training bound too (issue 18: bounds are launch-bound on a GPU): the loss and its
    gradients equal eager's to float32 rounding while ε ramps (a new ε is not a new graph each step)."""
    import torch._dynamo

    torch.manual_seed(0)
    models = [IBPTraining(DigitsCNN(width=1), eps=0.1, warmup_steps=0, ramp_steps=4, compile=mode)
              for mode in (None, "default")]
    models[1].load_state_dict(models[0].state_dict())
    x, y = torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    for eps in (0.02, 0.05, 0.08):
        out = []
        for model in models:
            model.zero_grad()
            loss = model.cross_entropy(model.training_bound(x, y, eps, "ibp"), y)
            loss.backward()
            out.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
        torch.testing.assert_close(out[1][0], out[0][0], rtol=1e-4, atol=1e-5)
        for g1, g0 in zip(out[1][1], out[0][1]):
            torch.testing.assert_close(g1, g0, rtol=1e-3, atol=1e-5)
    assert 1 <= torch._dynamo.utils.counters["stats"]["unique_graphs"] <= 2  # compiled: the first ε, then ε dynamic
