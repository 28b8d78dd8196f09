import pytest
import torch
from torch import nn

from privrob.attacks import pgd
from privrob.bounds import CERTIFIED, METHODS, logit_bounds, margin_lower_bounds

convex_adversarial = pytest.importorskip("convex_adversarial")  # a dev dependency; installed by .ci/run


def fc_net():
    return nn.Sequential(nn.Flatten(), nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 25), nn.ReLU(), nn.Linear(25, 5))


def conv_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 4, stride=2, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(6 * 4 * 4, 20), nn.ReLU(), nn.Linear(20, 5))


NETS = {"fc": (fc_net, (1, 4, 5)), "conv": (conv_net, (1, 8, 8))}


def _margins(net, x, y):
    z = net(x)
    return z.gather(1, y[:, None]) - z


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-7), (torch.float32, 1e-4)])
def test_dual_equals_convex_adversarial(name, clip, dtype, tol):
    torch.manual_seed(0)
    make, shape = NETS[name]
    net = make().to(dtype)
    x, y = torch.rand(6, *shape, dtype=dtype), torch.randint(0, 5, (6,))
    ref = -convex_adversarial.RobustBounds(net, 0.05, bounded_input=clip)(x, y)
    ours = margin_lower_bounds(net, x, y, 0.05, "dual", clip=clip)
    assert torch.allclose(ours, ref.detach(), atol=tol, rtol=0), (ours - ref).abs().max()


