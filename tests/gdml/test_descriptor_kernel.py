"""Descriptor, Jacobian and kernel assembly against finite differences and a loop reference."""

import numpy as np
import pytest

from deltagdml.gdml.descriptor import (
    dense_jacobian,
    descriptor,
    descriptor_and_jacobian,
    jacobian_transpose_dot,
)
from deltagdml.gdml.kernel import assemble_kernel, assemble_kernel_reference
from deltagdml.gdml.symmetry import descriptor_permutation, find_permutations


def test_descriptor_order_and_values():
    R = np.array([[[0.0, 0, 0], [1.0, 0, 0], [0, 2.0, 0]]])
    x = descriptor(R)[0]
    # pairs (1,0), (2,0), (2,1)
    np.testing.assert_allclose(x, [1.0, 0.5, 1 / np.sqrt(5.0)])


def test_jacobian_matches_finite_differences():
    rng = np.random.default_rng(0)
    R = rng.normal(size=(2, 6, 3)) * 1.5
    x, G = descriptor_and_jacobian(R)
    J = dense_jacobian(G)
    h = 1e-6
    for atom, c in [(0, 0), (3, 2), (5, 1)]:
        Rp, Rm = R.copy(), R.copy()
        Rp[:, atom, c] += h
        Rm[:, atom, c] -= h
        fd = (descriptor(Rp) - descriptor(Rm)) / (2 * h)
        np.testing.assert_allclose(J[:, :, 3 * atom + c], fd, rtol=1e-6, atol=1e-9)


def test_sparse_jacobian_product_equals_dense():
    rng = np.random.default_rng(1)
    R = rng.normal(size=(3, 7, 3)) * 2
    _, G = descriptor_and_jacobian(R)
    J = dense_jacobian(G)
    g = rng.normal(size=(3, J.shape[1]))
    np.testing.assert_allclose(
        jacobian_transpose_dot(G, g).reshape(3, -1), np.einsum("mdk,md->mk", J, g), atol=1e-12
    )


def _small_case(methane, n=4):
    R, _, _ = methane.sample(n)
    perms = find_permutations(R, methane.z)
    tril = np.array([descriptor_permutation(p) for p in perms])
    x, G = descriptor_and_jacobian(R)
    return x, dense_jacobian(G), tril


@pytest.mark.parametrize("symmetric", [True, False], ids=["24 perms, dense", "no perms, sparse"])
@pytest.mark.parametrize("sigma", [0.7, 3.0])
def test_fast_kernel_equals_loop_reference(methane, sigma, symmetric):
    x, J, tril = _small_case(methane)
    if not symmetric:  # the identity alone takes the compact-Jacobian path of KernelBlocks
        tril = tril[:1]
        assert np.array_equal(tril[0], np.arange(x.shape[1]))
    K_ref = assemble_kernel_reference(x, J, tril, sigma)
    K_full = assemble_kernel(x, J, tril, sigma, upper_only=False)
    np.testing.assert_allclose(K_full, K_ref, rtol=1e-10, atol=1e-12)
    K_upper = assemble_kernel(x, J, tril, sigma, upper_only=True)
    iu = np.triu_indices_from(K_ref)
    np.testing.assert_allclose(K_upper[iu], K_ref[iu], rtol=1e-10, atol=1e-12)


def test_kernel_is_symmetric_positive_semidefinite(methane):
    x, J, tril = _small_case(methane, n=5)
    K = assemble_kernel(x, J, tril, 2.0, upper_only=False)
    np.testing.assert_allclose(K, K.T, atol=1e-12)
    # Six rigid-body directions per geometry are null directions of the kernel.
    assert np.linalg.eigvalsh(K).min() > -1e-10 * np.abs(K).max()


def test_kernel_with_non_group_perms_is_not_symmetric(methane):
    """The symmetry test above can fail: a set that is not a group breaks it."""
    x, J, tril = _small_case(methane, n=3)
    rng = np.random.default_rng(0)
    bad = np.vstack([np.arange(x.shape[1]), rng.permutation(x.shape[1])])
    K = assemble_kernel(x, J, bad, 2.0, upper_only=False)
    assert np.abs(K - K.T).max() > 1e-6
