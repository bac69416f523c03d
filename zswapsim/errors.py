"""Errors of two kinds: the kernel's errno results, raised by the models where
the kernel returns -Exxx, and mistakes a user can make (bad trace, bad option),
which the CLI turns into one line on stderr and a non-zero exit."""

import errno


class ZswapsimError(Exception):
    """Base of every error zswapsim raises on purpose."""


class KernelError(ZswapsimError):
    """A kernel call failed with -errno; `errno` holds the positive value."""

    errno = 0

    def __init__(self, message=""):
        super().__init__(message or f"-{errno.errorcode[self.errno]}")


class NoSpace(KernelError):
    errno = errno.ENOSPC


class NoMemory(KernelError):
    errno = errno.ENOMEM


class Invalid(KernelError):
    errno = errno.EINVAL


class WriteError(KernelError):
    """A device write failed (-EIO)."""
    errno = errno.EIO


class PoolCorrupted(ZswapsimError):
    """An allocator's self-audit (its check()) found its own state
    inconsistent: a simulator bug, never the user's.  The message names the
    pool, the page and what is wrong there."""


class UserError(ZswapsimError):
    """Something the user gave us is wrong; the message is the whole story."""

    exit_status = 2                     # what the command line exits with


class CommandFailed(UserError):
    """The command `trace record` started failed before it could be
    recorded; the command line exits with the command's own status."""

    def __init__(self, message, exit_status):
        super().__init__(message)
        self.exit_status = exit_status


class ConfigError(UserError):
    """An option is unknown or out of range."""


class FidelityError(UserError):
    """A fidelity folder's data (a NAME.kernel.json or the page file it
    names) is unreadable, too big, or not laid out as documented."""


class TraceError(UserError):
    """A trace file is malformed; `offset` is the byte offset of the problem."""

    def __init__(self, message, offset=None):
        self.offset = offset
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{message}{where}")


class WorkerLost(ZswapsimError):
    """A worker process of a parallel sweep died (killed by a signal, as the
    out-of-memory killer does); the sweep was abandoned."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: raised like KeyboardInterrupt, so every
    `finally` runs (outputs discarded, processes continued or ended)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum
