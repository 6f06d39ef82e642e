"""Product quantization of a fully connected layer without training (the edge-efficient seed's
Algorithm 2 on the layer's integer weight codes): W (M inputs x N outputs) is split column-wise
into P subspaces of d = N / P; in each, k-means (scikit-learn) groups the M sub-vectors into
K_s clusters; the centroids are rounded to weight codes, every row takes its nearest rounded
centroid, and the layer's float weights become those codes times its scale, so that Brevitas
quantizes them back to exactly the product-quantized codes."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .prune import PruneError


def _kmeans(points: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=1, random_state=seed, max_iter=100)
    km.fit(points)
    return km.cluster_centers_


def _stored_books(layer, codes: np.ndarray, books: np.ndarray, old_scale, lo: int, hi: int,
                  name: str) -> np.ndarray:
    """The codebooks as the layer now stores them. A quantizer whose scale follows the weights'
    range (statistics scaling) may pick a new scale for the quantized weights; every row that
    chose centroid k then holds the same new codes, so the structure is kept and the codebook
    is read back from the first row of each used centroid (an unused one is rescaled). Checked:
    the codes with these books rebuild the layer's stored weights exactly."""
    from amchw.kernels.pq import pq_reconstruct

    qw = layer.quant_weight()
    stored = qw.int().detach().cpu().numpy().astype(np.int64).T    # (M inputs, N outputs)
    n_out = stored.shape[1]
    ratio = (np.broadcast_to(old_scale.detach().cpu().numpy().reshape(-1), (n_out,))
             / np.broadcast_to(qw.scale.detach().cpu().numpy().reshape(-1), (n_out,)))
    P, K, d = books.shape
    out = np.clip(np.rint(books * ratio.reshape(P, 1, d)), lo, hi).astype(np.int32)
    for p in range(P):
        used, first = np.unique(codes[:, p], return_index=True)
        out[p, used] = stored[first, p * d:(p + 1) * d]
    if not np.array_equal(pq_reconstruct(codes, out), stored):
        raise PruneError(f"{name}: the layer's quantizer does not keep the product-quantized "
                         "structure (its stored weights are not codebook entries)")
    return out


@torch.no_grad()
def product_quantize(layer: nn.Module, name: str, subspaces: int, centroids: int,
                     seed: int = 0) -> dict:
    """Replace `layer`'s weights (a QuantLinear) by their product quantization; returns the
    codes (M, P), the codebooks (P, K, d) as weight codes and the seed's C_Q."""
    from amchw.kernels.pq import compression_rate, pq_reconstruct

    if not isinstance(layer, nn.Linear) or not hasattr(layer, "quant_weight"):
        raise PruneError(f"{name}: product quantization takes a QuantLinear layer, got "
                         f"{type(layer).__name__}")
    P, K = subspaces, centroids
    if K < 2 or K & (K - 1):
        raise PruneError(f"--centroids must be a power of two >= 2, got {K}")
    qw = layer.quant_weight()
    codes_w = qw.int().detach().cpu().numpy().astype(np.int64)  # (N outputs, M inputs)
    n_out, m_in = codes_w.shape
    if P < 1 or n_out % P:
        raise PruneError(f"{name}: {n_out} outputs do not split into --subspaces {P}")
    if m_in <= K:
        raise PruneError(f"{name}: product quantization needs more inputs ({m_in}) than "
                         f"centroids ({K})")
    lo = -(2 ** (int(qw.bit_width) - 1)) + (1 if layer.weight_quant.is_narrow_range else 0)
    hi = 2 ** (int(qw.bit_width) - 1) - 1
    W = codes_w.T  # the seed's orientation, M x N
    d = n_out // P
    codes = np.empty((m_in, P), np.int32)
    books = np.empty((P, K, d), np.int32)
    for p in range(P):
        sub = W[:, p * d:(p + 1) * d].astype(np.float64)
        cents = np.clip(np.rint(_kmeans(sub, K, seed + p)), lo, hi)
        # squared distances |a|^2 - 2 a.c + |c|^2, exact: every term is an integer < 2^53
        dist = (sub * sub).sum(1)[:, None] - 2 * sub @ cents.T + (cents * cents).sum(1)[None]
        codes[:, p] = dist.argmin(axis=1)
        books[p] = cents.astype(np.int32)
    w_codes = pq_reconstruct(codes, books).T  # back to (N, M)
    scale = qw.scale.detach()
    layer.weight.copy_(torch.as_tensor(w_codes, dtype=layer.weight.dtype) * scale)
    books = _stored_books(layer, codes, books, scale, lo, hi, name)
    return {"layer": name, "subspaces": P, "centroids": K, "inputs": m_in, "outputs": n_out,
            "codes": codes, "codebooks": books,
            "C_Q_64bit": compression_rate(m_in, n_out, P, K, 64),
            f"C_Q_{int(qw.bit_width)}bit": compression_rate(m_in, n_out, P, K,
                                                              int(qw.bit_width))}
