import pytest
import torch
import torch.nn.functional as F
from torch import nn

from privrob.models import CifarResNet, DigitsCNN, FashionMNISTCNN, YaleCNN
from privrob.models.convnets import tf_same_padding
from privrob.models.convnets import output_shape


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def conv(cin, cout, k=3):
    return cin * cout * k * k + cout


def test_yale_default_is_the_tf_model():
    """The TF model of natural, PGD and WRM training (§1.7 A, §8): no convolution biases, TF's SAME padding."""
    m = YaleCNN()
    assert output_shape(m, (1, 192, 168)) == (1, 38)
    convs = conv(1, 8) + conv(8, 8) + conv(8, 16) + conv(16, 16) + conv(16, 32) + conv(32, 32) + conv(32, 64) + conv(64, 64)
    assert n_params(m) == convs - (8 + 8 + 16 + 16 + 32 + 32 + 64 + 64) + (64 * 12 * 11 * 200 + 200) + (200 * 38 + 38)
    assert all(c.bias is None for c in m if isinstance(c, nn.Conv2d))
    assert {type(l) for l in m} == {nn.Conv2d, nn.ReLU, nn.Flatten, nn.Linear, nn.ZeroPad2d}
    # 192x168 → 96x84 → 48x42 → 24x21 → 12x11: stride-2 pads (top, bottom, left, right), the odd pixel after
    pads = [p.padding for p in m if isinstance(p, nn.ZeroPad2d)]
    assert pads == [(0, 1, 0, 1), (0, 1, 0, 1), (0, 1, 0, 1), (1, 1, 0, 1)]


def test_tf_same_stride2_convolution_pads_zero_before_and_one_after():
    torch.manual_seed(0)
    m = YaleCNN(width=1)
    h = torch.rand(2, 4, 192, 168)  # what the first convolution and ReLU hand on
    stride2 = m[3]
    assert isinstance(m[2], nn.ZeroPad2d) and stride2.stride == (2, 2)
    expected = F.conv2d(F.pad(h, (0, 1, 0, 1)), stride2.weight, None, stride=2)
    assert torch.allclose(stride2(m[2](h)), expected, atol=1e-6)
    symmetric = F.conv2d(h, stride2.weight, None, stride=2, padding=1)  # PyTorch's padding=1: not the study's
    assert not torch.allclose(expected, symmetric, atol=1e-3)


@pytest.mark.parametrize("init, padding, conv_bias", [
    ("ibp", "tf_same", True), ("trades", "one", True), ("dual", "one", True), ("diffai", "one", True)])
def test_each_study_code_base_builds_its_own_network(init, padding, conv_bias):
    m = YaleCNN(init=init, padding=padding, conv_bias=conv_bias)
    assert output_shape(m, (1, 192, 168)) == (1, 38)
    convs = conv(1, 8) + conv(8, 8) + conv(8, 16) + conv(16, 16) + conv(16, 32) + conv(32, 32) + conv(32, 64) + conv(64, 64)
    assert n_params(m) == convs + (64 * 12 * 11 * 200 + 200) + (200 * 38 + 38)
    assert any(isinstance(l, nn.ZeroPad2d) for l in m) == (padding == "tf_same")
    with pytest.raises(ValueError, match="`init` can be"):
        YaleCNN(init="xavier")
    with pytest.raises(ValueError, match="`padding` can be"):
        YaleCNN(padding="valid")


def test_yale_4x4_stride2_on_padded_input():
    m = YaleCNN(stride2_kernel=4, input_size=(192, 192), padding="one")
    assert output_shape(m, (1, 192, 192)) == (1, 38)
    assert m[-3].in_features == 64 * 12 * 12  # 192 → 96 → 48 → 24 → 12, as the study's dual model
    assert [c.kernel_size for c in m if isinstance(c, nn.Conv2d) and c.stride == (2, 2)] == [(4, 4)] * 4


def test_fmnist_default_width():
    m = FashionMNISTCNN()
    assert output_shape(m, (1, 28, 28)) == (1, 10)
    convs = conv(1, 256) + conv(256, 256) * 2 + conv(256, 512) + conv(512, 512) * 2 - 3 * 256 - 3 * 512  # no biases
    assert n_params(m) == convs + (512 * 7 * 7 * 200 + 200) + (200 * 10 + 10)
    assert FashionMNISTCNN(stride2_kernel=4, padding="one")[-3].in_features == 512 * 7 * 7


