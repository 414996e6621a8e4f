"""Solvers of the kernel system: choice and memory estimates (:mod:`.choice`), the
analytic Cholesky solve (:mod:`.cholesky`), conjugate gradients with checkpoints
(:mod:`.cg`) and the Nyström-preconditioned iterative solve (:mod:`.nystrom`)."""
