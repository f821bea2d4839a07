"""Validations written once: count the bad rows (any library), then raise or warn.

Each dataframe library counts with its own engine (a polars aggregate, a
Spark job); the functions here turn the counts into the error or warning, so
the polars, pandas and Spark paths give the same messages. Nothing here
imports a dataframe library; warnings go through :mod:`skals._warnings`.
"""

from __future__ import annotations

from ._warnings import RECORDERS, warn

__all__ = ["RECORDERS", "warn"]  # the warning helpers the checks emit with


# ------------------------------------------------------------------ columns
def check_unique_names(names, where="input") -> None:
    """Raise when a column name appears twice."""
    seen, dup = set(), []
    for n in names:
        if n in seen and n not in dup:
            dup.append(n)
        seen.add(n)
    if dup:
        raise ValueError(f"Duplicate column names in the {where}: {dup!r}.")


def check_required(names, required, where: str, fields=None) -> None:
    """Raise a ``ValueError`` naming the required columns that are missing.

    ``fields`` maps a column to the :class:`~skals.schema.Schema` field it
    came from, when the caller was given a schema: the hint then names the
    schema's field, the user's vocabulary, not the step's parameter.
    """
    names = set(names)
    missing = [c for c in required if c not in names]
    if missing:
        if fields:
            given = ", ".join(f"{fields[c]}={c!r}" for c in missing if c in fields)
            hint = (
                f"The column names come from the Schema ({given}): build it "
                "with the log's own names, e.g. Schema(session=..., time=...)."
            )
        else:
            hint = f"Column names are parameters of {where}."
        raise ValueError(
            f"{where}: missing required column(s) {missing!r}; the input has "
            f"{sorted(names)!r}. {hint}"
        )


def check_output_col(names, output_col: str, where: str) -> None:
    """Raise when the column a step would add is already there."""
    if output_col in names:
        raise ValueError(
            f"{where}: the input already has a column {output_col!r}; "
            "choose another output_col."
        )


def check_unused_columns(builder, names, counts=("view_count", "cart_count")):
    """Raise when an encoder's output carries a column the builder would drop.

    A ``segment_col`` (or ``session_col``) given to the encoder only would
    otherwise be silently ignored. Only frames with the encoder's count
    columns are checked, so hand-made frames may carry extra columns.
    """
    names = list(names)
    if not all(c in names for c in counts):
        return
    known = {
        builder.user_col,
        builder.item_col,
        builder.value_col,
        builder.session_col,
        "confidence",
        *counts,
        # the encoder's event-order columns (time_col), read by the builder
        "last_time",
        "recency",
        # and its events (keep_events)
        "event_times",
        "event_values",
    }
    if builder.segment_col is not None:
        known.add(builder.segment_col)
    unused = [c for c in names if c not in known]
    if unused:
        where = type(builder).__name__
        raise ValueError(
            f"{where}: the encoded input has column(s) {unused!r} that {where} "
            "does not use. If it is ConfidenceEncoder's segment_col, set "
            f"{where}(segment_col={unused[0]!r}) too (segments are used only "
            "when both steps name the column); if it is its session_col, set "
            f"{where}(session_col={unused[0]!r}); otherwise drop it."
        )


# ------------------------------------------------------------------ unifier
def check_prefixes(user_prefix: str, session_prefix: str, where: str) -> None:
    """Raise when one key prefix starts with the other (keys could collide)."""
    if user_prefix.startswith(session_prefix) or session_prefix.startswith(user_prefix):
        raise ValueError(
            f"{where}: user_prefix={user_prefix!r} and session_prefix="
            f"{session_prefix!r} could give a user and a session the same key "
            "(user 5 and session 5); choose prefixes of which neither starts "
            "with the other."
        )


def raise_null_sessions(where: str, session_col: str, n_null: int) -> None:
    """Raise for events without a session id."""
    if n_null:
        raise ValueError(
            f"{where}: column {session_col!r} has {n_null} null or NaN values; "
            "every event needs a session id."
        )


def report_unifier_counts(where, user_col, n_coded, n_multi, missing_values):
    """Warn with the unifier's counts."""
    if n_coded:
        warn(
            f"{where}: {n_coded} rows have a user id in {user_col!r} coded as "
            f"missing (one of {tuple(missing_values)!r}, or an infinite float); "
            "they are treated as anonymous.",
            UserWarning,
            stacklevel=3,
        )
    if n_multi:
        warn(
            f"{where}: {n_multi} sessions have events of more than one user id "
            f"in {user_col!r}; each takes the key of its smallest user id.",
            UserWarning,
            stacklevel=3,
        )


