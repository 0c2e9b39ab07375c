"""sRGB to CIELAB conversion (D65 white point)."""

from __future__ import annotations

import numpy as np

from ._jit import ngjit

__all__ = ["lab_pixel", "lab_from_mean", "LINEAR_LUT"]

# sRGB (linear) -> XYZ, D65, pre-divided by the reference white (Xn, Yn, Zn).
_XN, _YN, _ZN = 0.95047, 1.0, 1.08883
_M00, _M01, _M02 = (np.float32(v / _XN) for v in (0.4124564, 0.3575761, 0.1804375))
_M10, _M11, _M12 = (np.float32(v / _YN) for v in (0.2126729, 0.7151522, 0.0721750))
_M20, _M21, _M22 = (np.float32(v / _ZN) for v in (0.0193339, 0.1191920, 0.9503041))

# CIE f(t): cube root above (6/29)^3, linear segment below.
_DELTA = 6.0 / 29.0
_EPS = np.float32(_DELTA**3)
_SLOPE = np.float32(1.0 / (3.0 * _DELTA**2))
_OFFSET = np.float32(4.0 / 29.0)
_F116 = np.float32(116.0)
_F16 = np.float32(16.0)
_F500 = np.float32(500.0)
_F200 = np.float32(200.0)
_INV255 = np.float32(1.0 / 255.0)
_GAMMA_KNEE = np.float32(0.04045)
_INV1292 = np.float32(1.0 / 12.92)
_INV1055 = np.float32(1.0 / 1.055)
_F0055 = np.float32(0.055)
_F24 = np.float32(2.4)


def _srgb_linear_lut() -> np.ndarray:
    """Return the 256-entry sRGB gamma linearisation table (float32, 0..1)."""
    c = np.arange(256, dtype=np.float64) / 255.0  # the same curve as _linearize, for 8-bit inputs
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return lin.astype(np.float32)


LINEAR_LUT = _srgb_linear_lut()


@ngjit
def _lab_f(t):
    if t > _EPS:
        return np.cbrt(t)
    return t * _SLOPE + _OFFSET


@ngjit
def lab_pixel(lut, r8, g8, b8):
    """CIELAB ``(L, a, b)`` of one 8-bit sRGB pixel; ``lut`` is :data:`LINEAR_LUT`."""
    return _lab_from_linear(lut[r8], lut[g8], lut[b8])


@ngjit
def _lab_from_linear(r, g, b):
    fx = _lab_f(_M00 * r + _M01 * g + _M02 * b)
    fy = _lab_f(_M10 * r + _M11 * g + _M12 * b)
    fz = _lab_f(_M20 * r + _M21 * g + _M22 * b)
    return _F116 * fy - _F16, _F500 * (fx - fy), _F200 * (fy - fz)


@ngjit
def lab_from_mean(r, g, b):
    """CIELAB ``(L, a, b)`` of an sRGB colour given as floats 0-255 (e.g. a block mean)."""
    return _lab_from_linear(_linearize(r), _linearize(g), _linearize(b))


@ngjit
def _linearize(c):
    c = c * _INV255
    if c <= _GAMMA_KNEE:
        return c * _INV1292
    return ((c + _F0055) * _INV1055) ** _F24
