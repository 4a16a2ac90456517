"""datatrove's English word tokenizer (spaCy's blank English model), twice as fast, same tokens.

datatrove tokenizes each document inside spaCy's `memory_zone()`, which forgets every word the
vocabulary had not seen before, so each document re-creates most of its lexemes: that is where
the filters spend their time. Here the vocabulary keeps what it has seen and is rebuilt from
scratch when it passes `max_lexemes` (bounded memory). spaCy's tokens do not depend on what the
vocabulary holds, so the words, and every filter decision, are unchanged: the tests compare the
token lists with datatrove's own tokenizer, and `bench/curate_vs_datatrove.py` compares every
decision with datatrove's unmodified pipeline.
"""

from __future__ import annotations

from datatrove.utils.word_tokenizers import SpaCyTokenizer

DEFAULT_MAX_LEXEMES = 200_000


class KeepVocabTokenizer(SpaCyTokenizer):
    """`SpaCyTokenizer("en")` whose word tokenization keeps its vocabulary between documents."""

    def __init__(self, language: str = "en", max_lexemes: int = DEFAULT_MAX_LEXEMES) -> None:
        super().__init__(language)
        self.max_lexemes = max_lexemes
        self.resets = 0

    def word_tokenize(self, text: str) -> list[str]:
        """The same tokens as datatrove's: spaCy's tokens, stripped, empty ones dropped."""
        from spacy.attrs import IDX, LENGTH

        nlp = self.tokenizer
        if len(nlp.vocab) > self.max_lexemes:
            self._tokenizer = None  # a fresh blank model: the vocabulary starts again
            self.resets += 1
            nlp = self.tokenizer
        nlp.max_length = len(text) + 10
        try:
            spans = nlp.make_doc(text).to_array([IDX, LENGTH]).tolist()
        except Exception:
            if "IS_ALPHA" not in text:  # the one string datatrove knows breaks spaCy; it drops it and retries
                raise
            text = text.replace("IS_ALPHA", "")
            spans = nlp.make_doc(text).to_array([IDX, LENGTH]).tolist()
        return [piece for piece in (text[start:start + length].strip() for start, length in spans) if piece]
