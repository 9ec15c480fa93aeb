"""Convolution and max-pool layers as SPEC.md section 4b states them: layout, products, pooling.

Activations and errors are ``(N, C, H, W)`` arrays (NCHW); a layer's weights are ``c_out`` rows
of ``c_in * k * k`` columns (row-major in ``c_in, kh, kw``), the view the quantizers and the
update see. Convolutions have stride 1, an odd square kernel ``k`` and zero padding
``(k - 1) / 2`` on every side ("SAME"); they are cross-correlations as TF ``conv2d`` computes
them.

The three products of a layer are matrix products over the patch matrix of :func:`im2col`:

- forward ``acc[b,o,y,x] = sum_{c,i,j} T[o,c,i,j] * A_pad[b,c,y+i,x+j]``: ``cols . T^T``;
- gradient ``G[o,c,i,j] = sum_{b,y,x} dZ[b,o,y,x] * A_pad[b,c,y+i,x+j]``: ``dZ^T . cols``;
- backward (the transposed convolution) ``R = dL/dA``: ``dZ . T`` summed back onto the input
  positions by :func:`col2im`, the padding dropped.

Every function takes the product as an argument (``matmul(x, y)``, ``x @ y``), so the integer
model runs them through its exact products and the float32 baseline through NumPy's. Pure data
movement otherwise: the sums of :func:`col2im` are exact in an integer dtype.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "im2col", "col2im", "to_rows", "from_rows", "conv_forward", "conv_gradient",
    "conv_transposed", "max_pool", "unpool", "batch_limit",
]


def _pad(k: int) -> int:
    if k < 1 or k % 2 == 0:
        raise ValueError(f"the kernel must be a positive odd size, not {k}")
    return (k - 1) // 2


def im2col(x, k: int) -> np.ndarray:
    """The patch matrix of ``x`` ``(N, C, H, W)`` for a ``k x k`` SAME convolution:
    ``(N * H * W, C * k * k)``, row ``(b, y, x)`` holding ``A_pad[b, c, y + i, x + j]`` in
    column ``(c, i, j)`` (both row-major), with zeros where the window leaves the image."""
    x = np.asarray(x)
    n, c, h, w = x.shape
    p = _pad(k)
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(2, 3))
    # (N, C, H, W, k, k) -> (N, H, W, C, k, k): one copy.
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * k * k)


def col2im(cols, shape, k: int) -> np.ndarray:
    """The adjoint of :func:`im2col`: each entry of ``cols`` ``(N * H * W, C * k * k)`` added to
    the input position it came from; entries that fall on the padding are dropped. Returns
    ``(N, C, H, W)`` of ``cols``'s dtype."""
    n, c, h, w = shape
    p = _pad(k)
    patches = np.asarray(cols).reshape(n, h, w, c, k, k).transpose(0, 3, 4, 5, 1, 2)
    out = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=patches.dtype)
    for i in range(k):
        for j in range(k):
            out[:, :, i:i + h, j:j + w] += patches[:, :, i, j]
    return out[:, :, p:p + h, p:p + w]


def to_rows(x) -> np.ndarray:
    """``(N, C, H, W)`` as ``(N * H * W, C)``: one row per position (the rows of :func:`im2col`)."""
    n, c, h, w = x.shape
    return x.transpose(0, 2, 3, 1).reshape(n * h * w, c)


def from_rows(rows, n: int, h: int, w: int) -> np.ndarray:
    """The inverse of :func:`to_rows`: ``(N * H * W, C)`` back to ``(N, C, H, W)``."""
    return np.ascontiguousarray(rows.reshape(n, h, w, -1).transpose(0, 3, 1, 2))