def test_width_scales_channels():
    assert YaleCNN(width=1)[0].out_channels == 4 and YaleCNN(width=4)[0].out_channels == 16
    assert FashionMNISTCNN(width=1)[0].out_channels == 16
    with pytest.raises(ValueError, match="width"):
        YaleCNN(width=0)


def test_digits():
    assert output_shape(DigitsCNN(), (1, 8, 8)) == (1, 10)


def test_cifar_resnet():
    assert output_shape(CifarResNet(width=1).eval(), (3, 32, 32)) == (1, 10)
    m = CifarResNet()
    assert m.fc.in_features == 640 and len(m.units) == 15
    assert isinstance(m.units[0].act1, nn.LeakyReLU) and m.units[0].act1.negative_slope == 0.1
    assert isinstance(m.act, nn.LeakyReLU) and m.act.negative_slope == 0.1
    relu = CifarResNet(width=1, leaky_relu=False)
    assert isinstance(relu.units[0].act1, nn.ReLU) and isinstance(relu.act, nn.ReLU)


def test_cifar_resnet_has_the_tf_models_parameters():
    """Madry's TF model at width 10: bias-free convolutions, BN β and γ, parameter-free shortcuts, FC 640 → 10 with
    bias; 45,901,914 trainable parameters (§8)."""
    def unit(c_in, c_out):
        return 2 * c_in + 9 * c_in * c_out + 2 * c_out + 9 * c_out * c_out

    tf = (9 * 3 * 16 + unit(16, 160) + 4 * unit(160, 160) + unit(160, 320) + 4 * unit(320, 320) + unit(320, 640)
          + 4 * unit(640, 640) + 2 * 640 + 640 * 10 + 10)
    assert tf == 45_901_914 and n_params(CifarResNet()) == tf


def test_cifar_shortcut_is_average_pool_and_zero_channels():
    """``_residual``'s sub_add: 'VALID' average pooling of size and stride 2, then (c_out − c_in)/2 zero channels
    before and after; no parameters."""
    m = CifarResNet(width=1, units_per_stage=1)
    shortcut = m.units[1].shortcut  # stage 2: 16 → 32 channels, stride 2
    assert not list(shortcut.parameters())
    x = torch.randn(2, 16, 6, 6)
    pooled = x.reshape(2, 16, 3, 2, 3, 2).mean(dim=(3, 5))
    zeros = torch.zeros(2, 8, 3, 3)
    assert torch.allclose(shortcut(x), torch.cat([zeros, pooled, zeros], dim=1), atol=1e-6)


def test_cifar_only_the_first_unit_shortcuts_the_activated_input():
    """``activate_before_residual = [True, False, False]``: stage 1's first unit adds (the shortcut of) its BN-act
    input, every other unit (stage 2's and 3's first ones too) its raw input; both units still run BN-act first."""
    torch.manual_seed(0)
    m = CifarResNet(width=1, units_per_stage=2).eval()
    for module in m.modules():
        if isinstance(module, nn.BatchNorm2d):  # away from the identity, so that BN-act(x) differs from x
            nn.init.normal_(module.running_mean)
            nn.init.uniform_(module.running_var, 0.5, 2.0)
            nn.init.normal_(module.bias)
    with torch.no_grad():
        for i, unit in enumerate(m.units):
            x = torch.randn(2, unit.bn1.num_features, 8, 8)
            activated = unit.act1(unit.bn1(x))
            skip = unit(x) - unit.conv2(unit.act2(unit.bn2(unit.conv1(activated))))
            taken, other = (activated, x) if i == 0 else (x, activated)
            assert torch.allclose(skip, unit.shortcut(taken), atol=1e-5), i
            assert not torch.allclose(skip, unit.shortcut(other), atol=1e-2), i


