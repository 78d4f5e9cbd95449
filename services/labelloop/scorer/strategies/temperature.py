"""ActiveLab's temperature search (cleanlab.internal.multiannotator_utils.find_best_temp_scaler), with
the annotators' empirical label distribution built once for all rows instead of once per row and
per candidate temperature.

cleanlab evaluates 13 temperatures (9 coarse, 4-5 fine) and, inside each, counts every labeled row's
labels with its own `value_counts` call: 13 x rows Python-level calls, about 0.9 s for 1,000 rows
and the whole fixed cost of scoring with a labeled set. The distribution does not depend on the
temperature, so `empirical_label_distribution` computes it once, vectorised, bit for bit as cleanlab
does; the cross entropies then use cleanlab's own expressions, so the chosen temperature is the same.

Quirk kept on purpose: cleanlab's value_counts on float labels (NaN marks a missing label, so they are
floats) puts the count of a row's r-th smallest distinct label in column r, not in that label's
column, unless the row holds every class. ActiveLab's temperatures are defined by that behaviour;
scores equal to cleanlab's need it too.
"""

from __future__ import annotations

import numpy as np
from cleanlab.internal.multiannotator_utils import _set_fine_search_range
from cleanlab.internal.numerics import softmax

SMALL_CONST = 1e-30  # cleanlab's clip floor before taking logs (multiannotator_utils.SMALL_CONST)
COARSE_TEMPERATURES = (0.1, 0.2, 0.5, 0.8, 1, 2, 3, 5, 8)  # find_best_temp_scaler's defaults
FINE_SEARCH_SIZE = 4


def empirical_label_distribution(labels_multiannotator: np.ndarray, num_classes: int) -> np.ndarray:
    """[rows, num_classes] float64: what compute_soft_cross_entropy builds row by row (see the module
    docstring for where the counts go)."""
    labels = np.asarray(labels_multiannotator, dtype=np.float64)
    rows, annotators = labels.shape
    ordered = np.sort(labels, axis=1)  # NaN (missing) sorts last
    present = ~np.isnan(ordered)
    distinct = present.copy()
    distinct[:, 1:] &= ordered[:, 1:] != ordered[:, :-1]
    column = np.cumsum(distinct, axis=1) - 1  # rank of each label among the row's distinct labels
    row = np.broadcast_to(np.arange(rows)[:, np.newaxis], (rows, annotators))
    counts = np.zeros((rows, num_classes), dtype=np.int64)
    np.add.at(counts, (row[present], column[present]), 1)
    # Integer counts over the integer label count, as cleanlab divides.
    return counts / present.sum(axis=1)[:, np.newaxis]


def soft_cross_entropy(distribution: np.ndarray, scaled_probs: np.ndarray) -> np.ndarray:
    """compute_soft_cross_entropy's per-row values from a precomputed label distribution."""
    num_classes = scaled_probs.shape[1]
    clipped = np.clip(scaled_probs, a_min=SMALL_CONST, a_max=None)
    result: np.ndarray = -np.sum(distribution * np.log(clipped), axis=1) / np.log(num_classes)
    return result


def find_best_temperature(labels_multiannotator: np.ndarray, probs: np.ndarray) -> float:
    """The temperature cleanlab's find_best_temp_scaler returns for the same inputs."""
    distribution = empirical_label_distribution(labels_multiannotator, probs.shape[1])
    log_probs = np.log(probs, where=probs > 0, out=np.full(probs.shape, -np.inf))

    def mean_entropy(temperature: float) -> float:
        scaled = softmax(log_probs, temperature=temperature, axis=1, shift=False)
        return float(np.mean(soft_cross_entropy(distribution, scaled)))

    coarse = [mean_entropy(t) for t in COARSE_TEMPERATURES]
    fine_range = _set_fine_search_range(list(COARSE_TEMPERATURES), FINE_SEARCH_SIZE, np.argmin(coarse))
    fine = [mean_entropy(t) for t in fine_range]
    return float(fine_range[np.argmin(fine)])
