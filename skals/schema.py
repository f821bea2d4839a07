"""The event log's column names, given once, and the pipeline built from them."""

from __future__ import annotations

__all__ = [
    "Schema",
    "make_recommender_pipeline",
    "named_columns",
    "resolve_schema",
    "schema_of",
]

#: The fields of a schema, in the order they are shown.
FIELDS = ("session", "user", "item", "cart", "time", "segment")


class Schema:
    """The column names of an event log, in one place.

    Every skals step, splitter and scorer has its own column parameters
    (``user_col``, ``session_col``, ...). A schema names the columns once:
    :func:`make_recommender_pipeline` sets every step's parameters from it,
    the splitters take it as ``schema=`` and the scorers read it back from
    the fitted pipeline (:func:`schema_of`), so a renamed column cannot be
    forgotten in one place and silently used under its default name in
    another.

    Parameters
    ----------
    session : str, default="session_id"
        Session id column.
    user : str, default="user_id"
        Logged-in user id column (nullable: missing for anonymous events).
    item : str, default="partnumber"
        Item (product) id column.
    cart : str, default="add_to_cart"
        0/1 add-to-cart flag.
    time : str, default="timestamp_local"
        Event time (a polars/pandas datetime).
    segment : str or None, default=None
        Optional segment column (e.g. ``"country"``) for the popularity
        fallback and per-segment scores.

    See Also
    --------
    make_recommender_pipeline : The pipeline built from a schema.
    schema_of : The schema a pipeline was built with.

    Examples
    --------
    >>> from skals.schema import Schema
    >>> schema = Schema(session="session", user="user", item="item_id",
    ...                 cart="carted", time="ts", segment="country")
    >>> schema.columns()
    ['session', 'user', 'item_id', 'carted', 'ts', 'country']
    >>> schema.replace(segment=None).segment is None
    True
    """

    __slots__ = FIELDS

    def __init__(
        self,
        *,
        session="session_id",
        user="user_id",
        item="partnumber",
        cart="add_to_cart",
        time="timestamp_local",
        segment=None,
    ):
        values = dict(
            session=session, user=user, item=item, cart=cart, time=time, segment=segment
        )
        for name, value in values.items():
            if value is None and name == "segment":
                continue
            if not isinstance(value, str) or not value:
                raise TypeError(
                    f"Schema({name}=...) must be a non-empty column name (str)"
                    f"{' or None' if name == 'segment' else ''}; got {value!r}."
                )
        named = [v for v in values.values() if v is not None]
        dup = sorted({v for v in named if named.count(v) > 1})
        if dup:
            raise ValueError(
                f"Schema: the column name(s) {dup!r} are given for more than one "
                "field; every field needs its own column."
            )
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(
            "Schema is immutable: use schema.replace(**changes) for a new one."
        )

    def __reduce__(self):
        return (_rebuild, (self.as_dict(),))

    def as_dict(self) -> dict:
        """The fields and their column names, as a dict."""
        return {name: getattr(self, name) for name in FIELDS}

    def replace(self, **changes) -> Schema:
        """A new schema with some fields changed."""
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise TypeError(f"Schema has no field(s) {unknown!r}; fields: {FIELDS}.")
        return Schema(**{**self.as_dict(), **changes})

    def columns(self) -> list[str]:
        """The column names the schema names (``segment`` only when set)."""
        return [v for v in self.as_dict().values() if v is not None]

    def __eq__(self, other):
        if not isinstance(other, Schema):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __hash__(self):
        return hash(tuple(self.as_dict().items()))

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items())
        return f"Schema({inner})"


def _rebuild(fields: dict) -> Schema:
    return Schema(**fields)


def _schema_params(step) -> dict:
    """``{parameter: schema field}`` a step declares (``_schema_params``)."""
    return dict(getattr(type(step), "_schema_params", {}))


def _steps(estimator) -> list:
    # a fitted GridSearchCV, a Pipeline, or a single step
    estimator = getattr(estimator, "best_estimator_", estimator)
    steps = getattr(estimator, "steps", None)
    if steps is None:
        return [estimator]
    return [step for _, step in steps if step not in (None, "passthrough")]