def test_tf_same_padding():
    """TF ``padding='SAME'``: ceil(size/stride) outputs, the odd pixel of padding after."""
    assert tf_same_padding(32, 3, 2) == tf_same_padding(16, 3, 2) == (0, 1)
    assert tf_same_padding(32, 3, 1) == (1, 1) and tf_same_padding(7, 3, 2) == (1, 1)
    torch.manual_seed(0)
    conv = CifarResNet(width=1, units_per_stage=1).units[2].conv1  # stage 3: 3x3 stride 2 on 16x16
    x = torch.randn(2, conv.in_channels, 16, 16)
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
    with torch.no_grad():
        assert conv(x).shape == expected.shape == (2, 64, 8, 8) and torch.allclose(conv(x), expected, atol=1e-6)


def test_cifar_batch_norm_as_tf():
    """``tf.contrib.layers.batch_norm`` with decay 0.9 (PyTorch momentum 0.1), its default ε 1e-3, β and γ."""
    bns = [m for m in CifarResNet(width=1, units_per_stage=1).modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 7 and all(b.eps == 1e-3 and b.momentum == 0.1 and b.affine for b in bns)


def test_cifar_initialisation():
    """``_conv``: N(0, 2/(k·k·c_out)), no bias; the logit layer: uniform unit scaling (±sqrt(3/fan_in)), bias 0."""
    torch.manual_seed(0)
    m = CifarResNet(width=2, units_per_stage=1)
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert len(convs) == 7 and all(c.bias is None for c in convs)
    for conv in convs[3:]:  # ≥ 18k weights each: a tight estimate
        assert conv.weight.std().item() == pytest.approx((2 / (9 * conv.out_channels)) ** 0.5, rel=0.1)
    bound = (3 / m.fc.in_features) ** 0.5
    assert m.fc.weight.abs().max().item() <= bound and m.fc.weight.abs().max().item() > 0.9 * bound
    assert m.fc.weight.var().item() == pytest.approx(1 / m.fc.in_features, rel=0.1)
    assert m.fc.bias.abs().max().item() == 0


def test_per_image_standardization_of_the_studys_pixels():
    """The TF model standardises 0–255 pixels: on [0, 1] inputs the std floor is 1/(255·sqrt(numel))."""
    torch.manual_seed(0)
    x = 0.5 + 0.001 * torch.randn(1, 3, 32, 32)  # std 0.001: under the floor 1/sqrt(3072) ≈ 0.018 on [0, 1], not ×255
    pixels = 255 * x
    tf = (pixels - pixels.mean()) / max(pixels.std(unbiased=False), 1 / 3072 ** 0.5)
    assert torch.allclose(CifarResNet(width=1).standardize(x), tf, atol=1e-3)


def test_per_image_standardization_makes_scales_equivalent():
    m = CifarResNet(width=1).eval()
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(m(x), m(x * 255), atol=1e-4)


def _weighted(net):
    return [m for m in net if isinstance(m, (nn.Conv2d, nn.Linear))]


def test_tf_initialisation():
    """Convolutions N(0, 2/(k·k·c_out)), linear layers uniform with variance 1/fan_in, zero biases (§1.7 A)."""
    torch.manual_seed(0)
    net = YaleCNN(width=2)
    convs = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for c in convs[2:]:      # enough weights for a tight estimate
        k = c.kernel_size[0]
        assert c.weight.std().item() == pytest.approx((2 / (k * k * c.out_channels)) ** 0.5, rel=0.05)
    for linear in linears:
        bound = (3 / linear.in_features) ** 0.5
        assert linear.weight.abs().max().item() <= bound
        assert linear.weight.var().item() == pytest.approx(1 / linear.in_features, rel=0.05)
        assert linear.bias.abs().max().item() == 0


def test_trades_initialisation():
    """TRADES' VGG: Kaiming normal fan-in convolutions, zero biases, PyTorch's default hidden layer, zero last layer."""
    torch.manual_seed(0)
    layers = _weighted(YaleCNN(init="trades", padding="one", conv_bias=True))
    for c in layers[2:8]:
        fan_in = c.weight[0].numel()
        assert c.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.05) and not c.bias.any()
    hidden, last = layers[-2], layers[-1]
    assert hidden.weight.abs().max().item() <= hidden.in_features ** -0.5 and hidden.bias.any()
    assert not last.weight.any() and not last.bias.any()


