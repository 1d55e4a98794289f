"""What the served assistant says (`lmforge serve --index IDX --reader QA`): a chat's last user message is the
question, `lmforge.search.Assistant` answers it, and the reply is OpenAI's chat completion with a top-level
`citations` list beside `choices` and `usage`:

    {"object": "chat.completion", "model": "assistant",
     "choices": [{"index": 0, "message": {"role": "assistant", "content":
         "Denver Broncos\\n\\nSources:\\n[1] 0-0 (Super_Bowl_50) [0:394], confidence 0.812"}, ...}],
     "citations": [{"doc_id": "0-0", "title": "Super_Bowl_50", "start": 0, "end": 394, "text": "..."}],
     "usage": {"prompt_tokens": 612, "completion_tokens": 31, "total_tokens": 643}}

- content: the answer, then its source as `lmforge search` prints a result — document (title) [start:end]
  of the passage the answer was read from — and the reader's confidence; below the threshold, what
  `lmforge ask` says: "I don't know (best confidence S < threshold T).", and nothing is cited.
- citations: that passage, numbered [1] in the content: its document id, title, character offsets in its
  document (`document[start:end] == text`, as `/v1/search` gives them) and text.
- usage: prompt_tokens are the tokens the reader read (the question with each of the k passages, every
  window); completion_tokens are the content's, in the reader's tokenizer.
- streamed (`stream: true`): the same content in pieces — the answer, then its sources — each chunk carrying
  `citations` too, so a client has them from the first chunk; the pieces joined are the unstreamed content.

An extractive reader does not sample: temperature, top_p, seed, stop and max_tokens change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmforge.errors import ConfigError


@dataclass(frozen=True)
class Reply:
    pieces: tuple[str, ...]  # the content as it is streamed; joined, the content
    citations: list[dict]
    prompt_tokens: int
    completion_tokens: int
    answer: object  # the lmforge.search.Answer behind it

    @property
    def content(self) -> str:
        return "".join(self.pieces)


def question_of(messages: list[dict]) -> str:
    """The last user message's text: the question (earlier turns and system messages are not read)."""
    for message in reversed(messages):
        if message["role"] == "user":
            if not message["content"].strip():
                raise ConfigError("the last user message is empty; ask a question")
            return message["content"]
    raise ConfigError("no user message: the assistant answers the last message whose role is 'user'")


def pieces_of(answer, threshold: float) -> tuple[str, ...]:
    """The content: (answer, sources), or (I don't know,) when the assistant abstains.

    >>> from lmforge.search import Answer, Hit
    >>> passage = Hit(1, 0.03, 7, "0-3", "Super_Bowl_50", 120, 180, "the halftime show was headlined by Coldplay")
    >>> answered = Answer("Coldplay", 0.8123, False, "0-3", "Super_Bowl_50", 155, 163, passage.text, (passage,), passage)
    >>> pieces_of(answered, 0.3)
    ('Coldplay', '\\n\\nSources:\\n[1] 0-3 (Super_Bowl_50) [120:180], confidence 0.812')
    >>> pieces_of(Answer(None, 0.0412, True, None, None, None, None, None), 0.3)
    ("I don't know (best confidence 0.041 < threshold 0.3).",)
    """
    if answer.abstained:
        return (f"I don't know (best confidence {answer.score:.3f} < threshold {threshold}).",)
    source = answer.source
    title = f" ({source.title})" if source.title else ""
    cited = f"[1] {source.doc_id}{title} [{source.start}:{source.end}], confidence {answer.score:.3f}"
    return (answer.answer, "\n\nSources:\n" + cited)


def citations_of(answer) -> list[dict]:
    """The passage the answer was read from (none when the assistant abstains)."""
    if answer.abstained:
        return []
    source = answer.source
    return [
        {
            "doc_id": source.doc_id,
            "title": source.title,
            "start": source.start,
            "end": source.end,
            "text": source.text,
        }
    ]


def respond(assistant, messages: list[dict]) -> Reply:
    """Ask `assistant` (an `lmforge.search.Assistant`) the chat's question."""
    answer = assistant.ask(question_of(messages))
    pieces = pieces_of(answer, assistant.threshold)
    return Reply(
        pieces, citations_of(answer), answer.tokens_read, count_tokens(assistant.reader, pieces), answer
    )


def count_tokens(reader, pieces: tuple[str, ...]) -> int:
    """The reply's tokens in the reader's tokenizer, whole (the reader leaves its windowing set on it)."""
    tokenizer = reader.tokenizer
    with reader.tokenizer_lock:
        windowing, tokenizer.truncation = tokenizer.truncation, None
        try:
            return len(tokenizer.encode("".join(pieces), add_special_tokens=False).ids)
        finally:
            tokenizer.truncation = windowing
