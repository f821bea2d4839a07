"""InteractionMatrixBuilder: encoded rows in, an InteractionMatrix out."""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from sklearn_compat.base import _fit_context

from .._checks import (
    check_not_empty,
    check_null_ids,
    check_unused_columns,
    check_value_counts,
    raise_bad_value_dtype,
    report_session_keys,
    report_unknown_items,
)
from .._frame import (
    FrameKind,
    check_columns,
    comparable_ids,
    frame_kind,
    is_spark,
    schema_of,
    to_polars,
)
from .._interaction import InteractionMatrix, RowEvents, epoch_seconds
from ._base import FrameTransformerMixin, spark_call
from ._confidence import (
    CART_COUNT,
    CONFIDENCE,
    EVENT_TIMES,
    EVENT_VALUES,
    LAST_TIME,
    RECENCY,
    VIEW_COUNT,
    check_item_column,
)
from ._unifier import _render_id


def _refuse_cast_mismatch(values: pl.Series, vocabulary: pl.Series, where) -> None:
    """No id matches the vocabulary, but some would after an int<->str cast.

    Then the ids were read as another type than in fit (e.g. a CSV read
    with guessed types): an error naming both dtypes and the cast, rather
    than answering every row from popularity.
    """
    have, want = values.dtype, vocabulary.dtype
    text = (pl.String, pl.Categorical, pl.Enum)
    if want.is_integer() and have in text:
        # only canonical forms: "010" is not item 10 even after a cast
        as_text = values.cast(pl.String)
        cast = as_text.cast(want, strict=False)
        cast = cast.filter(cast.cast(pl.String) == as_text)
    elif want == pl.String and (have.is_integer() or have.is_float()):
        cast = pl.select(_render_id(pl.lit(values), have)).to_series()
    else:
        return
    if not cast.is_in(vocabulary.implode()).any():
        return
    raise ValueError(
        f"{where}: no {values.name!r} id matches the fitted ones: they are "
        f"{have} here and {want} at fit, and would match after a cast to "
        f"{want} (e.g. pl.col({values.name!r}).cast(pl.{want})). Read the ids "
        "with the type they had at fit."
    )


