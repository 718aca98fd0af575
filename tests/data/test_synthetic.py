"""The generated image set: pink-noise texture statistics and its effect on the JPEGs."""

import os

import numpy as np
import pytest

from fastssl.data import synthetic


def test_pink_noise_has_unit_std_and_the_asked_spectral_slope():
    rng = np.random.default_rng(0)
    noise = synthetic.pink_noise(256, 256, rng, exponent=0.8)
    assert noise.shape == (256, 256)
    assert abs(noise.mean()) < 1e-9 and abs(noise.std() - 1) < 1e-9
    # Radially averaged amplitude spectrum: a straight line of slope -exponent on log-log axes.
    amplitude = np.abs(np.fft.fft2(noise))
    fy, fx = np.meshgrid(np.fft.fftfreq(256), np.fft.fftfreq(256), indexing="ij")
    radius = np.sqrt(fy * fy + fx * fx)
    bands = np.geomspace(0.02, 0.4, 9)
    centres = np.sqrt(bands[:-1] * bands[1:])
    means = [amplitude[(radius >= lo) & (radius < hi)].mean() for lo, hi in zip(bands[:-1], bands[1:])]
    slope = np.polyfit(np.log(centres), np.log(means), 1)[0]
    assert slope == pytest.approx(-0.8, abs=0.05)


def test_texture_gives_photo_like_jpegs(tmp_path):
    plain = synthetic.write_image_folder(str(tmp_path / "plain"), classes=2, per_class=3, min_size=300, max_size=360)
    photo = synthetic.write_image_folder(str(tmp_path / "photo"), classes=2, per_class=3, min_size=300, max_size=360,
                                         texture=35.0)

    def files(root):
        return sorted(os.path.join(d, f) for d, _, names in os.walk(root) for f in names)

    def bytes_per_pixel(root):
        return sum(os.path.getsize(p) for p in files(root)) / sum(h * w for h, w in _sizes(files(root)))

    plain_bpp, photo_bpp = bytes_per_pixel(plain), bytes_per_pixel(photo)
    assert photo_bpp > 2 * plain_bpp and 0.4 < photo_bpp < 0.9, (plain_bpp, photo_bpp)


def _sizes(paths):
    import PIL.Image

    sizes = []
    for path in paths:
        with PIL.Image.open(path) as image:
            sizes.append(image.size[::-1])
    return sizes


def test_negative_texture_is_refused(tmp_path):
    with pytest.raises(ValueError, match="texture"):
        synthetic.write_image_folder(str(tmp_path), classes=1, per_class=1, texture=-1.0)
