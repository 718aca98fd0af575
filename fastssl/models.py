"""Backbones by name: ResNet-10/18/50 (torchvision's ResNet class, random init), small ViTs, and 3-D video encoders.

Every backbone maps normalised images (B, 3, H, W) to features (B, D) and says its ``feature_dim``;
ResNets also expose ``feature_map(x)`` (B, D, H/32, W/32) for dense heads (colorization, inpainting),
ViTs ``tokens(x, ids_keep)`` for MAE (encoder over the kept patches only).

Video encoders (:data:`VIDEO_BACKBONES`) map normalised clips (B, 3, T, H, W) to (B, D): torchvision's
``r3d_18`` and ``r2plus1d_18`` at random init, and ``r3d_10`` (the same 3-D ResNet with one block per
stage, for CPUs). :func:`is_video_backbone` tells them apart. Audio encoders (:data:`AUDIO_BACKBONES`,
:func:`audio_backbone`) map log spectrograms (B, 1, F, T) to (B, D).

``small_input=True`` swaps the ResNet stem for a 3x3 stride-1 convolution without max-pooling (the
CIFAR variant SimCLR uses for 32-pixel images): 8x more compute, for images of 64 pixels or less.

Example:
    >>> import torch
    >>> net = backbone("resnet10")
    >>> net(torch.zeros(2, 3, 64, 64)).shape, net.feature_dim
    (torch.Size([2, 512]), 512)
    >>> backbone("r3d_10")(torch.zeros(2, 3, 4, 32, 32)).shape
    torch.Size([2, 512])
    >>> audio_backbone("l3_audio_small")(torch.zeros(2, 1, 64, 99)).shape
    torch.Size([2, 128])
"""

from __future__ import annotations

import torch
from torch import nn

VIDEO_BACKBONES = ("r3d_10", "r3d_18", "r2plus1d_18")
BACKBONES = ("resnet10", "resnet18", "resnet50", "vit_tiny", "vit_small") + VIDEO_BACKBONES


def is_video_backbone(name: str) -> bool:
    """Whether ``name`` is a clip encoder ((B, 3, T, H, W) in) rather than an image encoder."""
    return name in VIDEO_BACKBONES


def _narrow(net: nn.Module, block, layers: list[int], stem: int) -> None:
    """Rebuild torchvision's ResNet ``net`` (whose stages are fixed at 64 ... 512 channels) with ``stem`` channels
    after its stem and ``stem`` x (1, 2, 4, 8) in its stages, initialised as torchvision initialises them."""
    net.inplanes = stem
    net.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
    net.bn1 = nn.BatchNorm2d(stem)
    for stage, blocks in enumerate(layers):
        setattr(net, f"layer{stage + 1}", net._make_layer(block, stem << stage, blocks, stride=2 if stage else 1))
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ResNetBackbone(nn.Module):
    """torchvision's ResNet without its classifier: (B, C, H, W) → (B, feature_dim).

    ``width`` multiplies every layer's channels (1: torchvision's 64 ... 512; 0.5: 32 ... 256, feature_dim halved).
    """

    def __init__(self, depth: int, in_channels: int = 3, small_input: bool = False, width: float = 1.0):
        super().__init__()
        try:
            from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
        except ImportError as error:
            raise ImportError("the ResNet backbones need torchvision: pip install 'fastssl-engine[train]'") from error

        block, layers = {10: (BasicBlock, [1, 1, 1, 1]), 18: (BasicBlock, [2, 2, 2, 2]),
                         50: (Bottleneck, [3, 4, 6, 3])}[depth]
        stem = round(64 * width)
        if not width > 0 or stem < 1:
            raise ValueError(f"width must be > 0 with round(64 * width) >= 1 channels, got {width!r}")
        net = ResNet(block, layers)
        if stem != 64:
            _narrow(net, block, layers, stem)
        if small_input:
            net.conv1 = nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False)
            net.maxpool = nn.Identity()
        elif in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, stem, 7, 2, 3, bias=False)
        self.feature_dim = 8 * stem * block.expansion
        net.fc = nn.Identity()
        self.net = net

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.net.avgpool(self.feature_map(x)), 1)


class VideoResNetBackbone(nn.Module):
    """torchvision's VideoResNet without its classifier: (B, C, T, H, W) → (B, 512)."""

    def __init__(self, name: str, in_channels: int = 3):
        super().__init__()
        try:
            from torchvision.models import video
        except ImportError as error:
            raise ImportError("the video backbones need torchvision: pip install 'fastssl-engine[train]'") from error

        if name == "r3d_10":
            net = video.VideoResNet(video.resnet.BasicBlock, [video.resnet.Conv3DSimple] * 4, [1, 1, 1, 1],
                                    video.resnet.BasicStem)
        else:
            net = getattr(video, name)(weights=None)
        if in_channels != 3:
            old = net.stem[0]
            net.stem[0] = nn.Conv3d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
        self.feature_dim = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def sincos_position_embedding(grid: int, dim: int) -> torch.Tensor:
    """(grid², dim) fixed 2-D sine-cosine position embedding (MAE's): half the channels per axis."""
    if dim % 4:
        raise ValueError(f"dim must be a multiple of 4, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))
    y, x = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                          indexing="ij")
    parts = [torch.sin(p.reshape(-1, 1) * omega) for p in (y, x)] + [torch.cos(p.reshape(-1, 1) * omega) for p in (y, x)]
    return torch.cat([parts[0], parts[2], parts[1], parts[3]], 1).float()