def test_dual_initialisation():
    """Wong and Kolter's models: N(0, 2/(k·k·c_out)) convolutions, zero biases, PyTorch's default linear layers."""
    torch.manual_seed(0)
    layers = _weighted(YaleCNN(init="dual", padding="one", conv_bias=True, stride2_kernel=4, input_size=(192, 192)))
    for c in layers[2:8]:
        k = c.kernel_size[0]
        assert c.weight.std().item() == pytest.approx((2 / (k * k * c.out_channels)) ** 0.5, rel=0.05)
        assert not c.bias.any()
    for linear in layers[-2:]:
        assert linear.weight.var().item() == pytest.approx(1 / (3 * linear.in_features), rel=0.05)
        assert linear.bias.any()


def test_ibp_initialisation():
    """The IBP DNN (sonnet): orthogonal weights, zero biases."""
    torch.manual_seed(0)
    for layer in _weighted(YaleCNN(init="ibp", conv_bias=True)):
        w = layer.weight.flatten(1)
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        assert torch.allclose(gram, torch.eye(len(gram)), atol=1e-4) and not layer.bias.any()


def test_diffai_initialisation():
    """DiffAI's components.py: weights and biases uniform in ±1/sqrt(fan_in)."""
    torch.manual_seed(0)
    for layer in _weighted(YaleCNN(init="diffai", padding="one", conv_bias=True))[2:]:
        bound = layer.weight[0].numel() ** -0.5
        assert layer.weight.abs().max().item() <= bound and layer.bias.abs().max().item() <= bound
        assert layer.weight.var().item() == pytest.approx(bound ** 2 / 3, rel=0.1) and layer.bias.any()


def test_diffai_initialisation_is_pytorchs_default():
    """Uniform in ±1/sqrt(fan_in) for weights and biases is PyTorch's own default: the same draws."""
    torch.manual_seed(0)
    diffai = YaleCNN(init="diffai", padding="one", conv_bias=True).state_dict()
    torch.manual_seed(0)
    pytorch = YaleCNN(init="pytorch", padding="one", conv_bias=True).state_dict()
    assert all(torch.equal(diffai[k], pytorch[k]) for k in diffai)


def _perturbed(net):
    with torch.no_grad():
        for t in list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]:
            t.add_(1.0)
    return net


def _orthogonal(w):
    w = w.flatten(1)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    return torch.allclose(gram, torch.eye(len(gram)), atol=1e-4)


@pytest.mark.parametrize("make, scheme_holds", [
    (lambda: YaleCNN(width=1, init="trades", padding="one", conv_bias=True),
     lambda net: not net[-1].weight.any() and not net[-1].bias.any()),
    (lambda: DigitsCNN(width=1, init="ibp", conv_bias=True),
     lambda net: all(_orthogonal(l.weight) and not l.bias.any() for l in _weighted(net))),
    (lambda: CifarResNet(width=1, units_per_stage=1),
     lambda net: not net.fc.bias.any() and not net.bn.running_mean.any() and bool((net.bn.running_var == 1).all())),
])
def test_reset_parameters_draws_the_configs_scheme_again(make, scheme_holds):
    """LiRA's reference models are fresh draws of the config's initialisation, not PyTorch's default."""
    net = make()
    torch.manual_seed(1)
    net.reset_parameters()
    first = {k: v.clone() for k, v in net.state_dict().items()}
    assert scheme_holds(net)
    torch.manual_seed(1)
    _perturbed(net).reset_parameters()
    assert all(torch.equal(first[k], v) for k, v in net.state_dict().items())  # everything drawn again


def test_reset_parameters_through_a_weight_norm_parametrisation():
    from torch.nn.utils import parametrizations

    net = DigitsCNN(width=1, init="tf")
    torch.manual_seed(1)
    net.reset_parameters()
    plain = [l.weight.detach().clone() for l in _weighted(net)]
    for layer in _weighted(net):
        parametrizations.weight_norm(layer, dim=None)
    torch.manual_seed(1)
    _perturbed(net).reset_parameters()
    for layer, weight in zip(_weighted(net), plain):
        assert torch.allclose(layer.weight, weight, atol=1e-6)  # the scheme's draw, set through (g, v)
        assert float(layer.parametrizations.weight.original0) == pytest.approx(float(weight.norm()), rel=1e-5)
