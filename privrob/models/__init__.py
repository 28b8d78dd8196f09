"""The study's architectures (Song et al. 2019, appendix Table 13), built from plain layers.

Every network except the CIFAR10 ResNet is an ``nn.Sequential`` of ``Conv2d``/``ReLU``/``Flatten``/``Linear``
(plus ``ZeroPad2d``), so that the bounds module can walk it layer by layer.
"""

from privrob.models.cifar import CifarResNet, PerImageStandardization
from privrob.models.convnets import DigitsCNN, FashionMNISTCNN, YaleCNN, conv_stack, tf_same_padding
from privrob.models.init import INITIALISATIONS

__all__ = ["INITIALISATIONS", "CifarResNet", "DigitsCNN", "FashionMNISTCNN", "PerImageStandardization", "YaleCNN",
           "conv_stack", "tf_same_padding"]
