"""Large arrays of a model file as their own ``.npy`` members (format 3).

:func:`skals.save` leaves every plain numeric array of at least
``skals.io.ARRAY_MIN_BYTES`` out of the skops state (:func:`split_arrays`:
a placeholder string where it was, its path in the header) and writes it
as an uncompressed, aligned ``.npy`` member (:func:`write_array_member`);
:func:`skals.load` checks each member and puts the arrays back, read or
memory-mapped (:func:`restore_arrays`). Nothing here unpickles: only
numeric dtypes are read.
"""

from __future__ import annotations

import copy
import io as _io
import math
import os
import struct
import time
import zipfile

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._bunch import Bunch

#: The zip member holding the marker, versions, columns and metadata.
HEADER_MEMBER = "skals.json"


def _damaged(path, why) -> ValueError:
    return ValueError(
        f"model file {str(path)!r} is damaged ({why}); it cannot be read. "
        "Write it again with skals.save or `skals fit`."
    )


#: Folder of the zip holding the large arrays, one ``.npy`` member each.
ARRAY_MEMBERS = "skals-arrays/"

#: Array data starts at a multiple of this many bytes of the file (numpy pads
#: the ``.npy`` header to it; skals pads the zip entry's local header).
_ALIGN = 64

#: Zip extra-field id of the padding that aligns an array member's data.
_PAD_EXTRA_ID = 0xD935

#: Placeholder left in the skops state where an array member goes.
_PLACEHOLDER = "skals-array:"

#: dtype kinds stored as members: bool, integers, floats, complex.
_NUMERIC_KINDS = "biufc"


def _is_member_array(obj, min_bytes) -> bool:
    return (
        type(obj) in (np.ndarray, np.memmap)
        and obj.dtype.kind in _NUMERIC_KINDS
        and obj.dtype.fields is None
        and obj.nbytes >= min_bytes
    )


def split_arrays(model, min_bytes):
    """``(copy, arrays, entries)``: ``model`` with its large arrays left out.

    Walks estimators' attributes, lists, tuples and dicts with string keys.
    Every container on the way to a large numeric array is shallow-copied
    and the copy gets a placeholder string instead of the array; everything
    else is shared with ``model``, which is not modified. ``arrays`` maps a
    member name to its array; ``entries`` (for the header) give each
    placeholder's path, member, dtype and shape.
    """
    arrays: dict[str, np.ndarray] = {}
    members: dict[int, str] = {}
    entries: list[dict] = []
    done: dict[int, object] = {}
    visiting: set[int] = set()

    def walk(obj, path):
        if _is_member_array(obj, min_bytes):
            member = members.get(id(obj))
            if member is None:
                member = f"{ARRAY_MEMBERS}{len(arrays)}.npy"
                members[id(obj)] = member
                arrays[member] = obj
            entries.append(
                {
                    "path": path,
                    "member": member,
                    "dtype": obj.dtype.str,
                    "shape": list(obj.shape),
                }
            )
            return _PLACEHOLDER + member
        if id(obj) in done:
            return done[id(obj)]
        if id(obj) in visiting:  # a cycle: left to skops as it is
            return obj
        if isinstance(obj, BaseEstimator):
            items, kind = list(vars(obj).items()), "attr"
        elif type(obj) in (dict, Bunch) and all(isinstance(k, str) for k in obj):
            items, kind = list(obj.items()), "key"
        elif type(obj) in (list, tuple):
            items, kind = list(enumerate(obj)), "index"
        else:
            return obj
        visiting.add(id(obj))
        changed = {}
        for key, value in items:
            new = walk(value, [*path, [kind, key]])
            if new is not value:
                changed[key] = new
        visiting.discard(id(obj))
        result = obj
        if changed:
            if kind == "attr":  # as skops builds it: no __init__, __copy__
                result = object.__new__(type(obj))
                vars(result).update(vars(obj))
                vars(result).update(changed)
            elif kind == "key":
                result = copy.copy(obj)
                result.update(changed)
            else:
                values = [changed.get(i, v) for i, v in items]
                result = type(obj)(values)
        done[id(obj)] = result
        return result

    return walk(model, []), arrays, entries


def write_array_member(zf, member, array) -> None:
    """``array`` as an uncompressed ``.npy`` member whose data is aligned."""
    header = _io.BytesIO()
    np.lib.format.write_array_header_2_0(
        header, np.lib.format.header_data_from_array_1_0(array)
    )
    # the size decides zip64 (and so the local header's length) only; numpy
    # may write a header of format 1.0, 2 bytes shorter
    size = len(header.getvalue()) + array.nbytes
    zip64 = size * 1.05 > zipfile.ZIP64_LIMIT
    info = zipfile.ZipInfo(member, date_time=time.localtime()[:6])
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = size
    start = getattr(zf, "start_dir", None)
    if start is not None:  # pad the local header: data at a multiple of _ALIGN
        name = len(member.encode("utf-8"))
        base = start + 30 + name + 6 + (20 if zip64 else 0)
        pad = -base % _ALIGN
        info.extra = struct.pack("<HHH", _PAD_EXTRA_ID, 2 + pad, _ALIGN) + bytes(pad)
    with zf.open(info, "w", force_zip64=zip64) as fh:
        np.lib.format.write_array(fh, array, allow_pickle=False)


