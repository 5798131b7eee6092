import pytest

from wordkit import chunk, clamp, count_words, initials, is_palindrome, slugify, top_words, wrap


def test_count_words_ignores_case():
    assert count_words("The cat and the hat") == {"the": 2, "cat": 1, "and": 1, "hat": 1}


def test_count_words_of_nothing():
    assert count_words("") == {}


def test_top_words_orders_by_count_then_name():
    assert top_words("b a b c a b", 2) == ["b", "a"]
    assert top_words("z y x", 2) == ["x", "y"]


def test_top_words_of_none_wanted():
    assert top_words("a a", 0) == []


def test_chunk_keeps_the_short_tail():
    assert chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert chunk("abc", 3) == [["a", "b", "c"]]


def test_chunk_refuses_a_zero_size():
    with pytest.raises(ValueError):
        chunk([1], 0)


def test_clamp_inside_and_outside():
    assert clamp(5, 0, 10) == 5
    assert clamp(-1, 0, 10) == 0
    assert clamp(11, 0, 10) == 10
    assert clamp(10, 0, 10) == 10


def test_clamp_refuses_an_empty_range():
    with pytest.raises(ValueError):
        clamp(1, 2, 0)


def test_slugify():
    assert slugify("Hello, World!") == "hello-world"
    assert slugify("Don't panic", sep="_") == "dont_panic"


def test_wrap_fills_lines():
    assert wrap("one two three four", 9) == ["one two", "three", "four"]
    assert wrap("a b c", 5) == ["a b c"]
    assert wrap("", 4) == []


def test_is_palindrome():
    assert is_palindrome("A man, a plan, a canal: Panama")
    assert not is_palindrome("abca")
    assert is_palindrome("")


def test_initials():
    assert initials("ada  lovelace") == "AL"
    assert initials("a b c d", limit=2) == "AB"
