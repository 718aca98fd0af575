"""Masked autoencoders (He et al. 2022): reconstruct the removed 75% of the patches from the visible 25%.

Paper convention (``fastssl.ops.mae_masking``): per image, noise over the L patches, ids_shuffle =
argsort(noise) (smallest kept), ids_restore = argsort(ids_shuffle), K = int(L · (1 − 0.75)) patches
kept; the ViT encoder sees only the kept patches (plus the class token); a light decoder embeds its
output to a narrower width, puts a shared mask token at every removed position (``mae_unshuffle``),
adds fixed sin-cos positions, runs a few transformer blocks and predicts the p·p·3 pixels of every
patch; the loss is the MSE on the removed patches only, against norm-pix targets (each patch
normalised by its own mean and variance, + 1e−6). Views: random resized crop scale 0.2–1 + flip,
bicubic (``fastssl.recipes.mae``), ImageNet-normalised.

Noise is keyed by (seed, epoch, sample id): a sample gets a new mask every epoch, the same one in any
batch or on resume.

Scaled to small images: ``vit_tiny`` (192 wide, 6 blocks, 3 heads) with patches of image_size / 8
(64 → 8 px, 32 → 4 px: an 8 x 8 grid, 16 patches kept); decoder 128 wide, 2 blocks, 4 heads (the
paper: 512 wide, 8 blocks). ``features(x)`` = the class token of the encoder over the whole image.

Example:
    >>> import torch
    >>> from fastssl.ragged import RaggedImages
    >>> task = MAETask("vit_tiny", image_size=32)
    >>> batch = task.transform(RaggedImages.from_dense(torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)),
    ...                        torch.arange(2), epoch=0)
    >>> batch["ids_keep"].shape, batch["targets"].shape
    (torch.Size([2, 16]), torch.Size([2, 48, 48]))
    >>> task(batch)["loss"].item() > 0
    True
"""

from __future__ import annotations

import torch
from torch import nn

from .. import random, recipes
from ..models import sincos_position_embedding
from ..ops import mae_masking, mae_unshuffle
from .._validation import check_int, check_number
from .base import Task, squares


class MAETask(Task):
    """Options: ``mask_ratio`` (0.75), ``decoder_dim`` (128), ``decoder_depth`` (2), ``decoder_heads`` (4),
    ``norm_pix`` (True)."""

    name = "mae"

    def __init__(self, backbone: str = "vit_tiny", image_size: int = 64, seed: int = 0, *, mask_ratio: float = 0.75,
                 decoder_dim: int = 128, decoder_depth: int = 2, decoder_heads: int = 4, norm_pix: bool = True):
        self.mask_ratio = check_number(mask_ratio, "mask_ratio", 0.0, 1.0)
        if self.mask_ratio >= 1:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio!r}")
        decoder_dim, decoder_depth = check_int(decoder_dim, "decoder_dim"), check_int(decoder_depth, "decoder_depth")
        check_int(decoder_heads, "decoder_heads")
        if decoder_dim % decoder_heads or decoder_dim % 4:
            raise ValueError(f"decoder_dim must be a multiple of 4 and of decoder_heads ({decoder_heads}), "
                             f"got {decoder_dim}")
        self.norm_pix = bool(norm_pix)
        self.view = recipes.mae(image_size).views[0]
        super().__init__(backbone, image_size, seed)
        if not hasattr(self.backbone, "tokens"):
            raise ValueError(f"backbone must be a ViT (vit_tiny, vit_small) for MAE, got {backbone!r}")
        vit = self.backbone
        self.patch_size = vit.patch_size
        self.decoder_embed = nn.Linear(vit.feature_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        nn.init.normal_(self.mask_token, std=0.02)
        pos = torch.cat([torch.zeros(1, decoder_dim), sincos_position_embedding(vit.grid, decoder_dim)])
        self.register_buffer("decoder_pos", pos.unsqueeze(0), persistent=False)  # (1, 1 + L, dd), class token 0
        layer = nn.TransformerEncoderLayer(decoder_dim, decoder_heads, 4 * decoder_dim, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.decoder = nn.TransformerEncoder(layer, decoder_depth, enable_nested_tensor=False)
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, self.patch_size**2 * 3)

    @torch.no_grad()
    def transform(self, images, ids, epoch):
        x = squares(images, ids, epoch, self.image_size, seed=self.seed, scale=self.view.scale, recipe=self.view)
        m = mae_masking(x, self.patch_size, self.mask_ratio, ids=ids, seed=self.seed, epoch=epoch, view=random.TASK_OP_VIEW,
                        norm_pix=self.norm_pix)
        return {"inputs": x, "ids_keep": m.ids_keep, "ids_restore": m.ids_restore, "ids_masked": m.ids_masked,
                "targets": m.targets}

    def decode(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Encoder tokens (B, 1 + K, D) → predicted pixels (B, L, p·p·3) of every patch, in patch order."""
        y = self.decoder_embed(latent)
        patches = mae_unshuffle(y[:, 1:], ids_restore, self.mask_token.to(y.dtype))
        y = torch.cat([y[:, :1], patches], 1) + self.decoder_pos.to(y.dtype)
        return self.decoder_pred(self.decoder_norm(self.decoder(y)))[:, 1:]

    def forward(self, batch):
        pred = self.decode(self.backbone.tokens(batch["inputs"], batch["ids_keep"]), batch["ids_restore"])
        targets = batch["targets"]
        masked = pred.gather(1, batch["ids_masked"][..., None].expand(-1, -1, pred.shape[-1]))
        return {"loss": (masked.float() - targets).pow(2).mean()}
