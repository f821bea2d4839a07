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


def answering_pipeline(pipe, *, k=None, grain="session"):
    """``pipe`` answering per ``grain`` with ``k`` items, ``pipe`` left as is.

    The steps are shallow copies (the fitted arrays are shared, not copied)
    whose ``grain`` (every ``*__grain`` parameter) and the final step's ``k``
    are changed with ``set_params``; only public calls follow (``predict``).
    The session scorers and :func:`skals.io.recommend_sessions` answer
    through it.
    """
    import copy

    from sklearn.pipeline import Pipeline

    steps = [(name, copy.copy(step)) for name, step in pipe.steps]
    answering = Pipeline(steps, memory=pipe.memory)
    params = answering.get_params(deep=True)
    changes = {p: grain for p in params if p.endswith("__grain")}
    if k is not None and "k" in steps[-1][1].get_params(deep=False):
        changes[f"{steps[-1][0]}__k"] = k
    answering.set_params(**changes)
    return answering
