"""Optimisers and the learning-rate schedule of the trainers: SGD, LARS, AdamW; linear warmup + cosine decay.

LARS (You et al. 2017, as SimCLR uses it): SGD with momentum where each weight tensor's update is
scaled by the trust ratio ``eta * ||w|| / (||g|| + wd * ||w||)``; biases and normalisation parameters
(tensors of one dimension) get neither weight decay nor adaptation, the usual exclusion.

Example:
    >>> import torch
    >>> net = torch.nn.Linear(4, 2)
    >>> opt = make_optimizer("lars", net, lr=0.3, weight_decay=1e-6)
    >>> [round(warmup_cosine(s, total=10, warmup=2), 3) for s in (0, 1, 2, 9)]
    [0.5, 1.0, 1.0, 0.038]
"""

from __future__ import annotations

import math

import torch

OPTIMIZERS = ("sgd", "lars", "adamw")


class LARS(torch.optim.Optimizer):
    """SGD + momentum with layer-wise trust ratios; ``exclude`` is set per parameter group."""

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, eta: float = 0.001):
        if lr < 0 or momentum < 0 or weight_decay < 0 or eta <= 0:
            raise ValueError(f"LARS needs lr, momentum, weight_decay >= 0 and eta > 0, got {lr}, {momentum}, "
                             f"{weight_decay}, {eta}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, exclude=False))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if not group["exclude"]:
                    g = g.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
                    trust = torch.where((w_norm > 0) & (g_norm > 0), group["eta"] * w_norm / g_norm,
                                        torch.ones_like(w_norm))
                    g = g * trust
                state = self.state[p]
                if "momentum" not in state:
                    state["momentum"] = torch.clone(g).detach()
                else:
                    state["momentum"].mul_(group["momentum"]).add_(g)
                p.add_(state["momentum"], alpha=-group["lr"])
        return loss


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weights (decayed) and biases / normalisation parameters (no decay, excluded from LARS)."""
    decay, rest = [], []
    for p in model.parameters():
        if p.requires_grad:
            (rest if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay, "exclude": False},
            {"params": rest, "weight_decay": 0.0, "exclude": True}]


def make_optimizer(name: str, model: torch.nn.Module, *, lr: float, weight_decay: float = 0.0,
                   momentum: float = 0.9) -> torch.optim.Optimizer:
    """``name`` in "sgd" | "lars" | "adamw" over ``model``'s parameters (see :func:`parameter_groups`)."""
    groups = parameter_groups(model, weight_decay)
    if name == "lars":
        return LARS(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    for group in groups:
        group.pop("exclude")
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def warmup_cosine(step: int, *, total: int, warmup: int, final: float = 0.0) -> float:
    """The learning-rate factor at ``step`` (0-based): linear warmup to 1 over ``warmup`` steps, then cosine
    decay to ``final`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))
