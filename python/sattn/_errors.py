"""sattn's exceptions: one class per kind of error, mirroring the tools' exit codes (DESIGN §7).

Every exception the package raises for a problem sattn detects is a ``sattn.Error``; its
subclass says what went wrong, and ``exit_code`` is the code a sattn tool would exit with.
Messages are the library's own (the same text ``sattn-select`` or ``sattn run`` prints), with
``file:line:col`` where the problem is in a file.

=====================  =========  =========================================================
class                  exit code  raised for
=====================  =========  =========================================================
``RuntimeFailure``     1          runtime or I/O failures (a file that cannot be read, ...)
``Usage``              2          a bad argument value (unknown option value, ...)
``InvalidInput``       3          bad input: parse, schema or range errors, wrong dtype,
                                  rank, shape or heads, unknown pattern
``ExternalToolFailed`` 4          what sattn needs is missing (CUDA not built, no GPU, ...)
``CheckFailed``        5          an output outside the tolerance of the reference
=====================  =========  =========================================================

``Usage`` and ``InvalidInput`` are also ``ValueError``s, and ``RuntimeFailure`` a
``RuntimeError``, so code that catches the built-in exceptions keeps working.
"""


class Error(Exception):
    """Base class of every sattn error.

    Attributes: ``message`` (the text without location), ``location`` (``file:line:col`` or
    ``""``), ``exit_code`` (what a sattn tool exits with for this kind of error).
    """

    exit_code = 1

    def __init__(self, text, message=None, location=""):
        super().__init__(text)
        self.message = text if message is None else message
        self.location = location


class RuntimeFailure(Error, RuntimeError):
    """A runtime or I/O failure (exit code 1)."""

    exit_code = 1


class Usage(Error, ValueError):
    """A bad argument value (exit code 2)."""

    exit_code = 2


class InvalidInput(Error, ValueError):
    """Invalid input: parse, schema or range error; wrong dtype, rank or shape (exit code 3)."""

    exit_code = 3


class ExternalToolFailed(Error):
    """Something sattn needs is missing or failed: CUDA not built, no GPU, ... (exit code 4)."""

    exit_code = 4


class CheckFailed(Error):
    """An output outside the tolerance of the reference (exit code 5)."""

    exit_code = 5


class CopyWarning(UserWarning):
    """Issued when an input had to be copied: a non-contiguous array or tensor, or bf16 tensors
    (converted to float32). Contiguous float32 inputs are never copied."""


__all__ = ["Error", "RuntimeFailure", "Usage", "InvalidInput", "ExternalToolFailed", "CheckFailed", "CopyWarning"]