def _array_error(path, entry, why) -> ValueError:
    member = entry.get("member") if isinstance(entry, dict) else None
    return _damaged(path, f"array member {member!r}: {why}")


def _check_entry(path, entry) -> None:
    ok = (
        isinstance(entry, dict)
        and isinstance(entry.get("member"), str)
        and entry["member"].startswith(ARRAY_MEMBERS)
        and isinstance(entry.get("dtype"), str)
        and isinstance(entry.get("shape"), list)
        and all(type(n) is int and n >= 0 for n in entry["shape"])
        and isinstance(entry.get("path"), list)
        and all(
            isinstance(step, list)
            and len(step) == 2
            and (
                (step[0] in ("attr", "key") and isinstance(step[1], str))
                or (step[0] == "index" and type(step[1]) is int)
            )
            for step in entry["path"]
        )
    )
    if not ok:
        raise _array_error(path, entry, f"malformed entry in {HEADER_MEMBER}")


def _read_array_member(path, zf, fh, entry, mmap_mode):
    """The array of one header entry: mapped (``mmap_mode="r"``) or read.

    Checks, before anything is mapped or read: the member exists, is stored
    uncompressed and unencrypted, its local header names it, it holds a
    ``.npy`` (format 1.0 or 2.0) of a plain numeric dtype whose data fills
    the member exactly, and dtype and shape are those of the header entry.
    """
    member = entry["member"]
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise _array_error(path, entry, "no such member") from None
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        raise _array_error(path, entry, "compressed or encrypted")
    fh.seek(info.header_offset)
    local = fh.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise _array_error(path, entry, "no local header at its offset")
    n_name, n_extra = struct.unpack("<HH", local[26:30])
    if fh.read(n_name) != info.orig_filename.encode("utf-8"):
        raise _array_error(path, entry, "its local header names another member")
    start = info.header_offset + 30 + n_name + n_extra
    fh.seek(start)
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f".npy format {version} is not read here")
    except (ValueError, SyntaxError, TypeError, OSError) as exc:
        raise _array_error(path, entry, f"not a .npy array ({exc})") from None
    if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None:
        raise _array_error(path, entry, f"dtype {dtype} is not a plain numeric one")
    if dtype.str != entry["dtype"] or list(shape) != entry["shape"]:
        raise _array_error(
            path,
            entry,
            f"holds {dtype.str} {list(shape)}, {HEADER_MEMBER} says "
            f"{entry['dtype']} {entry['shape']}",
        )
    offset = fh.tell()
    nbytes = math.prod(shape) * dtype.itemsize
    if offset - start + nbytes != info.file_size:
        raise _array_error(path, entry, "its data does not fill the member")
    if mmap_mode is None or nbytes == 0:
        with zf.open(info) as data:  # checked as above: no pickle, no object
            return np.lib.format.read_array(data, allow_pickle=False)
    return np.memmap(
        os.fspath(path),
        dtype=dtype,
        mode="r",
        offset=offset,
        shape=shape,
        order="F" if fortran else "C",
    )


def _put_array(path, obj, steps, array, entry):
    """``obj`` with the placeholder at ``steps`` replaced by ``array``."""
    if not steps:
        if not (isinstance(obj, str) and obj == _PLACEHOLDER + entry["member"]):
            raise _array_error(path, entry, "its path does not lead to its placeholder")
        return array
    kind, key = steps[0]
    found = (
        (kind == "attr" and isinstance(obj, BaseEstimator) and key in vars(obj))
        or (kind == "key" and isinstance(obj, dict) and key in obj)
        or (kind == "index" and type(obj) in (list, tuple) and 0 <= key < len(obj))
    )
    if not found:
        raise _array_error(path, entry, f"its path fails at {kind} {key!r}")
    child = vars(obj)[key] if kind == "attr" else obj[key]
    new = _put_array(path, child, steps[1:], array, entry)
    if new is child:
        return obj
    if kind == "attr":
        vars(obj)[key] = new
    elif isinstance(obj, tuple):
        return (*obj[:key], new, *obj[key + 1 :])
    else:
        obj[key] = new
    return obj


def restore_arrays(path, model, entries, mmap_mode):
    """Put the array members of a format-3 file back in place of their
    placeholders (mapped or read)."""
    if not isinstance(entries, list):
        raise _damaged(path, f"malformed 'arrays' in {HEADER_MEMBER}")
    for entry in entries:
        _check_entry(path, entry)
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
            for entry in entries:
                member = entry["member"]
                if member not in arrays:
                    arrays[member] = _read_array_member(path, zf, fh, entry, mmap_mode)
                model = _put_array(path, model, entry["path"], arrays[member], entry)
    except zipfile.BadZipFile as exc:
        raise _damaged(path, f"not a complete zip file: {exc}") from exc
    return model
