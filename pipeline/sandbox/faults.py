"""Fault switches for the sandbox: a slow, throttling, failing or silent provider on demand.

They exist so crash-safe sending can be rehearsed against the failures that matter
(docs/provider-api.md, "Rate limits and retries";
docs/contract.md, "Sending, journal and resume"): a request turned away unprocessed (429), a
server error that may or may not have recorded the messages (5xx), and a request that was
processed but whose answer never arrived (dropped connection, or an answer later than the
client waits).

Only sending requests (/send/, /bulk_json/) count towards the `*_every` switches, on one shared
counter: with `rate_limit_every=2` the 2nd, 4th, 6th ... sending request is throttled. When
several switches pick the same request, the first of this list wins:

    rate_limit  HTTP 429 + Retry-After; nothing recorded (first: it is the only one that
                turns a request away before any work, as a throttling gateway would)
    error       HTTP `error_status`; recorded only if `error_records`
    drop        recorded, then the connection is closed with no answer at all
    hang        recorded, then the answer waits `hang_seconds` (past the client's read timeout)

`latency` delays every request (reads too) before it is processed. Assigning new faults to a
running server restarts the counter, so "every k-th" counts from that moment.

`echo_key` plays a provider (or a proxy) that quotes back the API key a request sent, as it
received it, in one or more places, so the client's scrubbing can be rehearsed end to end:

    reason       the HTTP reason phrase of every answer (success, 429 and 5xx alike)
    error        every sending request no switch above picked fails, nothing recorded, with
                 a failure envelope whose error text quotes the key
    upper        the same failure, quoting the key upper-cased
    json-key     every object of a success body gets an extra member named after the key
    json-value   success bodies carry the key in every `id` (message ids) and every refusal
                 text (`messages_not_sent[].error.message`)
    retry-after  the 429s of `rate_limit_every` quote the key in their Retry-After
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from http import HTTPStatus
from typing import Any, cast

from pipeline.errors import InputError

RATE_LIMIT, ERROR, DROP, HANG = "rate_limit", "error", "drop", "hang"
# Where `echo_key` quotes the key back, and how describe() says so.
ECHO_PLACES = {
    "reason": "every reason phrase",
    "error": "a failure's text (every send fails)",
    "upper": "a failure's text upper-cased (every send fails)",
    "json-key": "the member names of success bodies",
    "json-value": "the ids and refusal texts of success bodies",
    "retry-after": "the Retry-After of those 429s",
}


@dataclass(frozen=True)
class Faults:
    """Which failures the sandbox plays; all off by default."""

    latency: float = 0.0  # seconds added before every request is processed
    rate_limit_every: int = 0  # every k-th sending request: HTTP 429, nothing recorded
    retry_after: float = 1.0  # the 429's Retry-After, in seconds
    error_every: int = 0  # every k-th sending request: HTTP `error_status`
    error_status: int = 500
    error_records: bool = False  # whether those 5xx requests were recorded first
    drop_every: int = 0  # every k-th sending request: recorded, then closed unanswered
    hang_every: int = 0  # every k-th sending request: recorded, answered after `hang_seconds`
    hang_seconds: float = 30.0
    # Places (ECHO_PLACES) where answers quote back the API key the request sent: one name
    # or a tuple of them; stored as a tuple.
    echo_key: str | tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("rate_limit_every", "error_every", "drop_every", "hang_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _invalid(name, value, "a whole number >= 0 (0 turns it off)")
        for name in ("latency", "retry_after", "hang_seconds"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (0 <= value < 86_400)
            ):
                raise _invalid(name, value, "a number of seconds from 0 to 86399")
        if isinstance(self.error_status, bool) or self.error_status not in range(500, 600):
            raise _invalid("error_status", self.error_status, "an HTTP 5xx status like 500 or 503")
        places = (self.echo_key,) if isinstance(self.echo_key, str) else self.echo_key
        if not isinstance(places, tuple | list):
            raise _invalid("echo_key", places, "a place or a tuple of places")
        for place in places:
            if not isinstance(place, str) or place not in ECHO_PLACES:
                raise _invalid("echo_key", place, "one of " + ", ".join(ECHO_PLACES))
        if "retry-after" in places and not self.rate_limit_every:
            raise InputError(
                "sandbox fault --echo-key retry-after needs --rate-limit-every: "
                "only those 429s carry a Retry-After"
            )
        object.__setattr__(self, "echo_key", tuple(dict.fromkeys(places)))

    def pick(self, position: int) -> str | None:
        """The fault for the `position`-th sending request (1-based), by precedence."""
        for fault, every in (
            (RATE_LIMIT, self.rate_limit_every),
            (ERROR, self.error_every),
            (DROP, self.drop_every),
            (HANG, self.hang_every),
        ):
            if every and position % every == 0:
                return fault
        return None

    @property
    def retry_after_header(self) -> str:
        """Retry-After as HTTP writes it: whole seconds as an integer ("1", not "1.0")."""
        value = float(self.retry_after)
        return str(int(value)) if value.is_integer() else f"{value:g}"

    def describe(self) -> str:
        """One line naming the faults that are on, or "no faults"."""
        parts = []
        if self.latency:
            parts.append(f"{self.latency:g} s latency")
        if self.rate_limit_every:
            parts.append(
                f"HTTP 429 (Retry-After {self.retry_after_header}) {_every(self.rate_limit_every)}"
            )
        if self.error_every:
            kept = "recorded" if self.error_records else "not recorded"
            parts.append(f"HTTP {self.error_status} ({kept}) {_every(self.error_every)}")
        if self.drop_every:
            parts.append(f"connection dropped after recording {_every(self.drop_every)}")
        if self.hang_every:
            parts.append(
                f"answer held {self.hang_seconds:g} s after recording {_every(self.hang_every)}"
            )
        if self.echo_key:
            parts.append(
                "the API key echoed in " + ", ".join(ECHO_PLACES[place] for place in self.echo_key)
            )
        return "; ".join(parts) or "no faults"


@dataclass(frozen=True)
class Echo:
    """How one request's answer quotes back `key`, the API key it sent, at `places`."""

    places: tuple[str, ...]
    key: str

    def reason(self, status: HTTPStatus) -> str | None:
        """The reason phrase to answer `status` with (None: the standard one)."""
        return _header_text(f"{status.phrase} {self.key}") if "reason" in self.places else None

    def retry_after(self, value: str) -> str:
        """The Retry-After header of a 429, given the plain `value`."""
        if "retry-after" not in self.places:
            return value
        return _header_text(f"{value}; apikey={self.key}")

    def failure(self) -> dict[str, Any] | None:
        """The failure envelope answering a sending request instead of doing it, if any."""
        quoted = [
            form
            for place, form in (("error", self.key), ("upper", self.key.upper()))
            if place in self.places
        ]
        if not quoted:
            return None
        return {
            "errors": [
                {"code": 3, "message": "Invalid login details for apikey " + " / ".join(quoted)}
            ],
            "status": "failure",
        }

    def body(self, body: dict[str, Any]) -> dict[str, Any]:
        """`body` with the key added where `places` say, if it is a success body."""
        if body.get("status") != "success" or not {"json-key", "json-value"} & set(self.places):
            return body
        return cast(dict[str, Any], self._echoed(body))  # a dict is copied as a dict

    def _echoed(self, value: object) -> object:
        """A copy of JSON `value` with the key added at every depth."""
        if isinstance(value, list):
            return [self._echoed(item) for item in value]
        if not isinstance(value, dict):
            return value
        out = {}
        for name, item in value.items():
            item = self._echoed(item)
            if "json-value" in self.places:
                if name == "id":
                    item = f"{self.key}-{item}"
                elif (
                    name == "error"
                    and isinstance(item, dict)
                    and isinstance(item.get("message"), str)
                ):
                    item = {**item, "message": f"{item['message']} (apikey {self.key})"}
            out[name] = item
        if "json-key" in self.places:
            out[f"apikey {self.key}"] = "echoed"
        return out


