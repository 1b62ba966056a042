"""A real tokenizer that works offline: a word-level ``tokenizers`` model over a fixed vocabulary.

The tiny VLA cannot download a tokenizer, so it builds one: NFKC + lower-casing, split on
whitespace and punctuation, digits one by one, then a fixed word list (``vocabulary.py``); a word
outside it becomes ``<unk>``. It is wrapped as a ``transformers`` fast tokenizer, saved with the
checkpoint (``tokenizer.json`` + ``tokenizer_config.json``) and loaded back with ``AutoTokenizer``.
A real checkpoint directory with its own tokenizer loads that one instead (``load_tokenizer``).
"""

from __future__ import annotations

from pathlib import Path

from policies.vla.vocabulary import ADDED_WORDS, DIGITS, PUNCTUATION, ROBOT_WORDS

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
# The image-block tokens of the SmolVLM / Idefics3 prompt format (``<fake_token_around_image>``
# brackets each image, ``<global-img>`` marks the whole-image view, ``<image>`` is one visual token).
IMAGE_TOKEN = "<image>"
IMAGE_BOUNDARY_TOKEN = "<fake_token_around_image>"
GLOBAL_IMAGE_TOKEN = "<global-img>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, EOS, IMAGE_TOKEN, IMAGE_BOUNDARY_TOKEN, GLOBAL_IMAGE_TOKEN)
VOCABULARY: tuple[str, ...] = (*SPECIAL_TOKENS, *ROBOT_WORDS, *DIGITS, *PUNCTUATION, *ADDED_WORDS)
TOKEN_IDS: dict[str, int] = {t: i for i, t in enumerate(VOCABULARY)}
MAX_LENGTH = 256

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


class TokenizerError(ValueError):
    """A tokenizer is missing from a checkpoint directory or does not fit its model."""


def build_tokenizer():
    """The offline word-level tokenizer over ``VOCABULARY`` as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if len(TOKEN_IDS) != len(VOCABULARY):
        raise RuntimeError("policies.vla.vocabulary has a word twice; token ids would be ambiguous")
    core = Tokenizer(models.WordLevel(dict(TOKEN_IDS), unk_token=UNK))
    core.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    core.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, unk_token=UNK, bos_token=BOS, eos_token=EOS,
        model_max_length=MAX_LENGTH, padding_side="right",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
    )


def has_tokenizer(path: str | Path) -> bool:
    return any((Path(path) / name).is_file() for name in _TOKENIZER_FILES)


def load_tokenizer(path: str | Path):
    """The tokenizer saved in ``path`` (ours or a real checkpoint's), loaded offline."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not has_tokenizer(path):
        raise TokenizerError(f"{path}: no tokenizer files (expected one of {list(_TOKENIZER_FILES)})")
    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as e:  # transformers raises OSError, ValueError, JSONDecodeError...
        raise TokenizerError(f"{path}: cannot load the tokenizer: {type(e).__name__}: {e}") from e