# ------------------------------------------------------------------ encoder
def raise_bad_item_dtype(where: str, item_col: str, dtype: str) -> None:
    """Raise for an item column of a type ids cannot have."""
    raise TypeError(
        f"{where}: column {item_col!r} has dtype {dtype}; item ids must be "
        "integers or strings."
    )


def check_float_item_counts(item_col: str, n_nan: int, n_frac: int, where: str):
    """Raise for a float item column with NaN/null or non-integral values."""
    if n_nan:
        raise ValueError(
            f"{where}: column {item_col!r} is a float column with {n_nan} "
            "NaN or null values; item ids must be present (drop those rows)."
        )
    if n_frac:
        raise TypeError(
            f"{where}: column {item_col!r} holds {n_frac} non-integral "
            "floats; item ids must be integers or strings."
        )


def raise_bad_cart_dtype(where: str, cart_col: str, dtype: str) -> None:
    """Raise for an add-to-cart column that cannot hold 0/1 flags."""
    raise TypeError(
        f"{where}: column {cart_col!r} has dtype {dtype}; it must hold 0/1 "
        "(integer, float or boolean) add-to-cart flags."
    )


def check_encoded_counts(encoder, null_keys: dict, n_cart_null, n_cart_bad):
    """Raise for null keys and bad add-to-cart flags found by the aggregation."""
    where = type(encoder).__name__
    for k, n in null_keys.items():
        if n:
            # a LazyFrame's (or Spark's) null session ids first show up here
            hint = (
                " PseudoUserUnifier leaves the key null on rows with neither "
                "a user id nor a session id."
                if k == encoder.user_col
                else ""
            )
            raise ValueError(
                f"{where}: column {k!r} has null values; every event needs "
                f"a {k!r} (drop or fill those rows first).{hint}"
            )
    if n_cart_null:
        raise ValueError(
            f"{where}: column {encoder.cart_col!r} has {n_cart_null} null or "
            "NaN values."
        )
    if n_cart_bad:
        raise ValueError(
            f"{where}: column {encoder.cart_col!r} must hold only 0 and 1; "
            f"{n_cart_bad} (key, item) groups have other values."
        )


def report_duplicates(where: str, n_dropped: int, n_rows: int) -> None:
    """Warn with the number of exact duplicate events dropped."""
    if n_dropped:
        warn(
            f"{where}: dropped {n_dropped} of {n_rows} events that were exact "
            "duplicates of another (equal in every column).",
            UserWarning,
            stacklevel=3,
        )


# ------------------------------------------------------------------ builder
def raise_bad_value_dtype(where: str, value_col: str, dtype: str) -> None:
    """Raise for a confidence column that is not numeric."""
    raise TypeError(
        f"{where}: column {value_col!r} has dtype {dtype}; confidences must be numeric."
    )


def check_value_counts(where: str, value_col: str, n_nonfinite, n_negative):
    """Raise for null, NaN, infinite or negative confidences."""
    if n_nonfinite:
        raise ValueError(
            f"{where}: column {value_col!r} has {n_nonfinite} null, NaN or "
            "infinite values."
        )
    if n_negative:
        raise ValueError(
            f"{where}: column {value_col!r} has {n_negative} negative values; "
            "confidences must be >= 0."
        )


def check_null_ids(where: str, null_ids: dict) -> None:
    """Raise for null ids (they would become rows or columns of their own)."""
    for col, n in null_ids.items():
        if n:
            raise ValueError(f"{where}: column {col!r} has {n} null values.")


def check_not_empty(where: str, n_rows: int) -> None:
    """Raise when there is nothing to fit on."""
    if n_rows == 0:
        raise ValueError(f"{where}: cannot fit on an empty frame.")


def report_unknown_items(where, item_col, n_unknown, n_rows, n_ids) -> None:
    """Warn with the rows dropped for items not seen in fit."""
    if n_unknown:
        warn(
            f"{where}: dropped {n_unknown} of {n_rows} rows whose {item_col!r} "
            f"({n_ids} distinct ids) was not seen in fit.",
            UserWarning,
            stacklevel=3,
        )


def report_session_keys(where: str, session_col: str, n_split: int) -> None:
    """Warn about sessions whose rows carry several keys."""
    if n_split:
        warn(
            f"{where}: {n_split} values of {session_col!r} have rows with more "
            "than one key; each takes its smallest key. PseudoUserUnifier gives "
            "every session one key.",
            UserWarning,
            stacklevel=3,
        )
