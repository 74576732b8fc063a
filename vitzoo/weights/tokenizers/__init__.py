"""Text to token ids as each checkpoint's own tokenizer makes them, id for id, from the checkpoint's own files.

The interface the text towers call::

    load_tokenizer(source: Source | str, *, kind: str | None = None) -> Tokenizer
    tokenizer(texts: str | Sequence[str]) -> torch.LongTensor        # (N, context_length)
    tokenizer.context_length: int   # 77 for CLIP, 64 for SigLIP (the source's own)
    tokenizer.pad_id: int           # what rows are padded with (0, 49407, SigLIP's 1 or Gemma's 0)
    tokenizer.eot_id: int | None    # the id every sequence ends with (CLIP's <|endoftext|> 49407, pooled at)
    tokenizer.name: str             # what it was read from: "<repo or folder>: <file>"
    tokenizer.kind: str             # "openai", "open_clip" or "transformers"
    tokenizer.vocab_size: int       # rows the token embedding needs
    tokenizer.padding_side: str     # "right" (CLIP, SigLIP), or what the repo's tokenizer_config.json says

``kind`` and what each reads: ``load.py``. Each tokenizer reproduces a peer library run on the same files:

===========================================  ==================================================  =============
source                                       reproduces                                          module
===========================================  ==================================================  =============
OpenAI CLIP (timm ``*_clip_*`` tags, repos   open_clip ``SimpleTokenizer`` (ftfy, lower-case,    ``clip.py``
without tokenizer files), open_clip repos    BPE, pad 0)
without ``hf_tokenizer_name``
transformers CLIP / SigLIP 2 repos, open     transformers 5 ``AutoTokenizer`` (``tokenizers``    ``hf.py``
_clip SigLIP repos (``HFTokenizer``)         library; open_clip's ``clean`` first)
google/siglip-* (``spiece.model``)           transformers ``SiglipTokenizer`` (sentencepiece)     ``siglip.py``
===========================================  ==================================================  =============
"""

from .base import Tokenizer
from .load import KINDS, load_tokenizer

__all__ = ["KINDS", "Tokenizer", "load_tokenizer"]
