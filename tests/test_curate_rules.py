"""Every heuristic rule at its boundary: a crafted document on each side of the published threshold.

Each document is built so that its statistic can be counted by hand (distinct letter-only words,
single spaces, standalone symbols); the comment next to it gives that count, which is the
independent reference. Each check runs alone (the rule's other checks switched off through the
same `--set` table the CLI uses), so the reason named is the one under test.
"""

from __future__ import annotations

import inspect

import pytest

from beyondscale.errors import UserError
from beyondscale.lab.curate import rules


def word(i: int, length: int = 5) -> str:
    """A distinct letter-only word ('q' + base-26 digits), never a stop word."""
    letters = ""
    while i or not letters:
        i, r = divmod(i, 26)
        letters = chr(97 + r) + letters
    return ("q" + letters.rjust(length - 1, "a"))[:length] if length > 1 else "q"


def words(n: int, length: int = 5, start: int = 0) -> list[str]:
    return [word(start + i, length) for i in range(n)]


def decide(rule: str, text: str, only: str | None = None, **values: object) -> str | None:
    """The reason `rule` removes `text` for (None: kept), with just `only` switched on if given."""
    settings = {k: v for k, v in values.items()}
    if only is not None:
        for name, param in rules.RULES[rule].params.items():
            if name != only and param.optional:
                settings.setdefault(name, "none")
    overrides = rules.parse_overrides([f"{rule}.{k}={v}" for k, v in settings.items()], [rule])
    filters = rules.build_filters(rules.resolved([rule], overrides))
    _, removed_by, reason = rules.apply_filters(text, "doc", filters)
    assert removed_by in (None, rule)
    return reason


def test_table_defaults_are_datatroves_published_defaults():
    """Our one table must hold exactly the constructor defaults of datatrove's filters (FineWeb's)."""
    for name, spec in rules.RULES.items():
        module, _, cls = spec.cls_path.partition(":")
        signature = inspect.signature(getattr(__import__(module, fromlist=[cls]), cls).__init__)
        kwargs = rules._kwargs(name, {p: v.default for p, v in spec.params.items()})
        for key, value in kwargs.items():
            expected = signature.parameters[key].default
            if name == "c4" and key == "filter_no_terminal_punct":
                assert expected is True and value is False  # FineWeb runs C4 without it
            else:
                assert value == expected, (name, key)


# --- Gopher quality (Rae et al. 2021, A.1.1) -----------------------------------------------------

STOP = ["the", "of"]


def test_gopher_min_doc_words():
    assert decide("gopher_quality", " ".join(words(50)), only="min_doc_words") is None  # 50 words
    assert decide("gopher_quality", " ".join(words(49)), only="min_doc_words") == "gopher_short_doc"  # 49


def test_gopher_max_doc_words():
    assert decide("gopher_quality", " ".join(words(60)), only="max_doc_words", max_doc_words=60) is None
    assert decide("gopher_quality", " ".join(words(61)), only="max_doc_words",
                  max_doc_words=60) == "gopher_long_doc"


def test_gopher_min_avg_word_length():
    keep = words(50, length=3)  # mean 3.0
    drop = words(49, length=3) + ["qa"]  # mean (147 + 2) / 50 = 2.98
    assert decide("gopher_quality", " ".join(keep), only="min_avg_word_length") is None
    assert decide("gopher_quality", " ".join(drop), only="min_avg_word_length") == "gopher_below_avg_threshold"


def test_gopher_max_avg_word_length():
    keep = words(50, length=10)  # mean 10.0
    drop = words(49, length=10) + [word(99, 11)]  # mean 501 / 50 = 10.02
    assert decide("gopher_quality", " ".join(keep), only="max_avg_word_length") is None
    assert decide("gopher_quality", " ".join(drop), only="max_avg_word_length") == "gopher_above_avg_threshold"


def test_gopher_hash_ratio():
    keep = " ".join(words(90) + ["#"] * 10)  # 10 '#' / 100 words = 0.10
    drop = " ".join(words(90) + ["#"] * 11)  # 11 / 101 = 0.109
    assert decide("gopher_quality", keep, only="max_symbol_word_ratio") is None
    assert decide("gopher_quality", drop, only="max_symbol_word_ratio") == "gopher_too_many_hashes"