def schema_of(estimator) -> Schema:
    """The schema of a pipeline: its steps' column parameters, read back.

    Each skals step declares which of its parameters name a column of the
    event log (for example the unifier's ``user_col`` is the schema's
    ``user``); this reads them from the steps of ``estimator`` (a
    ``Pipeline``, a fitted ``GridSearchCV`` or one step). Fields no step
    names keep the :class:`Schema` defaults.

    Parameters
    ----------
    estimator : Pipeline, GridSearchCV or estimator
        The pipeline to read.

    Returns
    -------
    schema : Schema

    Raises
    ------
    ValueError
        When two steps name different columns for the same field (for
        example the unifier's ``session_col`` and the encoder's).

    Examples
    --------
    >>> from skals.schema import Schema, make_recommender_pipeline, schema_of
    >>> pipe = make_recommender_pipeline(schema=Schema(item="sku", user="customer"))
    >>> schema_of(pipe).item, schema_of(pipe).user
    ('sku', 'customer')
    """
    found = _named_fields(estimator)
    return Schema(**{field: value for field, (value, _) in found.items()})


def _named_fields(estimator) -> dict:
    """``{field: (column, "Step.param")}`` for the fields the steps name."""
    found: dict[str, tuple[str, str]] = {}
    for step in _steps(estimator):
        params = step.get_params(deep=False)
        for param, field in _schema_params(step).items():
            value = params[param]
            if value is None:  # not named by this step (e.g. no segment)
                continue
            where = f"{type(step).__name__}.{param}"
            if field in found and found[field][0] != value:
                raise ValueError(
                    f"The pipeline names two columns for the schema's {field!r}: "
                    f"{found[field][0]!r} ({found[field][1]}) and {value!r} "
                    f"({where}). Build it with make_recommender_pipeline(schema=...) "
                    "to give each name once."
                )
            found.setdefault(field, (value, where))
    return found


def named_columns(estimator) -> dict:
    """``{field: column or None}``: the columns ``estimator``'s steps name.

    Unlike :func:`schema_of`, a field no step names is ``None`` (for
    example ``time`` in an ALS pipeline, whose steps never read it).

    Parameters
    ----------
    estimator : Pipeline, GridSearchCV or estimator
        The pipeline to read.

    Returns
    -------
    columns : dict of str to str or None

    Examples
    --------
    >>> from skals.schema import make_recommender_pipeline, named_columns
    >>> named_columns(make_recommender_pipeline())["time"] is None
    True
    """
    found = _named_fields(estimator)
    return {f: found[f][0] if f in found else None for f in FIELDS}


def resolve_schema(estimator, schema=None) -> Schema:
    """``schema`` checked against what ``estimator``'s steps name, or theirs.

    Without ``schema`` this is :func:`schema_of`. With one, every column a
    step names must be the schema's, so a scorer or splitter given a schema
    cannot silently read other columns than the pipeline was built with.

    Parameters
    ----------
    estimator : Pipeline, GridSearchCV or estimator
        The pipeline.
    schema : Schema or None, default=None
        The schema to check.

    Returns
    -------
    schema : Schema

    Raises
    ------
    ValueError
        When a step names another column than ``schema`` for a field.

    Examples
    --------
    >>> from skals.schema import Schema, make_recommender_pipeline, resolve_schema
    >>> pipe = make_recommender_pipeline(schema=Schema(item="sku"))
    >>> resolve_schema(pipe, Schema(item="sku")).item
    'sku'
    >>> try:
    ...     resolve_schema(pipe, Schema())
    ... except ValueError as exc:
    ...     print(str(exc)[:48])
    The schema names 'partnumber' for 'item' but the
    """
    if schema is None:
        return schema_of(estimator)
    if not isinstance(schema, Schema):
        raise TypeError(f"schema must be a skals Schema, got {type(schema).__name__}.")
    for field, (value, where) in _named_fields(estimator).items():
        if getattr(schema, field) != value:
            raise ValueError(
                f"The schema names {getattr(schema, field)!r} for {field!r} but the "
                f"pipeline reads {value!r} ({where}): build the pipeline with "
                "make_recommender_pipeline(schema=...) from the same schema."
            )
    return schema


