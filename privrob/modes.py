"""Every module's train/eval flag kept across a block: ``model.train(flag)`` after it would set all modules alike, and
undo a mix such as a frozen batch norm in eval mode inside a training model."""

from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn


@contextlib.contextmanager
def modes_kept(model: nn.Module) -> Iterator[None]:
    """Restore each module's own ``training`` flag when the block ends."""
    modes = [(module, module.training) for module in model.modules()]
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
