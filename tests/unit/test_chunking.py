import random

import pytest

from mpg_tui.core.chunking import EMBED_LIMIT, EMPTY_REPLY, PLAIN_LIMIT, chunk_text


def fence_lines(chunk: str) -> list[str]:
    return [line.strip() for line in chunk.split("\n") if line.lstrip().startswith("```")]


def test_short_text_is_one_unchanged_chunk() -> None:
    assert chunk_text("Hello world") == ["Hello world"]


def test_text_of_exactly_the_limit_is_one_chunk() -> None:
    text = "x" * PLAIN_LIMIT
    assert chunk_text(text) == [text]


@pytest.mark.parametrize("text", ["", " ", "\n\n", " \t\n "])
def test_empty_reply_becomes_a_visible_placeholder(text: str) -> None:
    assert chunk_text(text) == [EMPTY_REPLY]


def test_splits_on_line_boundaries() -> None:
    first, second = "A" * 1500, "B" * 1500
    assert chunk_text(f"{first}\n{second}") == [first, second]


def test_packs_as_many_whole_lines_as_fit() -> None:
    lines = [f"line {i:04d} " + "x" * 90 for i in range(60)]  # 100 chars each
    chunks = chunk_text("\n".join(lines))
    assert all(len(c) <= PLAIN_LIMIT for c in chunks)
    assert "\n".join(chunks) == "\n".join(lines)
    assert len(chunks[0].split("\n")) == 19  # 19 * 100 + 18 newlines = 1918; a 20th would pass 2000


def test_single_over_long_line_is_hard_split() -> None:
    chunks = chunk_text("A" * 4500)
    assert [len(c) for c in chunks] == [2000, 2000, 500]


def test_over_long_line_after_short_text_starts_its_own_chunk() -> None:
    chunks = chunk_text("intro\n" + "B" * 2500 + "\noutro")
    assert chunks[0] == "intro"
    assert "".join(chunks[1:]).replace("\n", "") == "B" * 2500 + "outro"
    assert all(len(c) <= PLAIN_LIMIT for c in chunks)


def test_embed_limit_allows_4096_characters() -> None:
    chunks = chunk_text("A" * 5000, EMBED_LIMIT)
    assert [len(c) for c in chunks] == [4096, 904]


def test_code_block_split_across_chunks_is_closed_and_reopened() -> None:
    code = "\n".join(f"    print({i})  # " + "y" * 40 for i in range(80))
    text = f"Here is the fix:\n```python\n{code}\n```\nDone."
    chunks = chunk_text(text)
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(chunk) <= PLAIN_LIMIT
        assert len(fence_lines(chunk)) % 2 == 0, chunk
    assert chunks[1].startswith("```python\n")
    assert chunks[0].endswith("\n```")
    assert chunks[-1].endswith("```\nDone.")


def test_fences_outside_a_split_are_left_alone() -> None:
    text = "```\nshort\n```\n" + "\n".join("z" * 100 for _ in range(30))
    chunks = chunk_text(text)
    assert chunks[0].startswith("```\nshort\n```")
    assert sum(len(fence_lines(c)) for c in chunks) == 2


def test_long_fence_info_string_is_reopened_as_a_bare_fence() -> None:
    text = "```" + "x" * 40 + "\n" + "\n".join("q" * 100 for _ in range(30)) + "\n```"
    chunks = chunk_text(text)
    assert chunks[1].startswith("```\n")


def test_unbalanced_fence_at_the_end_is_kept_as_written() -> None:
    text = "a" * 1990 + "\n```python\nprint(1)"
    chunks = chunk_text(text)
    assert chunks[-1] == "```python\nprint(1)"


def test_no_chunk_is_whitespace_only() -> None:
    text = "\n" * 10 + "x" * 3000
    chunks = chunk_text(text)
    assert all(c.strip() for c in chunks)
    assert "".join(chunks).count("x") == 3000


def test_limit_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        chunk_text("hello", 10)


@pytest.mark.parametrize("seed", range(40))
def test_random_texts_fit_keep_code_blocks_balanced_and_lose_no_visible_text(seed: int) -> None:
    rng = random.Random(seed)
    parts = []
    for _ in range(rng.randint(1, 80)):
        kind = rng.random()
        if kind < 0.1:
            parts.append("```" + rng.choice(["", "py", "diff"]))
        elif kind < 0.2:
            parts.append("")
        else:
            parts.append("".join(rng.choice("abc de") for _ in range(rng.choice([5, 80, 700, 2600]))))
    if sum(p.startswith("```") for p in parts) % 2:
        parts.append("```")
    text = "\n".join(parts)
    limit = rng.choice([PLAIN_LIMIT, 500, 64])
    chunks = chunk_text(text, limit)
    assert chunks
    assert all(0 < len(c) <= limit and c.strip() for c in chunks)
    assert all(len(fence_lines(c)) % 2 == 0 for c in chunks)
    assert visible(chunks) == visible([text])


def visible(texts: list[str]) -> str:
    """The text without whitespace or fence lines (which chunking may add to close and reopen blocks)."""
    lines = (line for text in texts for line in text.split("\n") if not line.startswith("```"))
    return "".join(ch for line in lines for ch in line if ch not in " ")
