"""The one exception family of mm: one subclass per condition a caller must handle."""


class MMError(Exception):
    """Base of every error mm raises on purpose."""


class ConfigError(MMError):
    """A config file is missing, malformed, or has an unknown key or a bad value."""


class IllegalTransitionError(MMError):
    """A lifecycle or order state machine was asked for a move its table does not list."""


class OffGridError(MMError):
    """A venue price or quantity does not sit on the instrument's tick or lot grid."""


class StaleReadError(MMError):
    """A seqlock reader found no stable snapshot within its retry budget."""


class LayoutMismatchError(MMError):
    """A shared-memory segment's header does not match the layout the reader expects."""


class SegmentNotReadyError(LayoutMismatchError):
    """A shared-memory segment exists but its writer has not finished its header yet (magic 0):
    a reader attaching while the writer starts tries again later."""


class OverrunError(MMError):
    """A ring-buffer reader was lapped by the writer: records were overwritten before it read them."""


class JournalFormatError(MMError):
    """A file opened as a journal does not start with the journal header (wrong file or version)."""


class KeyFileError(MMError):
    """An encrypted key file cannot be read: missing, malformed, or of an unknown format."""


class WrongPassphraseError(KeyFileError):
    """The passphrase does not open the key file."""


class KeyFileTamperedError(KeyFileError):
    """The key file's ciphertext or header fails authentication: it was altered after it was written."""


class CaptureFormatError(MMError):
    """A capture file is of no format mm reads, or holds no row of a usable kind."""
