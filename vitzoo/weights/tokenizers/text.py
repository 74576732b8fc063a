"""open_clip's text cleaning before tokenizing (``open_clip.tokenizer``: ``basic_clean``, ``whitespace_clean``,
``canonicalize_text`` and the ``clean=`` choices of its tokenizers), character for character."""

from __future__ import annotations

import html
import string
from collections.abc import Callable

from ...errors import CheckpointError, VitzooError

CLEANS = ("lower", "whitespace", "canonicalize")  # open_clip's clean= values
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def basic_clean(text: str) -> str:
    """``ftfy.fix_text`` (mojibake, HTML in plain text, control characters, NFC), then HTML entities unescaped twice,
    then stripped: open_clip's ``basic_clean``.

    Printable ASCII without ``&`` is returned as it is without calling ftfy (a fifth of CLIP's tokenizing time on
    captions): every fix ftfy makes needs a character outside it (non-ASCII, a control character, ``&`` of an
    entity), and so does ``html.unescape``.
    """
    if not (text.isascii() and text.isprintable() and "&" not in text):
        try:
            import ftfy
        except ImportError as err:
            raise VitzooError("open_clip's text cleaning needs ftfy: pip install 'vitzoo[text]'") from err
        text = html.unescape(html.unescape(ftfy.fix_text(text)))
    return text.strip()


def collapse_whitespace(text: str) -> str:
    """Runs of whitespace to one space, none at the ends (open_clip's ``whitespace_clean``)."""
    return " ".join(text.split())


def canonicalize(text: str) -> str:
    """big_vision's ``canonicalize_text`` as open_clip has it: ``_`` to a space, ASCII punctuation removed,
    lower-cased, whitespace collapsed."""
    return collapse_whitespace(text.replace("_", " ").translate(_PUNCTUATION).lower())


def clean_fn(clean: str) -> Callable[[str], str]:
    """open_clip's ``get_clean_fn(clean)``: the cleaning its tokenizers apply before tokenizing."""
    if clean == "lower":
        return lambda text: collapse_whitespace(basic_clean(text)).lower()
    if clean == "whitespace":
        return lambda text: collapse_whitespace(basic_clean(text))
    if clean == "canonicalize":
        return lambda text: canonicalize(basic_clean(text))
    raise CheckpointError(f"open_clip tokenizer_kwargs clean={clean!r} is unknown; open_clip has {', '.join(CLEANS)}")
