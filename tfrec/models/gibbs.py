"""The sampling linear algebra of Bayesian MF: Normal-Wishart and Gaussian conditional
draws, the implicit-feedback links' draw, the low-rank running average, CG solves."""

from __future__ import annotations

from tfrec._keras import tf


def wishart_draw(scale: tf.Tensor, dof: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """One draw of a Wishart(``scale``, ``dof``) ``[k, k]`` matrix (Bartlett decomposition).

    ``A`` is lower triangular with ``A_ii = sqrt(chi2(dof - i))`` and standard normal
    entries below the diagonal; the draw is ``L A A^T L^T`` with ``L L^T = scale``.
    """
    k = scale.shape[0]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    chi2 = 2.0 * tf.random.stateless_gamma(
        [k], seeds[0], (dof - tf.range(k, dtype=tf.float64)) / 2.0, dtype=tf.float64
    )
    below = tf.linalg.band_part(tf.random.stateless_normal([k, k], seeds[1], dtype=tf.float64), -1, 0)
    a = tf.linalg.set_diag(below, tf.sqrt(chi2))
    la = tf.linalg.cholesky(scale) @ a
    return la @ tf.transpose(la)


@tf.function
def normal_wishart_draw(
    factors: tf.Tensor, seed: tf.Tensor, mean_seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Draws a side's prior ``(mean [k], precision [k, k])`` given its factors ``[n, k]``.

    The hyperprior is Normal-Wishart with mean 0, ``beta0 = 2``, ``W0 = I`` and
    ``nu0 = k`` degrees of freedom (Salakhutdinov & Mnih 2008).
    """
    n, k = tf.cast(tf.shape(factors)[0], tf.float64), factors.shape[1]
    beta0, nu0 = 2.0, float(k)
    average = tf.reduce_mean(factors, axis=0)
    centred = factors - average
    scatter = tf.transpose(centred) @ centred
    inverse_scale = (
        tf.eye(k, dtype=tf.float64) + scatter + beta0 * n / (beta0 + n) * tf.tensordot(average, average, 0)
    )
    precision = wishart_draw(tf.linalg.inv(inverse_scale), nu0 + n, seed)
    chol = tf.linalg.cholesky((beta0 + n) * precision)
    noise = tf.random.stateless_normal([k, 1], mean_seed, dtype=tf.float64)
    mean = n * average / (beta0 + n) + tf.linalg.triangular_solve(chol, noise, lower=True, adjoint=True)[:, 0]
    return mean, precision


@tf.function
def conditional_draw(
    gram: tf.Tensor, rhs: tf.Tensor, prior_mean: tf.Tensor, prior_precision: tf.Tensor, noise: tf.Tensor, seed
) -> tf.Tensor:
    """Draws every row's factors from its Gaussian conditional.

    Row ``r`` has precision ``P = prior_precision + noise * gram[r]`` and mean
    ``P^-1 (prior_precision @ prior_mean[r] + noise * rhs[r])`` (one prior mean for every
    row, or one per row); the draw adds ``L^-T z``
    (``L L^T = P``, ``z`` standard normal), whose covariance is ``P^-1``.
    """
    precision = prior_precision[None] + noise * gram
    chol = tf.linalg.cholesky(precision)
    b = (tf.linalg.matvec(prior_precision, prior_mean) + noise * rhs)[..., None]  # prior_mean [k] or [n, k]
    mean = tf.linalg.cholesky_solve(chol, b)
    z = tf.random.stateless_normal(tf.shape(b), seed, dtype=tf.float64)
    return (mean + tf.linalg.triangular_solve(chol, z, lower=True, adjoint=True))[..., 0]


@tf.function
def running_average_update(
    user_average: tf.Tensor, item_average: tf.Tensor, users: tf.Tensor, items: tf.Tensor, n: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Adds the sample ``users @ items^T`` as the ``n``-th term of the running average ``X Y^T``.

    ``(n - 1) / n * X Y^T + users items^T / n`` is the product of ``[a X, b users]`` and
    ``[a Y, b items]`` (``a = sqrt((n - 1) / n)``, ``b = sqrt(1 / n)``); QR of both and an
    SVD of the small core bring it back to the rank of ``X``, split evenly between the two
    sides. The average of the sampled predictions, not of the factors: the chain drifts
    along the factors' rotations, which leave each prediction unchanged.
    """
    rank = user_average.shape[1]
    a, b = tf.sqrt((n - 1.0) / n), tf.sqrt(1.0 / n)
    q_user, r_user = tf.linalg.qr(tf.concat([a * user_average, b * users], axis=1))
    q_item, r_item = tf.linalg.qr(tf.concat([a * item_average, b * items], axis=1))
    singular, left, right = tf.linalg.svd(r_user @ tf.transpose(r_item))
    scale = tf.sqrt(singular[:rank])
    # With fewer rows than columns the core is smaller than ``rank``: pad with zeros.
    padding = [[0, 0], [0, rank - tf.size(scale)]]
    return tf.pad(q_user @ (left[:, :rank] * scale), padding), tf.pad(
        q_item @ (right[:, :rank] * scale), padding
    )


@tf.function
def link_draw(
    features: tf.SparseTensor,
    targets: tf.Tensor,
    precision: tf.Tensor,
    link_precision: float,
    seed: tf.Tensor,
) -> tf.Tensor:
    """Draws the links ``B [f, k]`` of ``targets ~ features @ B`` (rows ~ N(., precision^-1)).

    With the prior ``B`` rows ~ N(0, (link_precision * precision)^-1) the posterior is
    matrix normal with row covariance ``A^-1``, ``A = F^T F + link_precision * I``, and
    column covariance ``precision^-1``. The draw perturbs the data and the prior with
    noise of those covariances and solves ``A B = F^T (targets + E1) + link_precision
    * E2`` by conjugate gradients (Papandreou & Yuille's perturb-and-optimise; Simm et
    al.'s Macau), so ``A`` (``f x f``) is never formed.
    """
    n, f, k = tf.shape(targets)[0], tf.cast(features.dense_shape[1], tf.int32), targets.shape[1]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    # Rows of z @ L^-1... with precision = L L^T: z L^-T has covariance precision^-1.
    chol = tf.linalg.cholesky(precision)

    def noise(rows, s):
        z = tf.random.stateless_normal([rows, k], s, dtype=tf.float64)
        return tf.transpose(tf.linalg.triangular_solve(chol, tf.transpose(z), lower=True, adjoint=True))

    rhs = tf.sparse.sparse_dense_matmul(features, targets + noise(n, seeds[0]), adjoint_a=True)
    rhs += tf.sqrt(tf.cast(link_precision, tf.float64)) * noise(f, seeds[1])

    def apply(v):
        return tf.sparse.sparse_dense_matmul(
            features, tf.sparse.sparse_dense_matmul(features, v), adjoint_a=True
        ) + (link_precision * v)

    return conjugate_gradients(apply, rhs)


def conjugate_gradients(apply, rhs: tf.Tensor, tolerance: float = 1e-6, max_steps: int = 500) -> tf.Tensor:
    """Solves ``apply(X) = rhs`` column by column for a symmetric positive definite ``apply``."""
    x = tf.zeros_like(rhs)
    r = rhs
    p = r
    rs = tf.reduce_sum(r * r, axis=0)
    stop = tolerance**2 * tf.maximum(tf.reduce_sum(rhs * rhs, axis=0), 1e-300)

    def step(i, x, r, p, rs):
        ap = apply(p)
        alpha = rs / tf.maximum(tf.reduce_sum(p * ap, axis=0), 1e-300)
        x, r = x + alpha * p, r - alpha * ap
        new = tf.reduce_sum(r * r, axis=0)
        return i + 1, x, r, r + (new / tf.maximum(rs, 1e-300)) * p, new

    _, x, *_ = tf.while_loop(
        lambda i, x, r, p, rs: tf.logical_and(i < max_steps, tf.reduce_any(rs > stop)), step, (0, x, r, p, rs)
    )
    return x
