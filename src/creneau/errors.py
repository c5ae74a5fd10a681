"""The domain error every app's own error type derives from, mapped to HTTP in one place."""

from collections.abc import Callable


class DomainError(Exception):
    """A refusal a caller can understand: a stable snake_case ``code`` and a human message."""

    status = 400
    # Set on a refusal the transparency ledger records (an out-of-perimeter attempt): what was
    # asked, by which channel. Appended by the outermost layer, after the refused transaction
    # has rolled back (creneau.ledger.services.refusal_append).
    refusal: dict | None = None
    # What the refusal taught that must outlive the rollback (a remote agenda said the slot is
    # taken: it leaves search here). Run by the same outermost layer, just before the entry.
    aftermath: Callable[[], object] | None = None

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = str(message)
        if status is not None:
            self.status = status

    def details(self) -> dict[str, object]:
        """More machine-readable fields for the JSON answer (none by default)."""
        return {}