def _double_net_and_batch(name, seed):
    """NETS[name] in float64 and a batch of 5 inputs and labels, all drawn after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    make, shape = NETS[name]
    net = make().double()
    return net, torch.rand(5, *shape, dtype=torch.float64), torch.randint(0, 5, (5,))


@pytest.mark.parametrize("name", sorted(NETS))
def test_box_is_ibp_without_elision_and_zonotope_is_dual(name):
    net, x, y = _double_net_and_batch(name, 1)
    assert torch.equal(margin_lower_bounds(net, x, y, 0.1, "box"),
                       margin_lower_bounds(net, x, y, 0.1, "ibp", elide=False))
    # the DeepZ zonotope and Wong–Kolter's dual use the same relaxation
    assert torch.allclose(margin_lower_bounds(net, x, y, 0.1, "zonotope"),
                          margin_lower_bounds(net, x, y, 0.1, "dual"), atol=1e-10)


def _diffai_box_margins(net, x, y, eps):
    """lb(z_y − z_j) by DiffAI's Box domain as its ``domains.py`` propagates it (Mirman et al. 2018): a centre ``head``
    and a radius ``beta`` (eps everywhere, not clipped to [0, 1]); a linear map takes beta through |W|; ReLU maps
    [head − beta, head + beta] to its image's centre and radius; the margins' box adds both radii (``preDomRes``)."""
    head, beta = x, torch.full_like(x, eps)
    for layer in net:
        if isinstance(layer, nn.Conv2d):
            conv = dict(stride=layer.stride, padding=layer.padding)
            head, beta = (nn.functional.conv2d(head, layer.weight, layer.bias, **conv),
                          nn.functional.conv2d(beta, layer.weight.abs(), None, **conv))
        elif isinstance(layer, nn.Linear):
            head, beta = head @ layer.weight.t() + layer.bias, beta @ layer.weight.abs().t()
        elif isinstance(layer, nn.ReLU):
            upper, lower = (head + beta).relu(), (head - beta).relu()
            head, beta = (upper + lower) / 2, (upper - lower) / 2
        else:
            head, beta = layer(head), layer(beta)
    lower = head.gather(1, y[:, None]) - head - (beta.gather(1, y[:, None]) + beta)
    return lower.scatter(1, y[:, None], 0.0)


@pytest.mark.parametrize("name", sorted(NETS))
def test_box_is_diffais_box_domain(name):
    """The ``box`` bound DiffAI training and its I_V use is DiffAI's own Box domain, unclipped as the study's."""
    net, x, y = _double_net_and_batch(name, 2)
    ours = margin_lower_bounds(net, x, y, 0.05, "box", clip=False)
    assert torch.allclose(ours, _diffai_box_margins(net, x, y, 0.05), atol=1e-12, rtol=0)


def _check_sound(net, x, y, eps, methods=CERTIFIED):
    torch.manual_seed(0)
    n = 1000
    samples = (x.unsqueeze(1) + (torch.rand(len(x), n, *x.shape[1:]) * 2 - 1) * eps).clamp(0, 1)
    with torch.no_grad():
        sampled = _margins(net, samples.flatten(0, 1), y.repeat_interleave(n)).view(len(x), n, -1)
    x_adv = pgd(net, x, y, eps=eps, steps=20, rel_step_size=0.125, random_start=True)
    with torch.no_grad():
        attacked = _margins(net, x_adv, y)
    for method in methods:
        lb = margin_lower_bounds(net, x, y, eps, method)
        assert bool((sampled >= lb.unsqueeze(1) - 1e-5).all()), method
        assert bool((attacked >= lb - 1e-5).all()), method


@pytest.mark.parametrize("name", sorted(NETS))
def test_soundness_random_networks(name):
    torch.manual_seed(2)
    make, shape = NETS[name]
    net = make()
    _check_sound(net, torch.rand(8, *shape), torch.randint(0, 5, (8,)), 0.05)


def test_soundness_trained_network(trained_digits):
    model, dm = trained_digits
    xs, ys = zip(*[dm.nonmembers()[i] for i in range(16)])
    _check_sound(model.backbone, torch.stack(xs), torch.stack(ys), 0.02)


class TestHandComputed:
    """z0 = ReLU(x), z1 = 0, x ∈ [−1, 1]: the true margin z0 − z1 = ReLU(x) lies in [0, 1]."""

    @staticmethod
    def net():
        first, last = nn.Linear(1, 1), nn.Linear(1, 2)
        with torch.no_grad():
            first.weight.fill_(1.0), first.bias.zero_()
            last.weight.copy_(torch.tensor([[1.0], [0.0]])), last.bias.zero_()
        return nn.Sequential(first, nn.ReLU(), last)

    # interval: ReLU([−1, 1]) = [0, 1]; Wong–Kolter/zonotope: slope 1/2, so 0.5·x ≥ −0.5;
    # CROWN-IBP: u ≥ −l, lower slope 1, so x ≥ −1
    EXPECTED = {"ibp": 0.0, "box": 0.0, "zonotope": -0.5, "dual": -0.5, "crown_ibp": -1.0}

    @pytest.mark.parametrize("method", sorted(EXPECTED))
    def test_margin(self, method):
        lb = margin_lower_bounds(self.net(), torch.zeros(1, 1), torch.tensor([0]), 1.0, method, clip=False)
        assert lb.tolist() == [[0.0, pytest.approx(self.EXPECTED[method])]]

    @pytest.mark.parametrize("method", ["ibp", "dual", "zonotope", "crown_ibp"])
    def test_upper_bound_of_relu_is_one(self, method):
        lower, upper = logit_bounds(self.net(), torch.zeros(1, 1), 1.0, method, clip=False)
        assert upper[0, 0].item() == pytest.approx(1.0) and upper[0, 1].item() == 0.0


@pytest.mark.parametrize("method", METHODS)
def test_zero_at_true_class_and_exact_at_eps_zero(method):
    torch.manual_seed(3)
    net, (make, shape) = None, NETS["conv"]
    net = make()
    x, y = torch.rand(4, *shape), torch.randint(0, 5, (4,))
    lb = margin_lower_bounds(net, x, y, 0.0, method)
    assert torch.equal(lb.gather(1, y[:, None]), torch.zeros(4, 1))
    assert torch.isfinite(lb).all() and torch.allclose(lb, _margins(net, x, y).detach(), atol=1e-5)
    lb = margin_lower_bounds(net, x, y, 0.1, method)
    assert torch.equal(lb.gather(1, y[:, None]), torch.zeros(4, 1))


def test_errors_are_one_line():
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="layer 2 is Tanh") as e:
        margin_lower_bounds(net, torch.rand(1, 4), torch.tensor([0]), 0.1)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="non-negative"):
        margin_lower_bounds(fc_net(), torch.rand(1, 1, 4, 5), torch.tensor([0]), -0.1)
    with pytest.raises(ValueError, match="memory_budget") as e:
        margin_lower_bounds(conv_net(), torch.rand(2, 1, 8, 8), torch.tensor([0, 1]), 0.1, "zonotope",
                            memory_budget=1e-6)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="memory_budget"):
        margin_lower_bounds(conv_net(), torch.rand(2, 1, 8, 8), torch.tensor([0, 1]), 0.1, "dual", memory_budget=1e-6)
    with pytest.raises(ValueError, match="`method` can be"):
        margin_lower_bounds(fc_net(), torch.rand(1, 1, 4, 5), torch.tensor([0]), 0.1, "octagon")


def test_yale_exact_dual_is_refused_but_projected_runs():
    from privrob.models import YaleCNN

    net = YaleCNN(stride2_kernel=4, input_size=(192, 192), padding="one", conv_bias=True, init="dual")
    x, y = torch.rand(1, 1, 192, 192), torch.tensor([3])
    with pytest.raises(ValueError, match="GB"):
        margin_lower_bounds(net, x, y, 0.0314, "dual")
    lb = margin_lower_bounds(net, x, y, 0.0314, "dual_projected", projections=10)
    assert lb.shape == (1, 38) and torch.isfinite(lb).all()


def _projected(net, x, y, seeds, **kwargs):
    with torch.no_grad():
        return torch.stack([margin_lower_bounds(net, x, y, 0.05, "dual_projected", projections=50,
                                                generator=torch.Generator().manual_seed(s), **kwargs) for s in seeds])


def test_projected_dual_in_groups_is_the_whole_batch_estimate_in_distribution(monkeypatch):
    from privrob.bounds import dual
    from privrob.bounds.network import layers_of, shapes_of
    from privrob.models import DigitsCNN

    torch.manual_seed(0)
    net = DigitsCNN(width=2, stride2_kernel=4, padding="one", conv_bias=True, init="dual").eval()
    x, y = torch.rand(32, 1, 8, 8), torch.randint(0, 10, (32,))
    whole = _projected(net, x, y, range(20))
    widest = max(s.numel() for s in shapes_of(layers_of(net), x))
    monkeypatch.setattr(dual, "CPU_GROUP_BYTES", 3 * 50 * widest * 4)  # groups of 3, 3, ..., 2
    grouped = _projected(net, x, y, range(20))
    assert not torch.equal(grouped, whole)  # other draws: groups draw in turn
    mask = torch.ones(32, 10, dtype=torch.bool)
    mask[torch.arange(32), y] = False
    # each example's estimate keeps its own distribution: per margin, the means over 20 seeds agree within 5
    # standard errors (an example paired with another's input differs by far more), the overall mean within 5%, and
    # the spread within 15% (over 20 seeds its ratio varies by about 4% between seed sets)
    diff = (grouped.mean(0) - whole.mean(0))[mask]
    se = ((grouped.var(0) + whole.var(0)) / 20).sqrt()[mask]
    assert (diff.abs() <= 5 * se).all()
    assert abs(grouped.mean(0)[mask].mean() / whole.mean(0)[mask].mean() - 1) < 0.05
    assert abs(grouped.std(0)[mask].mean() / whole.std(0)[mask].mean() - 1) < 0.15
    # upper bounds too, and gradients flow through the groups
    lo, hi = logit_bounds(net, x, 0.05, "dual_projected", projections=50, generator=torch.Generator().manual_seed(0))
    assert lo.shape == hi.shape == (32, 10) and (lo <= hi).all()
    w = net[0].weight
    margin_lower_bounds(net, x, y, 0.05, "dual_projected", projections=50).sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
    # the first group draws as the whole batch of its three examples does: groups run in order on one generator
    monkeypatch.setattr(dual, "CPU_GROUP_BYTES", 2**62)
    assert torch.equal(grouped[:, :3], _projected(net, x[:3], y[:3], range(20)))


def test_projected_dual_estimates_convex_adversarials_bounds():
    """The training estimate (Wong et al. 2018: random Cauchy projections, median l1 estimates of the intermediate
    bounds) against the study's, convex_adversarial's ``proj=10, norm_type='l1_median'``, over 200 independent draws
    each: every ReLU layer's pre-activation bounds have its mean per neuron (5 standard errors) and in width (1.5% at
    the first ReLU, 4% after), and at the first ReLU, where only the input's projections count, its spread (10%).
    After it the two estimators differ (README, differences): privrob takes one median over all generators, the
    study's code one per source layer and sums them, so privrob's estimate is noisier there (here about 5% and 13%
    more spread on average at the second and third ReLU). The batch of 16 has over 10 unstable neurons in every ReLU
    layer, where convex_adversarial projects too (with at most ``proj`` it propagates a layer's terms exactly)."""
    from privrob.bounds import zonotope
    from privrob.bounds.network import input_box, layers_of

    torch.manual_seed(0)
    net = conv_net().double()
    x = torch.rand(16, 1, 8, 8, dtype=torch.float64)

    def ours(seed):   # the ball unclipped, as convex_adversarial's default input
        _, pre = zonotope.propagate(layers_of(net), *input_box(x, 0.05, clip=False), 10,
                                    torch.Generator().manual_seed(seed))
        return [torch.stack(lu) for lu in pre]

    def theirs(seed):   # other seeds than ours: the two draw the same Cauchy numbers from the same seed
        with torch.random.fork_rng():
            torch.manual_seed(10_000 + seed)
            dual = convex_adversarial.DualNetwork(net, x, 0.05, proj=10, norm_type="l1_median")
        relus = [layer for layer in dual.dual_net if isinstance(layer, convex_adversarial.dual_layers.DualReLU)]
        assert all(isinstance(layer, convex_adversarial.dual_layers.DualReLUProj) for layer in relus)
        return [torch.stack([layer.zl, layer.zu]) for layer in relus]

    with torch.no_grad():
        a, b = ([torch.stack(layer) for layer in zip(*map(bounds, range(200)))] for bounds in (ours, theirs))
    assert len(a) == len(b) == 3
    for i, (mine, ref) in enumerate(zip(a, b)):
        assert mine.shape == ref.shape
        width, ref_width = (t[:, 1] - t[:, 0] for t in (mine, ref))
        assert abs(width.mean() / ref_width.mean() - 1) < (0.015 if i == 0 else 0.04)
        se = ((mine.var(0) + ref.var(0)) / 200).sqrt()
        assert ((mine.mean(0) - ref.mean(0)).abs() <= 5 * se).all()
    assert abs(a[0].std(0).mean() / b[0].std(0).mean() - 1) < 0.1


def test_projected_dual_groups_only_on_the_cpu():
    from privrob.bounds.dual import CPU_GROUP_BYTES, group_size

    shapes = [torch.Size([1, 8, 8]), torch.Size([16, 8, 8])]
    per_example = 50 * 16 * 8 * 8 * 4
    assert group_size(shapes, torch.zeros(500, 1, 8, 8), 50) == CPU_GROUP_BYTES // per_example
    assert group_size(shapes, torch.zeros(500, 1, 8, 8), None) == 500  # the exact bound: one call
    assert group_size(shapes, torch.zeros(500, 1, 8, 8, device="meta"), 50) == 500  # off the CPU: one call
    assert group_size([torch.Size([1, 192, 192]), torch.Size([8, 192, 192])], torch.zeros(8, 1, 192, 192), 50) == 1
