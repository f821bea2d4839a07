"""Small helpers shared across skals' packages (engines, recommenders)."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state


def implicit_seed(random_state):
    """The int seed implicit (and Spark) need, from ``random_state``.

    An int passes through unchanged (so ``random_state=0`` here equals
    ``random_state=0`` in implicit); ``None`` draws from numpy's global
    generator and a ``RandomState`` draws from itself, as scikit-learn does.

    Examples
    --------
    >>> import numpy as np
    >>> from skals._utils import implicit_seed
    >>> implicit_seed(7)
    7
    >>> implicit_seed(np.random.RandomState(0)) == implicit_seed(
    ...     np.random.RandomState(0))
    True
    """
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return int(random_state)
    rng = check_random_state(random_state)
    return int(rng.randint(np.iinfo(np.int32).max))
