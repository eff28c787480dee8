"""The bytes of model files: atomic writes, the checksum and the header of a safetensors file.

Imports nothing of the package (the command line and the NLB submissions write through
:func:`write_atomic` and :func:`write_h5_atomic` too).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

import numpy as np

#: ``format`` entry of the header metadata of every model file
FORMAT = "sklearn_blend"
#: the largest header read (safetensors' own limit)
MAX_HEADER_BYTES = 100_000_000


def write_atomic(path, write):
    """Call ``write(tmp)`` with a new temporary path beside ``path``, then rename it to ``path``.

    The temporary file is created (exclusively) with the permissions a plain ``open`` gives,
    the process's umask applied; once ``write`` returns it is flushed to disk (``fsync``) and
    renamed over ``path``. A failure (an exception, a full disk) removes it and leaves
    ``path`` as it was, never half-written.

    Examples
    --------
    >>> import os, tempfile
    >>> from pathlib import Path
    >>> from sklearn_blend.persistence import write_atomic
    >>> def fail(tmp):
    ...     Path(tmp).write_text("half")
    ...     raise RuntimeError("disk full")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "notes.txt")
    ...     write_atomic(path, lambda tmp: Path(tmp).write_text("complete"))
    ...     try:
    ...         write_atomic(path, fail)  # fails: the file keeps its content
    ...     except RuntimeError:
    ...         pass
    ...     print(Path(path).read_text(), os.listdir(folder))
    complete ['notes.txt']
    """
    path = Path(path)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}{path.suffix}")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            mode = os.stat(tmp).st_mode & 0o777  # what a plain open gives, umask applied
            break
        except FileExistsError:
            continue
        except OSError as error:  # a missing or read-only folder: say the user's path
            raise OSError(error.errno, f"cannot write {os.fspath(path)!r} "
                                       f"({error.strerror or error})", os.fspath(path)) from None
    else:
        raise FileExistsError(f"could not create a temporary file beside {os.fspath(path)!r}")
    try:
        write(os.fspath(tmp))
        # a writer that replaces the file (safetensors' own writer does) leaves its own mode
        if os.stat(tmp).st_mode & 0o777 != mode:
            os.chmod(tmp, mode)
        handle = os.open(tmp, os.O_RDWR | getattr(os, "O_BINARY", 0))
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
        os.replace(tmp, path)
    except OSError as error:  # a full disk while writing: say the user's path, keep errno
        tmp.unlink(missing_ok=True)
        if os.fspath(path) in str(error):
            raise
        raise OSError(error.errno, f"cannot write {os.fspath(path)!r} "
                                   f"({error.strerror or error})", os.fspath(path)) from error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_h5_atomic(path, fill):
    """Write an HDF5 file: ``fill(f)`` fills an ``h5py.File`` made in memory, whose bytes are
    then written atomically (:func:`write_atomic`). HDF5 never touches the disk itself, so a
    full disk is a plain ``OSError`` of the write, never a file HDF5 left open (which crashed
    the interpreter at exit)."""
    import io

    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        fill(file)
    data = buffer.getvalue()
    write_atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def contiguous(array):
    """``array`` C-contiguous, of any dimension (``np.ascontiguousarray`` makes 0-d 1-d)."""
    array = np.asarray(array)
    return array if array.flags.c_contiguous else array.copy(order="C")


def checksum(fields, tensors):
    """SHA-256 over the header fields (JSON) and every tensor (name, dtype, shape, bytes)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(fields, sort_keys=True).encode())
    for name in sorted(tensors):
        array = contiguous(tensors[name])
        digest.update(json.dumps([name, array.dtype.name, list(array.shape)]).encode())
        digest.update(array.reshape(-1).view(np.uint8).data)
    return digest.hexdigest()


def not_a_model_file(path, data, reason):
    if data[:1] == b"\x80" or data[:2] in (b"x\x9c", b"x\x01", b"x\xda"):
        hint = (" It looks like a pickle (a joblib.dump or pickle file): sklearn_blend.load "
                "reads only the safe format that save writes, because loading a pickle runs "
                "code. If you trust its source, load it with joblib.load.")
    elif data[:2] == b"PK":
        hint = " It looks like a zip archive (torch.save writes those)."
    else:
        hint = ""
    return ValueError(f"{os.fspath(path)!r} is not a valid sklearn_blend model file: "
                      f"{reason}.{hint}")


def read_model_bytes(path):
    """The bytes of the model file ``path``: a regular file only (never a device, a FIFO or a
    folder, which could block or never end), and its header's declared size checked against
    :data:`MAX_HEADER_BYTES` and the file's size before the file is read."""
    import stat

    try:
        info = os.stat(path)
    except OSError as error:
        raise OSError(error.errno, f"cannot read the model file {os.fspath(path)!r} "
                                   f"({error.strerror or error})", os.fspath(path)) from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{os.fspath(path)!r} is not a regular file (a folder, a device or a "
                         "pipe); a model file is one file that save wrote.")
    with open(path, "rb") as file:
        head = file.read(8)
        if len(head) == 8:
            size = int.from_bytes(head, "little")
            if size > min(info.st_size - 8, MAX_HEADER_BYTES):
                raise not_a_model_file(path, head, "its header is cut off or not a "
                                                   "safetensors header (truncated or another "
                                                   "kind of file)")
        return head + file.read()


def read_header(path, data):
    """The header metadata of a safetensors file (validated as ours)."""
    if len(data) < 8:
        raise not_a_model_file(path, data, "the file is too short (truncated?)")
    size = int.from_bytes(data[:8], "little")
    if size > min(len(data) - 8, MAX_HEADER_BYTES):
        raise not_a_model_file(path, data, "its header is cut off or not a safetensors "
                                            "header (truncated or another kind of file)")
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise not_a_model_file(path, data, "its header is not valid (a damaged file, or "
                                            "another kind of file)") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise not_a_model_file(path, data, "it is not a model written by sklearn_blend.save "
                                            "(its header has no sklearn_blend metadata)")
    if not all(isinstance(v, str) for v in metadata.values()):
        raise not_a_model_file(path, data, "its metadata is damaged")
    return metadata