class ViT(nn.Module):
    """A plain ViT (pre-norm blocks, class token, fixed sin-cos positions): (B, 3, S, S) → (B, dim)."""

    def __init__(self, image_size: int = 64, patch_size: int = 8, dim: int = 192, depth: int = 6, heads: int = 3,
                 in_channels: int = 3, mlp_ratio: float = 4.0):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} must be a multiple of patch_size {patch_size}")
        self.image_size, self.patch_size, self.feature_dim = image_size, patch_size, dim
        self.grid = image_size // patch_size
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos_embed", sincos_position_embedding(self.grid, dim).unsqueeze(0), persistent=False)
        layer = nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.cls_token, std=0.02)

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    def tokens(self, x: torch.Tensor, ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1 + K, dim): class token + the patches ``ids_keep`` (B, K) (all patches when None)."""
        patches = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        if ids_keep is not None:
            patches = torch.gather(patches, 1, ids_keep.unsqueeze(-1).expand(-1, -1, patches.shape[-1]))
        cls = self.cls_token.expand(patches.shape[0], -1, -1)
        return self.norm(self.blocks(torch.cat([cls, patches], 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tokens(x)[:, 0]


def backbone(name: str, *, image_size: int = 64, in_channels: int = 3, small_input: bool = False,
             width: float = 1.0) -> nn.Module:
    """The backbone ``name`` (one of :data:`BACKBONES`), randomly initialised, for images of ``image_size``
    (ViTs: patches of image_size / 8; ResNets: ``small_input`` for the CIFAR stem, ``width`` the channel
    multiplier; video encoders: any size)."""
    is_resnet = name.startswith("resnet") and name[6:].isdigit() and int(name[6:]) in (10, 18, 50)
    if width != 1.0 and not is_resnet:
        raise ValueError(f"width applies to the image ResNets only, got width={width!r} for {name!r}")
    if is_video_backbone(name):
        return VideoResNetBackbone(name, in_channels)
    if is_resnet:
        return ResNetBackbone(int(name[6:]), in_channels, small_input, width)
    if name == "vit_tiny":
        return ViT(image_size, patch_size=max(4, image_size // 8), dim=192, depth=6, heads=3, in_channels=in_channels)
    if name == "vit_small":
        return ViT(image_size, patch_size=max(4, image_size // 14 if image_size >= 224 else image_size // 8), dim=384,
                   depth=12, heads=6, in_channels=in_channels)
    raise ValueError(f"backbone must be one of {BACKBONES}, got {name!r}")


#: audio encoders: (B, 1, F, T) log spectrograms → (B, D). ``l3_audio``: L³-Net's audio stream (four blocks of two
#: 3x3 convolutions, 64 → 512 channels, 2x2 max-pooling between blocks, global max-pooling: D = 512);
#: ``l3_audio_small``: the same at a quarter of the width (D = 128), for CPUs.
AUDIO_BACKBONES = {"l3_audio": 64, "l3_audio_small": 16}


class AudioConvNet(nn.Module):
    """L³-Net's audio subnetwork: an input BatchNorm (log spectrograms are not centred), then four blocks of
    (conv 3x3 → BN → ReLU) x 2 with channels ``width`` x (1, 2, 4, 8), 2x2 max-pooling after each of the first
    three and global max-pooling after the last. (B, 1, F, T) → (B, 8 width)."""

    def __init__(self, width: int = 64):
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm2d(1)]
        channels = 1
        for block in range(4):
            out = width * 2 ** block
            for _ in range(2):
                layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                           nn.ReLU(inplace=True)]
                channels = out
            layers.append(nn.MaxPool2d(2) if block < 3 else nn.AdaptiveMaxPool2d(1))
        self.net = nn.Sequential(*layers)
        self.feature_dim = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


def audio_backbone(name: str) -> nn.Module:
    """The audio encoder ``name`` (one of :data:`AUDIO_BACKBONES`), randomly initialised."""
    if name not in AUDIO_BACKBONES:
        raise ValueError(f"audio backbone must be one of {tuple(AUDIO_BACKBONES)}, got {name!r}")
    return AudioConvNet(AUDIO_BACKBONES[name])


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 2) -> nn.Sequential:
    """SimCLR-style projection head: (Linear, BatchNorm, ReLU) x (layers - 1), then Linear."""
    mods: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
        dim = hidden
    mods.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*mods)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["AUDIO_BACKBONES", "AudioConvNet", "BACKBONES", "ResNetBackbone", "VIDEO_BACKBONES", "VideoResNetBackbone",
           "ViT", "audio_backbone", "backbone", "count_parameters", "is_video_backbone", "mlp",
           "sincos_position_embedding"]