def test_gopher_ellipsis_ratio():
    keep = " ".join(["..."] * 10 + words(90))  # 10 ellipses / 100 words; the line ends with a word
    drop = " ".join(["..."] * 11 + words(90))  # 11 / 101
    assert decide("gopher_quality", keep, only="max_symbol_word_ratio") is None
    assert decide("gopher_quality", drop, only="max_symbol_word_ratio") == "gopher_too_many_ellipsis"


def _lines(n: int, prefix: str = "", suffix: str = "") -> list[str]:
    return [prefix + " ".join(words(5, start=5 * i)) + suffix for i in range(n)]


def test_gopher_bullet_lines():
    keep = "\n".join(_lines(9, "- ") + _lines(1))  # 9 of 10 lines = 0.9
    drop = "\n".join(_lines(19, "• ") + _lines(1))  # 0.95 > 0.9
    assert decide("gopher_quality", keep, only="max_bullet_lines_ratio") is None
    assert decide("gopher_quality", drop, only="max_bullet_lines_ratio") == "gopher_too_many_bullets"


def test_gopher_end_ellipsis_lines():
    keep = "\n".join(_lines(3, suffix=" ...") + _lines(7))  # 3 of 10 lines = 0.3
    drop = "\n".join(_lines(4, suffix="…") + _lines(6))  # 0.4
    assert decide("gopher_quality", keep, only="max_ellipsis_lines_ratio") is None
    assert decide("gopher_quality", drop, only="max_ellipsis_lines_ratio") == "gopher_too_many_end_ellipsis"


def test_gopher_alpha_words():
    keep = " ".join(words(80) + ["123"] * 20)  # 80 of 100 words have a letter = 0.8
    drop = " ".join(words(80) + ["123"] * 21)  # 80 / 101
    assert decide("gopher_quality", keep, only="max_non_alpha_words_ratio") is None
    assert decide("gopher_quality", drop, only="max_non_alpha_words_ratio") == "gopher_below_alpha_threshold"


def test_gopher_stop_words():
    assert decide("gopher_quality", " ".join(words(60) + STOP), only="min_stop_words") is None  # 2 stop words
    assert decide("gopher_quality", " ".join(words(60) + ["the", "the"]),
                  only="min_stop_words") == "gopher_enough_stop_words"  # 1 distinct


# --- Gopher repetition (Rae et al. 2021, table A1) -----------------------------------------------


def test_repetition_dup_line_frac():
    unique = [" ".join(words(3, start=3 * i)) for i in range(7)]
    keep = "\n".join(unique + unique[:3])  # 3 duplicate lines of 10 = 0.3
    drop = "\n".join(unique[:6] + unique[:4])  # 4 of 10
    assert decide("gopher_repetition", keep, only="dup_line_frac") is None
    assert decide("gopher_repetition", drop, only="dup_line_frac") == "dup_line_frac"


def test_repetition_dup_para_frac():
    unique = [" ".join(words(3, start=3 * i)) for i in range(7)]
    keep = "\n\n".join(unique + unique[:3])
    drop = "\n\n".join(unique[:6] + unique[:4])
    assert decide("gopher_repetition", keep, only="dup_para_frac") is None
    assert decide("gopher_repetition", drop, only="dup_para_frac") == "dup_para_frac"


def test_repetition_dup_line_char_frac():
    a = "a" * 20
    keep = f"{a}\n{'b' * 58}\n{a}"  # 20 duplicate characters / 100 = 0.2
    drop = f"{a}\n{'b' * 57}\n{a}"  # 20 / 99
    assert decide("gopher_repetition", keep, only="dup_line_char_frac") is None
    assert decide("gopher_repetition", drop, only="dup_line_char_frac") == "dup_line_char_frac"


def test_repetition_dup_para_char_frac():
    a = "a" * 20
    keep = f"{a}\n\n{'b' * 56}\n\n{a}"  # 20 / 100
    drop = f"{a}\n\n{'b' * 55}\n\n{a}"  # 20 / 99
    assert decide("gopher_repetition", keep, only="dup_para_char_frac") is None
    assert decide("gopher_repetition", drop, only="dup_para_char_frac") == "dup_para_char_frac"


