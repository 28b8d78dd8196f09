import pytest
import torch
from torch import nn

from privrob.models import CifarResNet, DigitsCNN, FashionMNISTCNN, YaleCNN
from privrob.models.convnets import output_shape


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def conv(cin, cout, k=3):
    return cin * cout * k * k + cout


def test_yale_default_width():
    m = YaleCNN()
    assert output_shape(m, (1, 192, 168)) == (1, 38)
    convs = conv(1, 8) + conv(8, 8) + conv(8, 16) + conv(16, 16) + conv(16, 32) + conv(32, 32) + conv(32, 64) + conv(64, 64)
    assert n_params(m) == convs + (64 * 12 * 11 * 200 + 200) + (200 * 38 + 38)
    assert {type(l) for l in m} == {nn.Conv2d, nn.ReLU, nn.Flatten, nn.Linear}


def test_yale_4x4_stride2_on_padded_input():
    m = YaleCNN(stride2_kernel=4, input_size=(192, 192))
    assert output_shape(m, (1, 192, 192)) == (1, 38)
    assert m[-3].in_features == 64 * 12 * 12  # 192 → 96 → 48 → 24 → 12, as the study's dual model
    assert [c.kernel_size for c in m if isinstance(c, nn.Conv2d) and c.stride == (2, 2)] == [(4, 4)] * 4


def test_fmnist_default_width():
    m = FashionMNISTCNN()
    assert output_shape(m, (1, 28, 28)) == (1, 10)
    convs = conv(1, 256) + conv(256, 256) * 2 + conv(256, 512) + conv(512, 512) * 2
    assert n_params(m) == convs + (512 * 7 * 7 * 200 + 200) + (200 * 10 + 10)
    assert FashionMNISTCNN(stride2_kernel=4)[-3].in_features == 512 * 7 * 7


def test_width_scales_channels():
    assert YaleCNN(width=1)[0].out_channels == 4 and YaleCNN(width=4)[0].out_channels == 16
    assert FashionMNISTCNN(width=1)[0].out_channels == 16
    with pytest.raises(ValueError, match="width"):
        YaleCNN(width=0)


def test_digits():
    assert output_shape(DigitsCNN(), (1, 8, 8)) == (1, 10)


def test_cifar_resnet():
    m = CifarResNet()
    assert output_shape(m.eval(), (3, 32, 32)) == (1, 10)
    # Madry's model: stem 3·16·9; 15 units; 3 projection shortcuts; 4 × BN stages; FC 640 → 10
    assert m.fc.in_features == 640 and len(m.units) == 15
    assert 45_000_000 < n_params(m) < 47_000_000
    assert isinstance(m.units[0].act1, nn.LeakyReLU)
    assert isinstance(CifarResNet(width=1, leaky_relu=False).units[0].act1, nn.ReLU)


def test_per_image_standardization_makes_scales_equivalent():
    m = CifarResNet(width=1).eval()
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(m(x), m(x * 255), atol=1e-4)


def test_study_initialisation():
    """Convolutions N(0, 2/(k·k·c_out)), linear layers uniform with variance 1/fan_in, zero biases (§1.7 A)."""
    torch.manual_seed(0)
    net = YaleCNN(width=2)
    convs = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for conv in convs[2:]:      # enough weights for a tight estimate
        k = conv.kernel_size[0]
        assert conv.weight.std().item() == pytest.approx((2 / (k * k * conv.out_channels)) ** 0.5, rel=0.05)
    for linear in linears:
        bound = (3 / linear.in_features) ** 0.5
        assert linear.weight.abs().max().item() <= bound
        assert linear.weight.var().item() == pytest.approx(1 / linear.in_features, rel=0.05)
    assert all(m.bias.abs().max().item() == 0 for m in convs + linears)