def conv_forward(a, t, k: int, matmul=np.matmul):
    """``acc[b,o,y,x] = sum_{c,i,j} T[o,c,i,j] * A_pad[b,c,y+i,x+j]``.

    Parameters
    ----------
    a : ndarray
        Inputs ``(N, C, H, W)``.
    t : ndarray
        Weights ``(c_out, C * k * k)``.
    k : int
        The kernel size (odd).
    matmul : callable
        The product ``matmul(x, y) = x @ y``.

    Returns
    -------
    (ndarray, ndarray)
        ``acc`` ``(N, c_out, H, W)`` and the patch matrix (for :func:`conv_gradient`).
    """
    n, _, h, w = a.shape
    cols = im2col(a, k)
    return from_rows(matmul(cols, t.T), n, h, w), cols


def conv_gradient(dz, cols, matmul=np.matmul, samples: int | None = None) -> np.ndarray:
    """``G[o,c,i,j] = sum_{b,y,x} dZ[b,o,y,x] * A_pad[b,c,y+i,x+j]`` as ``(c_out, C * k * k)``,
    from the error ``dZ`` ``(N, c_out, H, W)`` at the convolution's output (before pooling) and
    the input's patch matrix ``cols``.

    With ``samples``, the products of that many samples at a time are summed (an integer caller
    keeps each product within the range where its float products are exact)."""
    rows = to_rows(dz)
    step = len(rows) if samples is None else samples * dz.shape[2] * dz.shape[3]
    g = None
    for s in range(0, len(rows), step):
        part = matmul(rows[s:s + step].T, cols[s:s + step])
        g = part if g is None else g + part
    return g


def conv_transposed(dz, t, k: int, in_shape, matmul=np.matmul) -> np.ndarray:
    """``R[b,c,y',x'] = sum_{o,i,j} dZ[b,o,y,x] * T[o,c,i,j]`` over the ``y, x`` whose window
    holds ``y' = y + i - (k - 1) / 2``, ``x' = x + j - (k - 1) / 2``: the error at the input
    ``(N, *in_shape)`` (the transposed convolution, with the same padding)."""
    n, _, h, w = dz.shape
    return col2im(matmul(to_rows(dz), t), (n, *in_shape), k)


def _windows(x, p: int) -> np.ndarray:
    """``(N, C, H, W)`` as ``(N, C, H/p, W/p, p * p)``: each window's values in raster order."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // p, p, w // p, p).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, h // p, w // p, p * p)


def max_pool(x, p: int) -> tuple[np.ndarray, np.ndarray]:
    """``p x p`` max-pool with stride ``p`` (``p`` divides ``H`` and ``W``).

    Returns ``(pooled, choice)``: the maxima ``(N, C, H/p, W/p)`` and, for each window, the
    position of its FIRST maximum in raster order (row, then column), ``i * p + j``.
    """
    win = _windows(np.asarray(x), p)
    choice = win.argmax(axis=-1)  # NumPy returns the first maximum
    return np.take_along_axis(win, choice[..., None], axis=-1)[..., 0], choice


def unpool(e, choice, p: int) -> np.ndarray:
    """The backward routing of :func:`max_pool`: each window's error placed at its chosen
    position, 0 at the others. ``e`` and ``choice`` are ``(N, C, H/p, W/p)``; the result is
    ``(N, C, H, W)``."""
    e = np.asarray(e)
    n, c, hp, wp = e.shape
    win = np.zeros((n, c, hp, wp, p * p), dtype=e.dtype)
    np.put_along_axis(win, choice[..., None], e[..., None], axis=-1)
    return win.reshape(n, c, hp, wp, p, p).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, hp * p, wp * p)


def batch_limit(plan, batch: int, values: int = 1 << 23) -> int:
    """The largest batch up to ``batch`` whose patch matrices (``H * W * n_in`` values per
    sample in a convolution) stay within ``values``: a forward pass over a whole data set is cut
    into batches of this size."""
    patch = max((p.in_shape[1] * p.in_shape[2] * p.n_in for p in plan if p.kernel), default=1)
    return max(1, min(batch, values // patch))
