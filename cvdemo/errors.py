"""Typed errors a user can cause. Each has a stable `code` (for translation in the UI) and a
message a user can act on; `params` hold the numbers that the message quotes."""
from __future__ import annotations


class CvdemoError(Exception):
    """Base of every error a user can cause; the UI shows `str(err)` (or translates `code`)."""

    code = "error"

    def __init__(self, message: str, code: str | None = None, **params: object) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.params = params


class ImageError(CvdemoError, ValueError):
    """An image or file that the image door refuses (empty, too big, corrupt, not an image...)."""

    code = "image.invalid"


class ModelError(CvdemoError, ValueError):
    """A model that can't be built or loaded (unknown name, offline, bad checkpoint)."""

    code = "model.invalid"


class LimitError(CvdemoError, ValueError):
    """A parameter outside what the app allows (too many images, epochs, top-k...)."""

    code = "limit.exceeded"


class Note(str):
    """A message that is not an error (a file skipped, a setting lowered): the English text itself, plus
    a stable `code` and the `params` it quotes, so the UI can say it in another language."""

    code: str
    params: dict

    def __new__(cls, message: str, code: str, **params: object) -> Note:
        note = super().__new__(cls, message)
        note.code, note.params = code, params
        return note

    def __getnewargs_ex__(self):  # copy and pickle rebuild it whole (gr.State copies what it holds)
        return (str(self), self.code), self.params
