"""Backbones by name: output shapes, the ViT's token path (MAE) and its fixed positions."""

import pytest
import torch

from fastssl.models import backbone, sincos_position_embedding


@pytest.mark.parametrize("name,dim", [("resnet10", 512), ("resnet18", 512), ("resnet50", 2048), ("vit_tiny", 192)])
def test_features(name, dim):
    net = backbone(name, image_size=32)
    assert net.feature_dim == dim and net(torch.zeros(2, 3, 32, 32)).shape == (2, dim)


def test_resnet_feature_map_and_channels():
    net = backbone("resnet10", image_size=64, in_channels=1)
    assert net.feature_map(torch.zeros(1, 1, 64, 64)).shape == (1, 512, 2, 2)
    assert backbone("resnet10", small_input=True).feature_map(torch.zeros(1, 3, 32, 32)).shape == (1, 512, 4, 4)


def test_vit_tokens_of_kept_patches_match_the_full_pass():
    torch.manual_seed(0)
    vit = backbone("vit_tiny", image_size=32).eval()
    x = torch.randn(2, 3, 32, 32)
    keep = torch.arange(vit.num_patches).expand(2, -1)
    torch.testing.assert_close(vit.tokens(x, keep), vit.tokens(x))
    assert vit.tokens(x, keep[:, :5]).shape == (2, 6, 192)


def test_sincos_positions():
    pe = sincos_position_embedding(4, 16)
    assert pe.shape == (16, 16) and torch.allclose(pe.norm(dim=1), torch.full((16,), 8**0.5))
    with pytest.raises(ValueError, match="multiple of 4"):
        sincos_position_embedding(4, 10)
    with pytest.raises(ValueError, match="backbone must be one of"):
        backbone("alexnet")