@dataclass(frozen=True)
class FaultCounts:
    """What the sandbox has served since it started (all phases together)."""

    sending: int = 0  # sending requests seen
    rate_limited: int = 0
    errors: int = 0
    dropped: int = 0
    hung: int = 0


class FaultInjector:
    """The current faults, the shared sending counter and what was served; thread-safe."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self._faults = faults if faults is not None else Faults()
        self._position = 0
        self._counts = dict.fromkeys((f.name for f in fields(FaultCounts)), 0)
        # Set by stop(): wakes latency and hang waits, so stopping never waits them out.
        self.stopping = threading.Event()

    @property
    def faults(self) -> Faults:
        """The faults in force."""
        return self._faults

    @faults.setter
    def faults(self, faults: Faults | None) -> None:
        with self._lock:
            self._faults = faults if faults is not None else Faults()
            self._position = 0

    def next_sending(self) -> tuple[Faults, str | None]:
        """Count one sending request; the faults in force and the fault it gets (or None)."""
        with self._lock:
            self._position += 1
            fault = self._faults.pick(self._position)
            self._counts["sending"] += 1
            if fault is not None:
                self._counts[_COUNTED[fault]] += 1
            return self._faults, fault

    def counts(self) -> FaultCounts:
        """A snapshot of what was served."""
        with self._lock:
            return FaultCounts(**self._counts)

    def wait(self, seconds: float) -> bool:
        """Sleep `seconds` unless the server stops first; True if it is stopping."""
        return self.stopping.wait(seconds) if seconds > 0 else self.stopping.is_set()


_COUNTED = {RATE_LIMIT: "rate_limited", ERROR: "errors", DROP: "dropped", HANG: "hung"}


def _every(k: int) -> str:
    """ "every send", "every 2nd send", "every 11th send"."""
    if k == 1:
        return "every send"
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"every {k}{suffix} send"


def _header_text(text: str) -> str:
    """`text` as an HTTP status line or header can carry it (Latin-1, no control characters)."""
    # A key is whatever the client sent: a line break in it must not split the answer.
    return "".join(c if " " <= c <= "~" or "\xa0" <= c <= "\xff" else "?" for c in text)


def _invalid(name: str, value: object, expected: str) -> InputError:
    # The CLI maps one flag to each field (--rate-limit-every for rate_limit_every).
    flag = "--" + name.replace("_", "-")
    return InputError(f"sandbox fault {flag} is {value!r}; it must be {expected}")