def _smallest_filler(chars: int, fixed_words: int, threshold: float) -> int:
    """Fewest 5-letter filler words for which chars / len(text) <= threshold (len = words x 6 - 1)."""
    filler = 0
    while chars / ((fixed_words + filler) * 6 - 1) > threshold:
        filler += 1
    return filler


@pytest.mark.parametrize("n, threshold", sorted(rules.TOP_NGRAMS.items()))
def test_repetition_top_n_gram(n, threshold):
    # an n-gram of distinct 5-letter words repeated 4 times in a row: 4 x (6n - 1) characters
    unit = words(n, start=7000)
    def text(filler: int) -> str:
        return " ".join(unit * 4 + words(filler, start=100))

    filler = _smallest_filler(4 * (6 * n - 1), 4 * n, threshold)
    assert decide("gopher_repetition", text(filler), only=f"top_{n}_gram") is None
    assert decide("gopher_repetition", text(filler - 1), only=f"top_{n}_gram") == f"top_{n}_gram"


@pytest.mark.parametrize("n, threshold", sorted(rules.DUP_NGRAMS.items()))
def test_repetition_duplicated_n_grams(n, threshold):
    # one n-gram of 5-letter words seen twice: its 5n characters (joined without spaces) are duplicated
    gram = words(n, start=500)
    def text(filler: int) -> str:
        return " ".join(gram + words(filler, start=1000) + gram)

    filler = _smallest_filler(5 * n, 2 * n, threshold)
    assert decide("gopher_repetition", text(filler), only=f"dup_{n}_grams") is None
    assert decide("gopher_repetition", text(filler - 1), only=f"dup_{n}_grams") == f"duplicated_{n}_n_grams"


# --- C4, as FineWeb runs it (no terminal-punctuation rule) ----------------------------------------


def sentences(n: int, start: int = 0) -> list[str]:
    return [word(start + i).capitalize() + " " + " ".join(words(4, start=100 + 4 * (start + i))) + "."
            for i in range(n)]


def test_c4_min_sentences():
    assert decide("c4", "\n".join(sentences(5))) is None  # 5 one-sentence lines
    assert decide("c4", "\n".join(sentences(4))) == "too_few_sentences"


def test_c4_min_words_per_line_and_no_terminal_punct_by_default():
    text = "\n".join(sentences(4) + ["qaaa qbbb qccc"])  # 3 words, no full stop: kept, 5 sentences
    assert decide("c4", text) is None
    assert decide("c4", "\n".join(sentences(4) + ["qaaa qbbb"])) == "too_few_sentences"  # 2 words: line removed
    assert decide("c4", text, filter_no_terminal_punct="true") == "too_few_sentences"  # C4's paper rule


def test_c4_lorem_ipsum_and_curly_bracket():
    assert decide("c4", "\n".join(sentences(5) + ["Lorem ipsum dolor sit."])) == "lorem_ipsum"
    assert decide("c4", "\n".join(sentences(5) + ["The set {a} is small."])) == "curly_bracket"
    assert decide("c4", "\n".join(sentences(5) + ["The set {a} is small."]), filter_curly_bracket="false") is None


def test_c4_line_rules_remove_lines_not_documents():
    lines = sentences(5) + ["Please enable JavaScript now.", "This site uses cookies today.",
                            "A " + "q" * 1001 + " word."]
    filters = rules.build_filters(rules.resolved(["c4"], {}))
    after, removed_by, _ = rules.apply_filters("\n".join(lines), "doc", filters)
    assert removed_by is None and after == "\n".join(sentences(5))
    long_ok = "A " + "q" * 1000 + " word."  # exactly 1000 characters: the line stays
    after, _, _ = rules.apply_filters("\n".join(sentences(5) + [long_ok]), "doc", filters)
    assert after.endswith(long_ok)


# --- FineWeb (Penedo et al. 2024) -----------------------------------------------------------------


def long_lines(n: int, punct: int) -> list[str]:
    """n distinct lines of six 5-letter words (35 characters), the first `punct` ending in '.'."""
    return [" ".join(words(6, start=6 * i)) + ("." if i < punct else "") for i in range(n)]


