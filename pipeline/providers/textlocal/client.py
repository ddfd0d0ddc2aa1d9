"""The Textlocal (India) HTTP client: one session, a timeout on every call, no retries.

Failures are sorted by how the caller recovers (pipeline/errors.py):

    ProviderError   Textlocal answered "failure" (bad key, no credits, bad sender) or HTTP 4xx
    NotSentError    the request never left: connection refused, DNS failure, connect timeout
      RateLimited     HTTP 429: nothing was done; `retry_after` seconds, when the server said
    OutcomeUnknown  it may have been sent: read timeout, reset after sending, HTTP 5xx, bad JSON

Read-only calls (balance, status, history) map failures the same way; their messages say that
the call itself sent nothing.
The API key travels only in the POST body (docs/contract.md, "Secrets and privacy"): never in
a URL, a header, a log line, an exception or a repr. A provider or a proxy may quote it back
(raw, URL-encoded, in any case), so `_read` scrubs what comes back before anything reads it:
the reason phrase, Retry-After and every key and string of the JSON body. Retrying is the
batch layer's call, never this module's (docs/provider-api.md, "Rate limits and retries").
Reading the answers (JSON bodies into results and errors) is answers.py.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
import urllib3.exceptions

from pipeline.errors import InputError, NotSentError, OutcomeUnknown, ProviderError
from pipeline.net.servers import is_loopback_host
from pipeline.privacy import MIN_KEY_LENGTH, secret_pattern
from pipeline.providers.base import Accepted, BulkResponse, HistoryMessage, Outgoing, Refused
from pipeline.providers.textlocal.answers import (
    READ_ADVICE,
    as_int,
    failure_error,
    history_message,
    parse_balance,
    parse_bulk,
    retry_after,
    scrub_json,
    sketch,
    unexpected,
)
from pipeline.settings import BULK_LIMIT

__all__ = [
    "API_KEY_ENV",
    "BULK_LIMIT",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "Accepted",
    "BulkResponse",
    "HistoryMessage",
    "Outgoing",
    "RateLimited",
    "Refused",
    "TextlocalClient",
    "api_key_from_env",
]

DEFAULT_BASE_URL = "https://api.textlocal.in/"
POOL_SIZE = 16  # the most requests `send` keeps in flight (cli: --concurrency 1-16)
HISTORY_MAX_PAGES = 1000  # 1M messages at the default page size: the job's design size
READ_COMMANDS = frozenset(
    {"balance", "status_batch", "status_message", "get_history_api", "sandbox_account"}
)
API_KEY_ENV = "TEXTLOCAL_API_KEY"
# (connect, read) seconds. The read timeout is long: a 500-message bulk_json request may take
# a while to answer, and a read timeout makes its rows "unknown" (docs/contract.md,
# "Sending, journal and resume").
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 60.0)

MISSING_KEY = (
    f"{API_KEY_ENV} is not set: export it (or put it in a git-ignored .env file) to send "
    "through Textlocal; use --provider sandbox to rehearse"
)


class RateLimited(NotSentError):
    """HTTP 429: the request was turned away unprocessed; wait `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TextlocalClient:
    """A Textlocal API session; use as a context manager or call `close()`.

    `timeout` is (connect, read) seconds, or one number for both [default: DEFAULT_TIMEOUT].
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float | tuple[float, float] | None = None,
        session: requests.Session | None = None,
    ) -> None:
        if not api_key or not api_key.strip():
            raise InputError(MISSING_KEY)
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError(
                f"base URL {base_url!r} is not an http(s) URL: pass --base-url (or set "
                f"TEXTLOCAL_BASE_URL) like {DEFAULT_BASE_URL}"
            )
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            # The key travels in every POST body: over plain http anyone on the path reads it.
            raise InputError(
                f"base URL {base_url!r} is plain http to another machine, so the API key would "
                "cross the network unencrypted: use https://, or reach a remote sandbox "
                "through a tunnel to 127.0.0.1"
            )
        self._api_key = api_key.strip()
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        if session is None:
            session = requests.Session()
            # One pooled connection per request in flight: `send --concurrency` goes up to 16,
            # past requests' default pool of 10 (which would drop and reopen connections).
            adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=POOL_SIZE)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self._session = session

    def __repr__(self) -> str:
        return f"TextlocalClient(base_url={self.base_url!r})"

    def __enter__(self) -> TextlocalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the session's connections."""
        self._session.close()

    def send_bulk(
        self,
        messages: Sequence[Outgoing],
        *,
        sender: str | None,
        test: bool = False,
        schedule_time: int | None = None,
        optouts: bool = False,
        receipt_url: str | None = None,
    ) -> BulkResponse:
        """Send up to BULK_LIMIT personalised messages in one `/bulk_json/` request.

        `schedule_time` (unix seconds, GMT) asks Textlocal to send them then instead of now;
        `optouts=True` makes it skip numbers on the account's and the global opt-out lists;
        `receipt_url` is where Textlocal POSTs each message's delivery receipt
        (docs/provider-api.md, "Delivery receipts").
        """
        if schedule_time is not None and (
            isinstance(schedule_time, bool)
            or not isinstance(schedule_time, int)
            or schedule_time < 0
        ):
            raise ValueError(
                f"schedule_time must be unix seconds (an int >= 0), not {schedule_time!r}"
            )
        if receipt_url and not _is_http_url(receipt_url):
            raise ValueError(f"receipt_url must be an http(s) URL, not {receipt_url!r}")
        if not messages:
            raise ValueError("send_bulk needs at least one message")
        if len(messages) > BULK_LIMIT:
            raise ValueError(f"{len(messages)} messages in one request; at most {BULK_LIMIT}")
        numbers = [m.number for m in messages]
        if len(set(numbers)) != len(numbers):
            # The answer is keyed by number, so a repeat could not be told apart.
            raise ValueError("the same number appears twice in one send_bulk request")
        data: dict[str, Any] = {}
        if sender is not None:
            data["sender"] = sender
        data["test"] = bool(test)
        # bulk_json's docs name only "sender, force or test" as top-level parameters; we
        # assume it takes /send/'s `schedule_time` and `optouts` there too
        # (docs/provider-api.md, "Sending with /bulk_json/"). Each is sent only when asked
        # for, so a request without them is exactly what it always was.
        if schedule_time is not None:
            data["schedule_time"] = schedule_time
        if optouts:
            data["optouts"] = True
        if receipt_url:
            # /send/'s per-request `receipt_url` as a top-level bulk_json key (assumed): one
            # client spells it `receiptUrl`; the sandbox takes both.
            data["receipt_url"] = receipt_url
        if any(_is_unicode(m.text) for m in messages):
            data["unicode"] = True  # bulk_json's optional "unicode" flag, documented
        data["messages"] = [_wire_message(m) for m in messages]
        body = self._post("bulk_json", {"data": json.dumps(data, ensure_ascii=False)})
        return parse_bulk(body)

    def balance(self) -> int:
        """SMS credits left on the account (`/balance/`)."""
        return parse_balance(self._post("balance", {}))

    def sandbox_account(self) -> str:
        """The account id of an smsbatch sandbox (its own `/sandbox_account/`, not Textlocal's).

        A sandbox that does not answer it (an older one) is named by its host: one imitation
        account per machine, so rehearsals are never taken for real sends.
        """
        try:
            account = self._post("sandbox_account", {}).get("account")
        except (ProviderError, NotSentError, OutcomeUnknown):
            account = None
        if isinstance(account, str) and account.startswith("sandbox:"):
            return account
        return f"sandbox@{urllib.parse.urlsplit(self.base_url).hostname}"

    def status_batch(self, batch_id: str) -> dict[str, Any]:
        """Delivery status of every message in a batch (docs/provider-api.md, "Status of a
        batch")."""
        return self._post("status_batch", {"batch_id": str(batch_id)})

    def status_message(self, message_id: str) -> dict[str, Any]:
        """Delivery status of one message (docs/provider-api.md, "Status of one message")."""
        return self._post("status_message", {"message_id": str(message_id)})

    def history(
        self,
        *,
        min_time: int | None = None,
        max_time: int | None = None,
        page_size: int = 1000,
        max_pages: int = HISTORY_MAX_PAGES,
    ) -> list[HistoryMessage]:
        """Every message Textlocal sent between unix times `min_time` and `max_time`, oldest first.

        Pages through `/get_history_api/` (docs/provider-api.md, "Message history") until its
        `total` is reached. The result is complete or an error is raised, because
        reconciliation reads a missing message as "not sent": needing more than `max_pages`
        pages, or a page that ends before `total`, is a ProviderError. Test-mode messages are
        never in Textlocal's history.
        """
        for name, value in (("min_time", min_time), ("max_time", max_time)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(f"{name} must be unix seconds (an int >= 0), not {value!r}")
        for name, value in (("page_size", page_size), ("max_pages", max_pages)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, not {value!r}")
        window: dict[str, str] = {}
        if min_time is not None:
            window["min_time"] = str(min_time)
        if max_time is not None:
            window["max_time"] = str(max_time)
        found: dict[str, HistoryMessage] = {}
        start = 0
        for _ in range(max_pages):
            # Oldest first: messages sent while we page land after our offset, not before it.
            # (Were sort_order ignored, the offsets still hold while nothing new is sent, and
            # a message seen twice is kept once.)
            body = self._post(
                "get_history_api",
                {"start": str(start), "limit": str(page_size), **window, "sort_order": "asc"},
            )
            page = body.get("messages")
            total = as_int(body.get("total"))
            if not isinstance(page, list):
                raise unexpected("answer from Textlocal /get_history_api/", body, read=True)
            for item in page:
                message = history_message(item)
                found.setdefault(message.message_id, message)  # a repeat across pages: once
            start += len(page)
            if total is None and not page:
                return list(found.values())  # no total given: an empty page is the end
            if total is not None and start >= total:
                return list(found.values())
            if total is not None and not page:
                raise ProviderError(
                    f"Textlocal /get_history_api/ stopped at {start} of the {total} messages "
                    "it reported: its history is incomplete, so rerun in a few minutes"
                )
        raise ProviderError(
            f"Textlocal /get_history_api/ still had messages after {max_pages} pages "
            f"of {page_size}: narrow the time window (min_time/max_time) and rerun"
        )

    # -- transport ------------------------------------------------------------------------

    def _post(self, command: str, fields: Mapping[str, str]) -> dict[str, Any]:
        """POST form fields (with the key) to `{base_url}{command}/`; the success body."""
        url = urllib.parse.urljoin(self.base_url, f"{command}/")
        where = f"Textlocal /{command}/"
        read = command in READ_COMMANDS
        # Every error below is raised outside the `except` that found it, so it has no
        # __context__: a requests exception holds the PreparedRequest, whose body is the key
        # (docs/contract.md, "Secrets and privacy"). Nothing that reaches a caller, a log or a
        # traceback can reach it.
        failure: Exception | None = None
        try:
            # No redirects: a 30x would either drop the POST body or replay the key elsewhere.
            response = self._session.post(
                url,
                data={"apikey": self._api_key, **fields},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            failure = self._transport_error(where, exc, read=read)
        if failure is not None:
            raise failure from None
        body = self._read(where, response, read=read)
        if body["status"] == "failure":
            failure = failure_error(body, self._scrub)
            del body, response  # a provider may quote the key back: keep it out of the frame
            raise failure
        return body

    def _read(self, where: str, response: requests.Response, *, read: bool) -> dict[str, Any]:
        """The JSON envelope of an answer, key scrubbed, or the error its HTTP status means."""
        status, reason = response.status_code, self._scrub(str(response.reason))
        unknown = READ_ADVICE if read else "the messages may or may not have been sent"
        if status == 429:
            # Never held unscrubbed in a local: this frame's locals travel with the error.
            wait_for = retry_after(self._mask(response.headers.get("Retry-After", "")))
            wait = f"wait {wait_for:g} s" if wait_for is not None else "wait a little"
            raise RateLimited(
                f"{where} answered HTTP 429 {reason} (too many requests, nothing "
                f"sent): {wait} and rerun",
                retry_after=wait_for,
            )
        if status >= 500:
            check = "" if read else "; check the Textlocal history before resending"
            raise OutcomeUnknown(f"{where} answered HTTP {status} {reason}: {unknown}{check}")
        if not 200 <= status < 300:
            raise ProviderError(
                f"{where} answered HTTP {status} {reason}: check --base-url / "
                f"TEXTLOCAL_BASE_URL points at {DEFAULT_BASE_URL} (and the key's IP restriction)"
            )
        body: object = None
        try:
            body = response.json()
            is_json = True
        except ValueError:
            is_json = False  # raised below, outside this `except`: no __context__
        if not is_json:
            raise OutcomeUnknown(
                f"{where} answered HTTP {status} {reason} with a body that is not JSON: {unknown}"
            ) from None
        # Here, before any reader: the ids, refusal texts, history and sketches built from
        # the body reach the journal, the workbook and error messages.
        body = scrub_json(body, self._mask)
        if not isinstance(body, dict) or body.get("status") not in ("success", "failure"):
            raise OutcomeUnknown(
                f"{where} answered HTTP {status} {reason} with unexpected JSON "
                f"{sketch(body)}: {unknown}"
            )
        return body

    def _transport_error(
        self, where: str, exc: requests.RequestException, *, read: bool = False
    ) -> Exception:
        """Sort a requests exception into NotSentError / OutcomeUnknown, key scrubbed."""
        detail = self._scrub(f"{type(exc).__name__}: {exc}")
        if _never_connected(exc):
            return NotSentError(
                f"could not reach {where} ({detail}): nothing was sent; check the network "
                "and --base-url, then rerun"
            )
        if read:
            return OutcomeUnknown(f"{where} did not answer ({detail}): {READ_ADVICE}")
        return OutcomeUnknown(
            f"{where} did not answer ({detail}): the messages may or may not have been sent; "
            "check the Textlocal history before resending"
        )

    def _scrub(self, text: str) -> str:
        """`text` on one line with the API key (raw or URL-encoded in any way, any case) masked."""
        return " ".join(secret_pattern(self._api_key).sub("***", text).split())

    def _mask(self, text: str) -> str:
        """Answer data `text` with the API key masked as in `_scrub`, its spacing kept."""
        # Data, unlike an error text, must survive: a history message's text is compared with
        # what was sent, and a key shorter than any real one (a test's "k") would eat words.
        if len(self._api_key) < MIN_KEY_LENGTH:
            return text
        return secret_pattern(self._api_key).sub("***", text)


def api_key_from_env(environ: Mapping[str, str] | None = None) -> str:
    """TEXTLOCAL_API_KEY from `environ` (default: os.environ after loading ./.env)."""
    if environ is None:
        import dotenv

        # Only the current directory's .env, never one found by walking up (docs/contract.md,
        # "Secrets and privacy").
        dotenv.load_dotenv(Path.cwd() / ".env", override=False)
        environ = os.environ
    key = (environ.get(API_KEY_ENV) or "").strip()
    if not key:
        raise InputError(MISSING_KEY)
    return key


# -- helpers ------------------------------------------------------------------------------


def _is_unicode(text: str) -> bool:
    """Whether `text` needs UCS-2 (a character outside GSM 03.38; docs/provider-api.md,
    "Message length, encoding and credits")."""
    from pipeline.sms.gsm import encoding_of  # lazily: keeps importing this module cheap

    return encoding_of(text) != "GSM-7"


def _is_http_url(url: object) -> bool:
    """Whether `url` is an absolute http(s) URL with a host."""
    if not isinstance(url, str):
        return False
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _wire_message(message: Outgoing) -> dict[str, str]:
    """One element of bulk_json's `messages` array."""
    if not message.number.isdigit():
        raise ValueError(f"number {message.number!r} is not in wire form (digits only)")
    # The bulk_json doc sample rawurlencode()s each text and Textlocal decodes it once more
    # (docs/provider-api.md, "Sending with /bulk_json/"; still an open question there):
    # quote() with safe="" is PHP's rawurlencode, so `%`, `+` and `&` survive the double
    # decoding.
    item = {"number": message.number, "text": urllib.parse.quote(message.text, safe="")}
    if message.custom is not None:
        item["custom"] = message.custom
    return item


def _never_connected(exc: BaseException) -> bool:
    """True when the failure happened before any byte of the request left (safe to resend)."""
    if isinstance(
        exc,
        requests.ConnectTimeout
        | requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema,
    ):
        return True
    # requests wraps urllib3's MaxRetryError(reason=NewConnectionError | NameResolutionError);
    # anything else (reset, aborted, read errors) may come after the body was sent.
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
            return True
        if isinstance(current, urllib3.exceptions.ProtocolError):
            return False
        stack.extend(current.args)
        stack.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
    return False