class InteractionMatrixBuilder(FrameTransformerMixin, TransformerMixin, BaseEstimator):
    """Map keys and items to indices and build the confidence matrix.

    :meth:`fit` learns the item vocabulary (sorted unique item ids) and the
    user vocabulary (sorted unique keys, the rows of the training matrix).
    :meth:`transform` returns an :class:`InteractionMatrix`: a CSR float32
    matrix with one row per key (or per session at session grain) of the
    input and one column per fitted item, with the ids of both.

    Items unknown at fit time are dropped at transform with a warning that
    counts them; their rows stay (possibly empty), so every key or session
    of the input still gets an answer downstream.

    Parameters
    ----------
    user_col : str, default="unified_user_id"
        Key column.
    item_col : str, default="partnumber"
        Item id column (integers or strings).
    value_col : str, default="confidence"
        Matrix values. Must be finite and non-negative.
    session_col : str, default="session_id"
        When present in the input (the encoder's ``grain="session"``), rows are
        sessions and ``row_keys`` tells each session's key; the recommender
        sums a key's sessions into one training row (``1 + sum(c_s - 1)``).
    segment_col : str or None, default=None
        Segment column passed through to the popularity fallback.

    Attributes
    ----------
    user_ids_ : polars.Series
        Sorted keys of the training rows.
    item_ids_ : polars.Series
        Sorted item ids: column ``j`` is ``item_ids_[j]``.
    feature_names_in_ : ndarray of str
        Columns of the frame seen in :meth:`fit`.
    n_features_in_ : int
        Number of those columns.

    See Also
    --------
    InteractionMatrix : The returned container.
    ImplicitALSRecommender : Fits ALS on it.

    Examples
    --------
    >>> import polars as pl
    >>> from skals import InteractionMatrixBuilder
    >>> enc = pl.DataFrame({"unified_user_id": ["u_1", "u_1", "s_9"],
    ...                     "partnumber": ["b", "a", "b"],
    ...                     "confidence": [2.0, 12.0, 3.0]})
    >>> builder = InteractionMatrixBuilder().fit(enc)
    >>> builder.item_ids_.to_list()
    ['a', 'b']
    >>> builder.transform(enc).matrix.toarray()
    array([[ 0.,  3.],
           [12.,  2.]], dtype=float32)
    """

    #: Which parameters name a column of the event log, by
    #: :class:`~skals.schema.Schema` field (read by ``schema_of``).
    _schema_params = {
        "item_col": "item",
        "session_col": "session",
        "segment_col": "segment",
    }

    _parameter_constraints: dict = {
        "user_col": [str],
        "item_col": [str],
        "value_col": [str],
        "session_col": [str],
        "segment_col": [str, None],
    }

    def __init__(
        self,
        user_col="unified_user_id",
        item_col="partnumber",
        value_col="confidence",
        session_col="session_id",
        segment_col=None,
    ):
        self.user_col = user_col
        self.item_col = item_col
        self.value_col = value_col
        self.session_col = session_col
        self.segment_col = segment_col

    @property
    def _where(self) -> str:
        return type(self).__name__

    def _prepare(self, X) -> tuple[pl.DataFrame, FrameKind]:
        kind = frame_kind(X)
        df = to_polars(X)
        if isinstance(df, pl.LazyFrame):
            df = df.collect()
        required = [self.user_col, self.item_col, self.value_col]
        if self.segment_col is not None:
            required.append(self.segment_col)
        check_columns(df, required, where=self._where)
        check_unused_columns(self, schema_of(df).names(), (VIEW_COUNT, CART_COUNT))
        df = check_item_column(df, self.item_col, self._where)
        self._check_values(df)
        # a null id would become a vocabulary entry or a row id of its own
        id_cols = [self.user_col, self.item_col]
        if self._has_sessions(df):
            id_cols.append(self.session_col)
        check_null_ids(self._where, {c: df[c].null_count() for c in id_cols})
        return df, kind

    def _check_values(self, df: pl.DataFrame) -> None:
        dtype = schema_of(df)[self.value_col]
        if not (dtype.is_numeric()):
            raise_bad_value_dtype(self._where, self.value_col, str(dtype))
        v = pl.col(self.value_col).cast(pl.Float64)
        bad = df.select(
            (v.is_null() | v.is_nan() | v.is_infinite()).sum().alias("nonfinite"),
            (v < 0).sum().alias("negative"),
        ).row(0)
        check_value_counts(self._where, self.value_col, *bad)

    def _has_sessions(self, df: pl.DataFrame) -> bool:
        return self.session_col in df.columns and self.session_col != self.user_col

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the user and item vocabularies.

        Parameters
        ----------
        X : polars or pandas DataFrame
            Encoded rows, e.g. from :class:`ConfidenceEncoder`.
        y : None
            Ignored.

        Returns
        -------
        self : InteractionMatrixBuilder
            Fitted builder.
        """
        if is_spark(X):
            return spark_call(self, "fit", X)
        df, _ = self._prepare(X)
        check_not_empty(self._where, df.height)
        self._remember_columns(df)
        self.user_ids_ = df[self.user_col].unique().sort().rename(self.user_col)
        self.item_ids_ = df[self.item_col].unique().sort().rename(self.item_col)
        return self

    def transform(self, X):
        """Build the matrix of ``X`` over the fitted items.

        Parameters
        ----------
        X : polars or pandas DataFrame
            Encoded rows (key grain or session grain).

        Returns
        -------
        Xt : InteractionMatrix
            One row per key (or session) of ``X``, sorted by id; one column
            per fitted item.
        """
        check_is_fitted(self)
        if is_spark(X):
            return spark_call(self, "transform", X)
        df, kind = self._prepare(X)
        where = self._where
        id_name = self.session_col if self._has_sessions(df) else self.user_col
        vocab = _positions(self.item_ids_, "__col")
        # ids of another type than in fit match exactly or not at all
        # ("010" is not item 10); the rows that match nothing are counted
        lookup = comparable_ids(df[self.item_col], self.item_ids_.dtype)
        if lookup is None:
            _refuse_cast_mismatch(df[self.item_col], self.item_ids_, where)
            lookup = pl.Series([None] * df.height, dtype=self.item_ids_.dtype)
        # one lazy plan, hash joins throughout (cheaper than binary searches
        # over millions of string ids), collected together
        has_time = LAST_TIME in df.columns and RECENCY in df.columns
        simple = id_name == self.user_col and self.segment_col is None
        by_vocabulary = simple and not has_time and self._rows_from_vocabulary(df)
        has_events = has_time and {EVENT_TIMES, EVENT_VALUES} <= set(df.columns)
        lf = df.lazy()
        if has_events:
            # each pair's input row: its events are read from ``df``'s lists
            # by it, not carried through the joins (a copy per join)
            lf = lf.with_row_index("__ev")
        if by_vocabulary:
            # the input's position of each pair (its ids are read from ``df``
            # only where needed: keys not in fit, unknown items) and its
            # fitted key's position (null for a key not in fit); the key
            # join before the item join measured cheaper
            lf = lf.with_row_index("__i").join(
                _positions(self.user_ids_, "__fit").lazy(),
                on=self.user_col,
                how="left",
            )
        if lookup.dtype == df.schema[self.item_col]:
            # the ids as they are (comparable_ids returned the column
            # itself): joined on the column
            lf = lf.join(vocab.lazy(), on=self.item_col, how="left")
        else:
            lf = lf.with_columns(lookup.alias("__item")).join(
                vocab.lazy().rename({self.item_col: "__item"}),
                on="__item",
                how="left",
            )
        # only what the matrix and the item statistics need: the ids'
        # strings are not carried through the join's output
        keep = ["__row", "__col", self.value_col]
        # (a count that is the value column itself is carried once)
        keep += [
            c for c in (VIEW_COUNT, CART_COUNT) if c in df.columns and c not in keep
        ]
        if self.segment_col is not None:
            keep.append(self.segment_col)
        if has_time:
            keep.append(RECENCY)
        if has_events:
            keep.append("__ev")
        unknown_lf = lf.filter(pl.col("__col").is_null()).select(
            pl.len().alias("rows"), pl.col(self.item_col).n_unique().alias("ids")
        )
        # every key/session of the input keeps a row, even if all its items
        # were unknown: it still gets an answer (from history or popularity)
        if by_vocabulary:
            unknown, row_ids, known = _rows_by_vocabulary(
                lf, df, self.user_ids_, keep, self.item_col
            )
            rows = pl.DataFrame({id_name: row_ids, "__key": row_ids})
        else:
            rows, known, unknown = self._rows_by_input(
                df, lf, id_name, has_time, keep, unknown_lf
            )
            unknown = unknown.row(0)
        n_unknown, n_unknown_ids = unknown
        if "__n_keys" in rows.columns:
            report_session_keys(where, id_name, (rows["__n_keys"] > 1).sum())
        report_unknown_items(where, self.item_col, n_unknown, df.height, n_unknown_ids)
        index = _index_dtype(max(rows.height, len(self.item_ids_)))
        # read once from the (chunked) join output: the matrix and the item
        # statistics both take them
        values = known[self.value_col].to_numpy()
        cols = known["__col"].to_numpy()
        matrix = sp.csr_matrix(
            (
                values.astype(np.float32, copy=False),
                (
                    known["__row"].to_numpy().astype(index, copy=False),
                    cols.astype(index, copy=False),
                ),
            ),
            shape=(rows.height, len(self.item_ids_)),
            dtype=np.float32,
        )
        matrix.sum_duplicates()  # canonical: sorted indices, one entry per cell
        stats = self._item_stats(known, values, cols)
        times = recency = None
        if has_time:
            times = epoch_seconds(rows["__time"], _is_temporal(df, LAST_TIME))
            recency = _recency_matrix(known, matrix)
        events = _row_events(df, known, rows.height, index) if has_events else None
        return InteractionMatrix(
            matrix=matrix,
            row_ids=rows[id_name],
            row_keys=rows["__key"].rename(self.user_col),
            item_ids=self.item_ids_,
            id_name=id_name,
            item_name=self.item_col,
            row_segments=rows["__seg"].rename(self.segment_col)
            if self.segment_col is not None
            else None,
            item_stats=stats,
            kind=kind,
            row_times=times,
            recency=recency,
            events=events,
        )

    def _rows_from_vocabulary(self, df: pl.DataFrame) -> bool:
        """Whether the rows are found through the fitted keys (``user_ids_``).

        Only a speed choice (both ways give the same rows): a log at least as
        long as the vocabulary (the training log, a large fold) is joined to
        the fitted keys, so its keys are neither made unique nor sorted
        again; a short one (sessions to predict) sorts its own few keys
        rather than probing millions. The keys must have the fitted dtype,
        strings or integers (whose sort order ``search_sorted`` follows).
        """
        dtype = df.schema[self.user_col]
        if dtype != self.user_ids_.dtype:
            return False
        if not (dtype == pl.String or dtype.is_integer()):
            return False
        return df.height >= len(self.user_ids_)

    def _rows_by_input(self, df, lf, id_name, has_time, keep, unknown_lf):
        """Rows from the input's own keys (or sessions): sorted unique ids,
        and the known pairs with their row."""
        if id_name == self.user_col and self.segment_col is None and not has_time:
            rows_lf = lf.select(pl.col(id_name).unique().sort()).with_columns(
                pl.col(id_name).alias("__key")
            )
        else:
            # a session's key: the smallest of its keys (one, after
            # PseudoUserUnifier), whatever the row order; its segment: that
            # key's
            key = pl.col(self.user_col)
            rows_lf = lf.group_by(id_name).agg(
                key.min().alias("__key"),
                key.n_unique().alias("__n_keys"),
                *(
                    [
                        pl.col(self.segment_col)
                        .sort_by(key, pl.col(self.segment_col), nulls_last=True)
                        .first()
                        .alias("__seg")
                    ]
                    if self.segment_col is not None
                    else []
                ),
                *(
                    [_epoch_value(df, LAST_TIME).max().alias("__time")]
                    if has_time
                    else []
                ),
            )
        rows_lf = rows_lf.sort(id_name).with_row_index("__row")
        known_lf = (
            lf.filter(pl.col("__col").is_not_null())
            .join(rows_lf.select(id_name, "__row"), on=id_name, how="left")
            .select(keep)
        )
        return pl.collect_all([rows_lf, known_lf, unknown_lf])

    def _item_stats(self, known: pl.DataFrame, values, cols) -> pl.DataFrame:
        if self.segment_col is None:
            return _item_sums(known, self.value_col, len(self.item_ids_), values, cols)
        by = ["__col"]
        if self.segment_col is not None:
            by.insert(0, self.segment_col)
        aggs = [pl.col(self.value_col).cast(pl.Float64).sum().alias(CONFIDENCE)]
        for c in (VIEW_COUNT, CART_COUNT):
            if c in known.columns:
                aggs.append(pl.col(c).cast(pl.Float64).sum().alias(c))
        aggs.append(pl.len().cast(pl.Float64).alias("n_rows"))
        by_out = [c if c != "__col" else "item_index" for c in by]
        return (
            known.group_by(by)
            .agg(aggs)
            .rename({"__col": "item_index"})
            .with_columns(pl.col("item_index").cast(pl.Int64))
            .sort(by_out)
        )


def _rows_by_vocabulary(lf, df, vocabulary: pl.Series, keep: list[str], item_col):
    """Rows of the keys of ``df`` through the sorted fitted keys ``vocabulary``.

    ``lf`` holds each pair's fitted key's position (``__fit``, a hash join
    to the vocabulary, in the same collect as the item lookup);
    the input's rows are the fitted keys that occur (in their sorted order)
    merged with the keys not seen in fit (sorted, placed by
    ``search_sorted``): the same rows as sorting the input's unique keys.
    Returns the unknown items' (rows, distinct ids), the row ids, and the
    known pairs (``__col`` not null) with their ``__row`` and ``keep``.
    """
    key = vocabulary.name
    n = len(vocabulary)
    # integer counts as float64 here, where np.bincount would convert them
    # (the same values; polars' memory is reused, a fresh numpy array
    # costs its first-touch page faults)
    counts = [
        pl.col(c).cast(pl.Float64) if df.schema[c] == pl.Int64 else pl.col(c)
        for c in keep[1:]
        if c in (VIEW_COUNT, CART_COUNT)
    ]
    rest = [c for c in keep[1:] if c not in (VIEW_COUNT, CART_COUNT)]
    out = lf.select("__i", "__fit", *rest, *counts).collect()
    unknown_at = out.filter(pl.col("__col").is_null())["__i"]
    unknown_ids = df[item_col].gather(unknown_at)
    unknown = (len(unknown_ids), unknown_ids.n_unique())
    fit = out["__fit"]
    has_new = fit.null_count() > 0
    if has_new:
        new_at = out.filter(pl.col("__fit").is_null())["__i"]
        new_keys = df[key].gather(new_at).unique().sort().rename(key)
        # a key not in fit points at the sentinel position n
        fit = fit.fill_null(n)
    else:
        new_keys = vocabulary.clear()
    fit = fit.to_numpy()
    # the fitted keys that occur: a scatter over the dense positions, not
    # a hash unique of the pairs' positions
    seen = np.zeros(n + 1, dtype=bool)
    seen[fit] = True
    fit_pos = np.flatnonzero(seen[:n])
    fit_keys = vocabulary.gather(fit_pos)
    # merged order: a new key goes before the fitted key at its insertion
    # point (it equals none of them)
    at = fit_keys.search_sorted(new_keys).to_numpy().astype(np.int64)
    new_row = at + np.arange(len(new_keys))
    fit_row = np.arange(len(fit_keys)) + np.searchsorted(
        at, np.arange(len(fit_keys)), side="right"
    )
    order = np.empty(len(fit_keys) + len(new_keys), dtype=np.int64)
    order[fit_row] = np.arange(len(fit_keys))
    order[new_row] = len(fit_keys) + np.arange(len(new_keys))
    row_ids = pl.concat([fit_keys, new_keys]).gather(order).rename(key)
    if not has_new and len(fit_pos) == n:
        # every fitted key occurs and no other (the training log): each
        # pair's row is its key's position, no gather
        known = out.select(pl.col("__fit").alias("__row"), *keep[1:])
        if unknown[0]:
            known = known.filter(pl.col("__col").is_not_null())
        return unknown, row_ids, known
    to_row = np.full(n + 1, -1, dtype=_index_dtype(len(order)))
    to_row[fit_pos] = fit_row
    rows = to_row[fit]
    if has_new:
        new_index = pl.DataFrame({key: new_keys, "__new_row": new_row})
        mapped = (
            df[key]
            .gather(new_at)
            .to_frame()
            .join(new_index, on=key, how="left", maintain_order="left")
        )
        rows[fit == n] = mapped["__new_row"].to_numpy()
    known = out.select(pl.Series("__row", rows), *keep[1:])
    if unknown[0]:
        known = known.filter(pl.col("__col").is_not_null())
    return unknown, row_ids, known


def _index_dtype(n: int):
    """The index dtype scipy gives a matrix of ``n`` rows or columns: int32
    when it fits, so the CSR takes the positions without converting them."""
    return np.int32 if n < np.iinfo(np.int32).max else np.int64


def _positions(ids: pl.Series, name: str) -> pl.DataFrame:
    """``ids`` and their positions ``0..len-1`` (column ``name``), in the
    index dtype of :func:`_index_dtype`."""
    dtype = pl.Int32 if _index_dtype(len(ids)) == np.int32 else pl.Int64
    return pl.DataFrame(
        {ids.name: ids, name: pl.int_range(len(ids), dtype=dtype, eager=True)}
    )


def _item_sums(
    known: pl.DataFrame, value_col: str, n_items: int, values, cols
) -> pl.DataFrame:
    """Per item column (``item_index``, the items present): summed values and
    counts, and the number of rows; what popularity ranks by.

    Column indices are dense (``0..n_items-1``), so the sums are
    ``np.bincount`` over them rather than a group-by. ``values`` and
    ``cols`` are ``known``'s value and ``__col`` columns as numpy arrays.
    """
    # np.bincount takes intp indices: cast once, not in every call
    cols = cols.astype(np.intp, copy=False)
    n_rows = np.bincount(cols, minlength=n_items)
    present = np.flatnonzero(n_rows)
    out = {"item_index": present.astype(np.int64)}
    for name, col in [(CONFIDENCE, value_col), (VIEW_COUNT,) * 2, (CART_COUNT,) * 2]:
        if col in known.columns:
            weights = known[col]
            if weights.dtype not in (pl.Float64, pl.Int64):
                weights = weights.cast(pl.Float64).to_numpy()
            elif col == value_col:
                weights = values  # already read
            else:
                weights = weights.to_numpy()
            # np.bincount sums the weights in float64 (but gives int64 when
            # there are no pairs: every item unknown)
            sums = np.bincount(cols, weights, minlength=n_items)[present]
            out[name] = sums.astype(np.float64, copy=False)
    out["n_rows"] = n_rows[present].astype(np.float64)
    return pl.DataFrame(out)


def _is_temporal(df, col: str) -> bool:
    return isinstance(df.schema[col], (pl.Datetime, pl.Date))


def _epoch_value(df, col: str) -> pl.Expr:
    """``col`` as integer microseconds since the epoch (datetimes, dates), or
    as float (numbers); :func:`epoch_seconds` turns it into seconds."""
    if _is_temporal(df, col):
        return pl.col(col).dt.epoch("us")
    return pl.col(col).cast(pl.Float64)


def _row_events(df: pl.DataFrame, known: pl.DataFrame, n_rows: int, index) -> RowEvents:
    """Each row's events (the encoder's lists) in time order: ``RowEvents``.

    ``known`` gives each known pair's input row in ``df`` (``__ev``) and its
    matrix cell (positions in the matrix's ``index`` dtype); the lists are
    read once from ``df``, flat, and only the sort keys and their order are
    built (no exploded copy of the pairs).
    A row's events come from all its encoded rows (a key's sessions at
    fit). Equal times: the smaller column first (so the larger item id is
    the later one, as the encoder's ``recency`` breaks ties), the log's
    order for one item.
    """
    at = known["__ev"].to_numpy()
    row_of = np.full(df.height, -1, dtype=index)
    row_of[at] = known["__row"].to_numpy()
    col_of = np.zeros(df.height, dtype=index)
    col_of[at] = known["__col"].to_numpy()
    times, values = df[EVENT_TIMES], df[EVENT_VALUES]
    lengths = times.list.len().fill_null(0).to_numpy()
    if not lengths.all():  # an empty list may explode to one null (polars 1)
        listed = pl.Series(lengths > 0)
        times, values = times.filter(listed), values.filter(listed)
        row_of, col_of = row_of[lengths > 0], col_of[lengths > 0]
        lengths = lengths[lengths > 0]
    ev_row = np.repeat(row_of, lengths)
    ev_known = ev_row >= 0  # events of unknown items have no cell
    keys = pl.DataFrame(
        {"r": ev_row, "t": times.explode(), "c": np.repeat(col_of, lengths)}
    ).filter(pl.Series(ev_known))
    del ev_row
    order = keys.select(pl.arg_sort_by("r", "t", "c", maintain_order=True))
    order = order.to_series().to_numpy()
    counts = np.bincount(keys["r"].to_numpy(), minlength=n_rows)
    items = keys["c"].to_numpy()[order].astype(np.int32)
    del keys
    values = values.explode().to_numpy()[ev_known][order]
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return RowEvents(indptr, items, values.astype(np.float32))


def _recency_matrix(known: pl.DataFrame, matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Recency per stored cell, in the sparsity pattern and order of ``matrix``.

    A cell listed twice (a session id under two keys) keeps its smaller
    (more recent) recency.
    """
    if matrix.nnz < known.height:
        known = known.group_by("__row", "__col").agg(pl.col(RECENCY).min())
    rec = sp.csr_matrix(
        (
            known[RECENCY].to_numpy().astype(np.int32),
            (known["__row"].to_numpy(), known["__col"].to_numpy()),
        ),
        shape=matrix.shape,
        dtype=np.int32,
    )
    rec.sum_duplicates()
    return rec
