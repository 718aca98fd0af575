"""The input pipeline: image sources, decoding (DALI on the GPU or CPU, torchvision, Pillow), epochs and shards.

Importing ``fastssl.data`` needs none of DALI, torchvision or Pillow: decoders import them when built.
See :class:`Loader`. Videos (sources, index, clip sampling and decoding, with PyAV): :mod:`fastssl.data.video`.
"""

from .decoders import available as available_decoders, make_decoder
from .loader import BadImageError, Loader, RecipeViews
from .order import EpochOrder
from .sources import Source, file_list, image_folder, open_source, tar_shards
from .stats import LoaderStats

__all__ = ["BadImageError", "EpochOrder", "Loader", "LoaderStats", "RecipeViews", "Source", "available_decoders",
           "file_list", "image_folder", "make_decoder", "open_source", "tar_shards"]
