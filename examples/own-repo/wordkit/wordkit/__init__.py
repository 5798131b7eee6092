"""Small text utilities (the example repository of `just add-repo`)."""

from .text import chunk, clamp, count_words, initials, is_palindrome, slugify, top_words, wrap

__all__ = ["chunk", "clamp", "count_words", "initials", "is_palindrome", "slugify", "top_words", "wrap"]
