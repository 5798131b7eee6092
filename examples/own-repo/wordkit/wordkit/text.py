"""Word counts, slugs, wrapping and friends."""

import re

_WORD = re.compile(r"[A-Za-z0-9']+")


def count_words(text):
    """How often each lower-cased word occurs in `text`."""
    counts = {}
    for word in _WORD.findall(text):
        key = word.lower()
        counts[key] = counts.get(key, 0) + 1
    return counts


def top_words(text, n):
    """The `n` most frequent words, most frequent first, ties in alphabetical order."""
    if n <= 0:
        return []
    counts = count_words(text)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [word for word, _ in ranked[:n]]


def chunk(items, size):
    """`items` cut into lists of `size` (the last one may be shorter)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    out = []
    for start in range(0, len(items), size):
        out.append(list(items[start:start + size]))
    return out


def clamp(value, low, high):
    """`value` held inside [low, high]."""
    if low > high:
        raise ValueError("low is above high")
    if value < low:
        return low
    if value > high:
        return high
    return value


def slugify(text, sep="-"):
    """Lower-case words of `text` joined by `sep`."""
    words = [word.lower() for word in _WORD.findall(text.replace("'", ""))]
    return sep.join(words)


def wrap(text, width):
    """Words of `text` in lines of at most `width` characters (a longer word alone)."""
    lines = []
    current = ""
    for word in text.split():
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current = current + " " + word
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def is_palindrome(text):
    """Whether `text` reads the same backwards, ignoring case and non-letters."""
    letters = [c.lower() for c in text if c.isalnum()]
    left, right = 0, len(letters) - 1
    while left < right:
        if letters[left] != letters[right]:
            return False
        left += 1
        right -= 1
    return True


def initials(name, limit=3):
    """Up to `limit` upper-case initials of the words of `name`."""
    parts = [part for part in name.split() if part]
    letters = [part[0].upper() for part in parts]
    return "".join(letters[:limit])
