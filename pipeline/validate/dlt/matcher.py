r"""Check messages against the DLT templates registered for the sender.

Operators scrub every SMS against the sender's registered DLT content template
(docs/provider-api.md, "DLT templates and headers"): the fixed text must be identical ("no
extra/missing spaces or new lines") and each `{#var#}` (case-sensitive) holds at most 30
characters. Checking here means a mismatch costs no credit and comes with a reason the user
can act on, instead of provider error 80 after the fact.

Template files are read by `files.py` (`load_dlt_templates`, exported by the package).

Matching, where the operators' rules are silent:
- no whitespace normalisation at all: the fixed text must be identical;
- a variable may be empty (0..var_max characters): DLT accepts an empty variable in practice,
  and the sandbox provider does the same;
- templates are tried in file order, the first that fits wins;
- with no fit, the reason describes the closest template: the one with the most of its fixed
  words (in characters) found in the message, then the most fixed characters matched in
  order before the first difference, then the first in the file. Within it, the first
  difference is found reading each variable as the shortest text the next fixed text can
  follow (glob-style, ignoring the length limit).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from pipeline.errors import InputError


class Placeholder(Protocol):
    """A `{Column:spec}` in a message template (merge.template.Placeholder has this shape)."""

    @property
    def column(self) -> str: ...

    @property
    def spec(self) -> str | None: ...


class Template(Protocol):
    """What the matcher reads of a message template (merge.template.Template has this shape):
    a Protocol, so checking a template against DLT needs nothing from the merge stage."""

    @property
    def text(self) -> str: ...

    @property
    def parts(self) -> Sequence[str | Placeholder]: ...


__all__ = ["DEFAULT_VAR_MAX", "BadText", "DltMatcher", "DltTemplate", "compile_text"]

DEFAULT_VAR_MAX = 30  # "maximum character limit for a DLT variable is 30" (Textlocal)
VAR = "{#var#}"

# A valid variable, or anything that looks like a failed attempt at one ({#VAR#}, {#var},
# {var}, {# var #}, {#name#}): operators would not read those as variables.
_VAR_LIKE = re.compile(r"\{#var#\}|\{\s*#?\s*var\s*#?\s*\}?|\{\s*#|#\s*\}", re.IGNORECASE)
_SHOWN = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_BEFORE, _AFTER, _CLIP = 6, 14, 30  # window around a difference, and longest quoted tail


@dataclass(frozen=True)
class DltTemplate:
    """A registered DLT content template: its id, exact text with `{#var#}`s, and category."""

    id: str
    text: str
    category: str | None = None


class BadText(ValueError):
    """A template text DLT would not accept; the caller adds where it came from."""


@dataclass(frozen=True)
class _Compiled:
    """A template split at its variables: fixed parts, their offsets in the text, and sums."""

    id: str
    text: str
    fixed: tuple[str, ...]
    offsets: tuple[int, ...]
    before: tuple[int, ...]  # fixed characters ahead of each fixed part
    words: tuple[str, ...]  # the fixed text's words, to tell how close a message comes

    @property
    def total(self) -> int:
        return self.before[-1] + len(self.fixed[-1])


@dataclass(slots=True)
class _Miss:
    """Why one template does not fit one message, and how close it came (score)."""

    index: int
    score: int
    kind: str  # "differs" | "early" | "extra" | "long"
    at: int  # message index: first difference, start of extra text, or variable start
    raw_at: int = 0  # template text index of the difference
    matched: int = 0  # characters of that fixed part matched before it
    var: int = 0  # 1-based variable number ("long")
    end: int = 0  # variable end ("long")


class _View:
    """How a reason shows the checked text: a plain message, positions as they are."""

    def __init__(self, text: str) -> None:
        self.text = text

    def show(self, start: int, end: int) -> str:
        return self.text[max(start, 0) : end]

    def position(self, index: int) -> int:
        return index

    def at_least(self, start: int, end: int) -> bool:
        return False


class _ProbeView(_View):
    """A `{Column}` template as a probe string, a marker standing in for each placeholder."""

    def __init__(self, template: Template, marker: str) -> None:
        probe, shown, where = [], [], [0]
        for part in template.parts:
            if isinstance(part, str):
                probe.append(part)
                shown.append(part)
                base = where[-1]
                where.extend(range(base + 1, base + len(part) + 1))
            else:
                name = f"{{{part.column}{':' + part.spec if part.spec else ''}}}"
                probe.append(marker)
                shown.append(name)
                where.append(where[-1] + len(name))
        super().__init__("".join(probe))
        self.marker = marker
        self.shown = "".join(shown)
        self.where = where  # probe index -> index in `shown`

    def show(self, start: int, end: int) -> str:
        start, end = max(start, 0), min(end, len(self.text))
        return self.shown[self.where[start] : self.where[end]]

    def position(self, index: int) -> int:
        return self.where[index]

    def at_least(self, start: int, end: int) -> bool:
        return self.marker in self.text[start:end]  # a cell renders as one character or more


class DltMatcher:
    """Match messages against registered DLT templates, explaining any that fit none."""

    def __init__(self, templates: Sequence[DltTemplate], *, var_max: int = DEFAULT_VAR_MAX) -> None:
        if var_max < 1:
            raise ValueError(f"var_max must be at least 1, got {var_max}")
        if not templates:
            raise InputError("no DLT templates given; pass the templates registered on DLT")
        self.templates = tuple(templates)
        self.var_max = var_max
        compiled = []
        for t in self.templates:
            try:
                compiled.append(compile_text(t.id, t.text))
            except BadText as exc:
                raise InputError(f"DLT template {t.id}: {exc}") from None
        self._compiled = compiled
        # One alternation, one group per template in file order: `re` tries the branches in
        # order, so the first template that fits wins, all in C. Variables are lazy: they
        # are usually short, so the next fixed text is found sooner.
        var = f".{{0,{var_max}}}?"
        branches = (var.join(map(re.escape, c.fixed)) for c in compiled)
        self._regex = re.compile("|".join(f"({b})" for b in branches), re.DOTALL)

    def match(self, message: str) -> tuple[str | None, str | None]:
        """(template id, None) for the first template the message fits, else (None, reason)."""
        hit = self._regex.fullmatch(message)
        if hit is not None:
            # one group per branch and none inside: a match always sets lastindex
            return self._compiled[cast(int, hit.lastindex) - 1].id, None
        miss = self._closest(message)
        reason = self._describe(miss, _View(message))
        return None, f"template {self._compiled[miss.index].id}: {reason}"

    def match_many(
        self, messages: Sequence[str | None]
    ) -> tuple[list[str | None], list[str | None]]:
        """match() over many messages: (ids, reasons); a None message gives (None, None)."""
        fullmatch = self._regex.fullmatch
        names = [None] + [c.id for c in self._compiled]  # group number -> template id
        ids: list[str | None] = [
            None
            if m is None or (hit := fullmatch(m)) is None
            else names[cast(int, hit.lastindex)]  # set by any match, as in match()
            for m in messages
        ]
        reasons: list[str | None] = [None] * len(ids)
        for i, (template_id, message) in enumerate(zip(ids, messages, strict=True)):
            if template_id is None and message is not None:
                reasons[i] = self.match(message)[1]
        return ids, reasons

    def check_template(self, template: Template, *, source: str = "template") -> None:
        """InputError unless some rendering of `template` could fit a registered template."""
        # Each placeholder becomes a marker no DLT text contains, so fixed DLT text can only
        # be matched by the user's literal text; a variable may take literal text and
        # markers. A marker counts one character: a filled cell renders at least that.
        used = "".join(c.text for c in self._compiled) + template.text
        marker = next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in used)
        view = _ProbeView(template, marker)
        if self._regex.fullmatch(view.text) is not None:
            return
        miss = self._closest(view.text)
        advice = (
            f"put at most {self.var_max} characters where the registered template has "
            "that {#var#}"
            if miss.kind == "long"
            else "make the message text match the registered template exactly"
        )
        raise InputError(
            f"{source} does not fit any registered DLT template: closest is "
            f"{self._compiled[miss.index].id}: {self._describe(miss, view)}; {advice}"
        )

    # ---- explaining a miss ------------------------------------------------------------

    def _closest(self, message: str) -> _Miss:
        """The miss of the closest template: the most of its fixed words found in the message
        (so a wrong first word or a stray space does not hide the template meant), then the
        most fixed characters matched in order, then file order."""
        misses = [_diagnose(i, c, message, self.var_max) for i, c in enumerate(self._compiled)]
        if len(misses) == 1:
            return misses[0]
        shared = [sum(map(len, filter(message.__contains__, c.words))) for c in self._compiled]
        return max(misses, key=lambda m: (shared[m.index], m.score, -m.index))

    def _describe(self, miss: _Miss, view: _View) -> str:
        """The miss as a short diff-style sentence (without the template id)."""
        text = self._compiled[miss.index].text
        if miss.kind == "long":
            n = miss.end - miss.at
            least = "at least " if view.at_least(miss.at, miss.end) else ""
            return (
                f"variable {miss.var} is {least}{n} characters "
                f"({n - self.var_max} over the {self.var_max} limit)"
            )
        if miss.kind == "extra":
            return f'extra text at the end: "{_clip(view.show(miss.at, len(view.text)))}"'
        if miss.kind == "early":
            return f'message ends early: template expects "{_clip(text[miss.raw_at :])}" at the end'
        back = min(_BEFORE, miss.matched)  # context both sides share: the matched fixed text
        end = miss.raw_at + _AFTER
        if 0 <= (var := text.find(VAR, end - len(VAR) + 1)) < end:
            end = var + len(VAR)  # show a variable whole, not "{#va"
        expected = _visible(text[miss.raw_at - back : end])
        found = _visible(view.show(miss.at - back, miss.at + _AFTER))
        return (
            f"fixed text differs at character {view.position(miss.at) + 1}: "
            f'template has "{expected}", message has "{found}"'
        )


def compile_text(template_id: str, text: str) -> _Compiled:
    """Split a template at its `{#var#}`s; BadText for a malformed variable or no fixed text."""
    if not text.strip():
        raise BadText("the text is empty; paste the registered template text")
    fixed, offsets, start = [], [], 0
    for m in _VAR_LIKE.finditer(text):
        if m.group() != VAR:
            close = text.find("}", m.start(), m.start() + 16)
            shown = text[m.start() : close + 1] if close >= m.end() else m.group()
            raise BadText(
                f'malformed variable "{_visible(shown)}"; write each variable '
                "exactly as {#var#} (lower case, no spaces)"
            )
        fixed.append(text[start : m.start()])
        offsets.append(start)
        start = m.end()
    fixed.append(text[start:])
    offsets.append(start)
    if not "".join(fixed).strip():
        raise BadText(
            "the template has only variables, and DLT does not allow a template "
            "without fixed text; copy the registered template text exactly"
        )
    before = [0]
    for part in fixed[:-1]:
        before.append(before[-1] + len(part))
    words = tuple(" ".join(fixed).split())
    return _Compiled(template_id, text, tuple(fixed), tuple(offsets), tuple(before), words)


def _diagnose(index: int, t: _Compiled, msg: str, var_max: int) -> _Miss:
    """Why `t` does not fit `msg`, matching fixed parts left to right like a glob whose
    variables take as little as they can (the leftmost match of each fixed part leaves the
    most room for the rest, so this finds a fit whenever one exists, ignoring var_max)."""
    fixed, n = t.fixed, len(msg)
    head = fixed[0]
    c = _common_prefix(head, msg)
    if len(fixed) == 1:  # no variables: the message must be exactly the text
        if c == len(head):
            return _Miss(index, t.total, "extra", c)
        return _partial(index, t, 0, 0, c, n)
    if c < len(head):
        return _partial(index, t, 0, 0, c, n)
    pos, spans = len(head), []
    for i in range(1, len(fixed) - 1):
        j = msg.find(fixed[i], pos)
        if j < 0:
            j, c = _longest_prefix(msg, fixed[i], pos)
            return _partial(index, t, i, j, c, n)
        spans.append((pos, j))
        pos = j + len(fixed[i])
    tail = fixed[-1]
    j = n - len(tail)
    if j >= pos and msg.endswith(tail):
        spans.append((pos, j))
        # It fits but for length: name the first variable over the limit (there is one,
        # or the regex would have matched; the longest is a safe fallback).
        over = [k for k, (a, b) in enumerate(spans) if b - a > var_max]
        k = over[0] if over else max(range(len(spans)), key=lambda k: spans[k][1] - spans[k][0])
        return _Miss(index, t.total, "long", spans[k][0], var=k + 1, end=spans[k][1])
    j = msg.find(tail, pos)
    if j >= 0:
        return _Miss(index, t.total, "extra", j + len(tail))
    j, c = _longest_prefix(msg, tail, pos)
    # The last fixed text belongs at the end: a message that stops partway into it ends
    # early, even if a longer piece of it appears earlier on.
    ends = next(k for k in range(min(len(tail) - 1, n - pos), -1, -1) if msg.endswith(tail[:k]))
    if ends >= c:
        j, c = n - ends, ends
    return _partial(index, t, len(fixed) - 1, j, c, n)


def _partial(index: int, t: _Compiled, part: int, start: int, c: int, n: int) -> _Miss:
    """Fixed part `part` matched `c` characters from message index `start`, then stopped."""
    kind = "early" if start + c == n else "differs"
    return _Miss(index, t.before[part] + c, kind, start + c, raw_at=t.offsets[part] + c, matched=c)


def _longest_prefix(msg: str, fixed: str, pos: int) -> tuple[int, int]:
    """(index, length) of the leftmost longest prefix of `fixed` found in msg[pos:]."""
    lo, hi = 0, len(fixed)  # fixed[:lo] is found; fixed[:hi] is not
    while hi - lo > 1:  # a prefix found implies every shorter one is: binary search
        mid = (lo + hi) // 2
        if msg.find(fixed[:mid], pos) >= 0:
            lo = mid
        else:
            hi = mid
    return msg.find(fixed[:lo], pos), lo


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _visible(text: str) -> str:
    """Text with newlines, tabs and other invisible characters written out (\\n, \\u00a0)."""
    if text.isprintable():
        return text
    return "".join(
        ch
        if ch.isprintable()
        else _SHOWN.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        for ch in text
    )


def _clip(text: str) -> str:
    return _visible(text[:_CLIP]) + ("…" if len(text) > _CLIP else "")