def apply_schema(step, schema: Schema, *, skip=()):
    """Set the column parameters ``step`` declares from ``schema``; return it."""
    params = {
        p: getattr(schema, f) for p, f in _schema_params(step).items() if f not in skip
    }
    return step.set_params(**params) if params else step


def needs_event_order(estimator) -> bool:
    """Whether ``estimator`` (or an estimator among its parameters) needs the
    order of events: a class attribute ``_requires_order = True`` says so
    (session-kNN's position weights and recency sampling, the repeat model).
    """
    if getattr(type(estimator), "_requires_order", False):
        return True
    if not hasattr(estimator, "get_params"):
        return False
    return any(
        getattr(type(v), "_requires_order", False)
        for v in estimator.get_params(deep=True).values()
        if hasattr(v, "get_params")
    )


def make_recommender_pipeline(
    recommender=None,
    *,
    schema=None,
    grain="session",
    memory=None,
    verbose=False,
    **encoder_params,
):
    """The four-step pipeline, with every column name taken from one schema.

    ``PseudoUserUnifier -> ConfidenceEncoder -> InteractionMatrixBuilder ->
    recommender``, each step's column parameters set from ``schema``. The
    encoder is given the time column only when the recommender needs the
    order of events (:class:`~skals.SessionKNNRecommender`, the repeat model,
    a blend containing them); ALS and popularity do not read it. For
    :class:`~skals.RerankRecommender` it also keeps each session's events
    (``keep_events=True``), which the model learns from. The
    steps keep scikit-learn's default names (``confidenceencoder__cart_weight``
    in a grid), so the result tunes, clones and pickles like any pipeline.

    Parameters
    ----------
    recommender : estimator or None, default=None
        The final step; ``None`` means ``ImplicitALSRecommender()``.
    schema : Schema or None, default=None
        The event log's column names; ``None`` means ``Schema()``.
    grain : {"session", "key"}, default="session"
        The encoder's grain: ``"session"`` answers one row per session (the
        challenge's protocol and the scorers'), ``"key"`` one per user key.
    memory : object or None, default=None
        Passed to :class:`sklearn.pipeline.Pipeline` (caching of the
        transformers' fits).
    verbose : bool, default=False
        Passed to :class:`sklearn.pipeline.Pipeline`.
    **encoder_params
        Other :class:`~skals.ConfidenceEncoder` parameters (for example
        ``cart_weight=5``).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline

    Examples
    --------
    >>> from skals.schema import Schema, make_recommender_pipeline
    >>> pipe = make_recommender_pipeline(schema=Schema(session="visit"))
    >>> [name for name, _ in pipe.steps][-1]
    'implicitalsrecommender'
    >>> pipe[0].session_col, pipe[1].session_col, pipe[2].session_col
    ('visit', 'visit', 'visit')
    """
    from sklearn.pipeline import make_pipeline

    from .preprocessing import (
        ConfidenceEncoder,
        InteractionMatrixBuilder,
        PseudoUserUnifier,
    )

    if schema is None:
        schema = Schema()
    if not isinstance(schema, Schema):
        raise TypeError(
            f"make_recommender_pipeline(schema=...) takes a skals Schema; got "
            f"{type(schema).__name__}."
        )
    if recommender is None:
        from .recommender import ImplicitALSRecommender

        recommender = ImplicitALSRecommender()
    overlap = sorted(set(encoder_params) & set(_schema_params(ConfidenceEncoder())))
    if overlap:
        raise TypeError(
            f"make_recommender_pipeline: {overlap!r} are column names; give them "
            "in the schema, not as encoder parameters."
        )
    if getattr(type(recommender), "_requires_events", False):
        # a model that learns from every prefix of a session (RerankRecommender)
        encoder_params = {"keep_events": True, **encoder_params}
    steps = [
        PseudoUserUnifier(),
        ConfidenceEncoder(grain=grain, **encoder_params),
        InteractionMatrixBuilder(),
    ]
    # the encoder reads event times only for a model that needs their order
    # (it then adds last_time/recency, which the ALS path does not pay for)
    skip = () if needs_event_order(recommender) else ("time",)
    steps = [apply_schema(step, schema, skip=skip) for step in steps]
    steps.append(recommender)
    return make_pipeline(*steps, memory=memory, verbose=verbose)
