"""The files a command reads and writes, checked before any work starts.

Inputs (traces, recordings, raw dumps) must be regular files, or for a raw
dump a block device: a trace is read more than once and seeked in, and a
pipe or a character device (a FIFO with no writer, /dev/zero) would hang
or never end.  Outputs (--plot, --csv, -o)
are checked when the options are read, so a run never finishes only to
find it cannot keep its result: the folder exists and is writable, the
name fits the filesystem, and an existing path is a regular file; a device
node, FIFO or socket is refused rather than replaced (as root, renaming
over /dev/full would destroy the machine's /dev/full).

Every output is written whole or not at all: ReplacingFile writes to a
short temporary name in the output's folder (short, so a legal 255-byte
name still leaves room) and renames it over the path on success only,
checking again just before the rename that the path is still no special
file; on any error, signals included, the temporary file is removed.
"""

import os
import secrets
import stat

from .errors import UserError

TEMPORARY_PREFIX = ".zsw"
TEMPORARY_SUFFIX = ".tmp"

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_input(path, what="input", block_device=False):
    """Return `path` if it names a regular file (or, with `block_device`,
    a block device: a raw dump may be a swap partition) that can be read;
    else raise a one-line UserError saying what it is instead."""
    path = os.fspath(path)
    try:
        status = os.stat(path)
    except OSError as error:
        raise UserError(f"{what} {path}: {error.strerror}") from None
    if stat.S_ISDIR(status.st_mode):
        raise UserError(f"{what} {path}: is a directory")
    if not (stat.S_ISREG(status.st_mode) or block_device and stat.S_ISBLK(status.st_mode)):
        raise UserError(f"{what} {path}: is {_kind(status, path)}, not a regular file; "
                        "an input must have an end and be read more than once: "
                        "save it to a file first")
    if not os.access(path, os.R_OK):
        raise UserError(f"{what} {path}: permission denied")
    return path


def check_output(path, what="output", suffix=None):
    """Return `path` if a ReplacingFile can later be committed there; else
    raise a one-line UserError.  `suffix` (".png") is the ending required."""
    path = os.fspath(path)
    if not path:
        raise UserError(f"{what}: the path is empty")
    if suffix is not None and not path.lower().endswith(suffix):
        raise UserError(f"{what} {path}: the name must end in {suffix}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UserError(f"{what} {path}: folder {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path}: folder {directory} is not writable")
    name_max = os.pathconf(directory, "PC_NAME_MAX")
    if len(os.fsencode(os.path.basename(path))) > name_max:
        raise UserError(f"{what} {path}: the name is longer than the filesystem's "
                        f"{name_max} bytes")
    _refuse_special(path, what)
    return path


class ReplacingFile:
    """A file written under a temporary name beside `path` and renamed onto
    it by commit(); discard() (or leaving the `with` block by an exception)
    removes it.  `file` is the open file object."""

    def __init__(self, path, mode="wb", what="output", **open_options):
        self.path = os.fspath(path)
        self.what = what
        directory = os.path.dirname(os.path.abspath(self.path))
        while True:
            self.partial = os.path.join(directory, TEMPORARY_PREFIX + secrets.token_hex(4)
                                        + TEMPORARY_SUFFIX)
            try:
                descriptor = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                break
            except FileExistsError:
                continue
        self.file = os.fdopen(descriptor, mode, **open_options)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.discard()

    def commit(self):
        """Move the finished file into place, unless the path has meanwhile
        become a special file (then the temporary file is removed)."""
        try:
            self.file.close()
            _refuse_special(self.path, self.what)
            os.replace(self.partial, self.path)
        except BaseException:
            self.discard()
            raise

    def discard(self):
        self.file.close()
        try:
            os.unlink(self.partial)
        except FileNotFoundError:
            pass


def _refuse_special(path, what):
    """Refuse an existing `path` that is not a regular file."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as error:
        raise UserError(f"{what} {path}: {error.strerror}") from None
    if stat.S_ISDIR(status.st_mode):
        raise UserError(f"{what} {path}: is a directory")
    if not stat.S_ISREG(status.st_mode):
        raise UserError(f"{what} {path}: is {_kind(status, path)}, not a regular file; "
                        "refusing to replace it")


def _kind(status, path):
    for test, kind in _KINDS:
        if test(status.st_mode):
            if kind.startswith("a FIFO") and path.startswith(("/dev/fd/", "/proc/self/fd/")):
                return "a pipe (as <(...) gives)"
            return kind
    return "a special file"
