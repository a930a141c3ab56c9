"""Training losses.

``CharbonnierLoss``: ``mean(sqrt((pred - target)^2 + eps))`` as mmagic ``CharbonnierLoss`` (eps 1e-12,
reduction mean, loss weight 1.0), the loss of the BasicVSR recipes.
"""
from mindspore import nn, ops


class CharbonnierLoss(nn.Cell):
    def __init__(self, eps=1e-12, loss_weight=1.0):
        super().__init__()
        if not eps > 0:
            raise ValueError(f"CharbonnierLoss: eps must be > 0, got {eps}")
        self.eps = float(eps)
        self.loss_weight = float(loss_weight)

    def construct(self, pred, target):
        diff = pred - target
        return self.loss_weight * ops.sqrt(diff * diff + self.eps).mean()