def test_fineweb_line_punct_ratio():
    assert decide("fineweb", "\n".join(long_lines(25, 3))) is None  # 3 / 25 = 0.12
    assert decide("fineweb", "\n".join(long_lines(25, 2))) == "line_punct_ratio"  # 0.08


def test_fineweb_short_line_ratio():
    short = [" ".join(words(2, start=900 + 2 * i)) + "." for i in range(67)]  # 12 characters each
    assert decide("fineweb", "\n".join(short + long_lines(33, 33)), new_line_ratio=1) is None  # 67 / 100
    assert decide("fineweb", "\n".join(short + [word(5000) + "."] + long_lines(32, 32)),
                  new_line_ratio=1) == "short_line_ratio"  # 68 / 100


def test_fineweb_char_duplicates_ratio():
    lines = long_lines(100, 100)  # 100 distinct lines of 36 characters
    # a 36-character line repeated: 36 / (101 x 36 = 3636) = 0.0099 <= 0.01
    assert decide("fineweb", "\n".join(lines + [lines[0]])) is None
    # a 37-character line repeated: 37 / (99 x 36 + 2 x 37 = 3638) = 0.0102 > 0.01
    longer = lines[:99] + [lines[0][:-1] + "x."]
    assert decide("fineweb", "\n".join(longer + [longer[-1]])) == "char_dup_ratio"


def test_fineweb_new_line_ratio():
    keep = "\n".join(" ".join(words(3, start=3 * i)) for i in range(10))  # 9 newlines / 30 words
    drop = "\n".join([" ".join(words(2, start=500))] + [" ".join(words(3, start=3 * i)) for i in range(9)])
    loose = {"line_punct_thr": 0, "short_line_thr": 1}
    assert decide("fineweb", keep, **loose) is None
    assert decide("fineweb", drop, **loose) == "list_ratio"  # 9 / 29 = 0.31


# --- the table refuses what it cannot mean --------------------------------------------------------


@pytest.mark.parametrize("item, fragment", [
    ("gopher_quality.max_bullet_lines_ratio=1.5", "out of range"),
    ("fineweb.line_punct_thr=-0.1", "out of range"),
    ("gopher_quality.min_doc_words=ten", "expected an integer"),
    ("gopher_quality.nope=1", "has no parameter"),
    ("c4.filter_lorem_ipsum=maybe", "expected true or false"),
    ("fineweb.line_punct_thr=none", "expected a number"),
    ("gopher_quality", "expected RULE.PARAM=VALUE"),
])
def test_bad_overrides_are_one_line_user_errors(item, fragment):
    with pytest.raises(UserError, match=fragment) as info:
        rules.parse_overrides([item], list(rules.DEFAULT_RULES))
    assert "\n" not in str(info.value) and item.split("=")[0] in str(info.value)


# --- the faster tokenizer gives datatrove's tokens and decisions ----------------------------------


def test_keep_vocab_tokenizer_matches_datatroves_tokens_and_decisions():
    import itertools

    from datatrove.utils.word_tokenizers import load_word_tokenizer

    from beyondscale.lab.curate.synthetic import documents
    from beyondscale.lab.curate.tokenizer import KeepVocabTokenizer

    docs = [d["text"] for d in itertools.islice(documents(seed=11, files=40), 60)]
    docs += ["Tabs\tand  double  spaces,\n\n  trailing ", "e.g. U.S.A. don't — “quotes” ... 3.14 #tag", ""]
    reference = load_word_tokenizer("en")
    ours = KeepVocabTokenizer(max_lexemes=3000)  # small: the vocabulary is rebuilt several times
    assert [ours.word_tokenize(t) for t in docs] == [reference.word_tokenize(t) for t in docs]
    assert ours.resets >= 1
    table = rules.resolved(list(rules.DEFAULT_RULES), {})
    theirs, mine = rules.build_filters(table, tokenizer="en"), rules.build_filters(table)
    assert [rules.apply_filters(t, "d", mine) for t in docs] == [rules.apply_filters(t, "d", theirs) for t in docs]
