"""Retries only where nothing was sent: scripted errors, then the real Textlocal client."""

from __future__ import annotations

import random

import pytest
import requests
import responses
from responses.registries import OrderedRegistry
from urllib3.exceptions import MaxRetryError, NewConnectionError

from pipeline.errors import NotSentError, OutcomeUnknown, ProviderError
from pipeline.providers.textlocal.client import (
    DEFAULT_BASE_URL,
    Accepted,
    Outgoing,
    RateLimited,
    TextlocalClient,
)
from pipeline.sending.retry import RetryPolicy, call_with_retries, retry_after

SEED = 1234


class Script:
    """A fake provider call: raises or returns the scripted outcomes in order."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class Sleeps(list):
    """An injected sleep that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


# -- the policy ---------------------------------------------------------------------------


def test_defaults():
    assert RetryPolicy() == RetryPolicy(attempts=5, base=0.5, cap=30.0, max_retry_after=120.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 0},
        {"base": -1.0},
        {"cap": float("inf")},
        {"max_retry_after": float("nan")},
    ],
)
def test_policy_rejects_nonsense(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)


def test_backoff_ceiling_doubles_then_caps():
    policy = RetryPolicy(base=0.5, cap=30.0)
    assert [policy.backoff_ceiling(n) for n in range(8)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        30.0,
        30.0,
    ]
    assert policy.backoff_ceiling(5000) == 30.0  # no OverflowError for absurd attempts
    with pytest.raises(ValueError):
        policy.backoff_ceiling(-1)


@pytest.mark.parametrize("attempt", [0, 1, 3, 6, 10])
def test_full_jitter_spans_zero_to_ceiling(attempt):
    policy = RetryPolicy(base=0.5, cap=30.0)
    ceiling = min(30.0, 0.5 * 2**attempt)
    rng = random.Random(SEED)
    draws = [policy.delay(attempt, NotSentError("refused"), rng) for _ in range(5000)]
    assert min(draws) >= 0.0
    assert max(draws) <= ceiling
    # Full jitter, not "equal jitter" or a fixed delay: the draws fill the whole range.
    assert min(draws) < 0.01 * ceiling
    assert max(draws) > 0.99 * ceiling
    assert 0.45 * ceiling < sum(draws) / len(draws) < 0.55 * ceiling


def test_delay_is_random_uniform_on_the_injected_rng():
    policy = RetryPolicy(base=0.5, cap=30.0)
    expected = random.Random(SEED).uniform(0.0, 4.0)
    assert policy.delay(3, NotSentError("refused"), random.Random(SEED)) == expected


def test_delay_honours_retry_after_exactly():
    policy = RetryPolicy()
    assert policy.delay(0, RateLimited("429", retry_after=3), random.Random(SEED)) == 3.0
    assert policy.delay(4, RateLimited("429", retry_after=0.25), random.Random(SEED)) == 0.25


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RateLimited("429", retry_after=7), 7.0),
        (RateLimited("429", retry_after=-3.0), 0.0),
        (RateLimited("429", retry_after=None), None),
        (RateLimited("429", retry_after=float("nan")), None),
        (NotSentError("refused"), None),
    ],
)
def test_retry_after_of_an_error(error, expected):
    assert retry_after(error) == expected


# -- call_with_retries with a scripted fn -------------------------------------------------


def test_success_first_time_never_sleeps(sleeps):
    fn = Script("ok")
    assert call_with_retries(fn, sleep=sleeps) == "ok"
    assert (fn.calls, sleeps) == (1, [])


def test_not_sent_twice_then_value(sleeps):
    fn = Script(NotSentError("refused"), NotSentError("refused"), "ok")
    assert call_with_retries(fn, sleep=sleeps, rng=random.Random(SEED)) == "ok"
    assert fn.calls == 3
    rng = random.Random(SEED)
    assert sleeps == [rng.uniform(0, 0.5), rng.uniform(0, 1.0)]


def test_rate_limited_waits_exactly_retry_after(sleeps):
    fn = Script(RateLimited("429", retry_after=3), "ok")
    assert call_with_retries(fn, sleep=sleeps, rng=random.Random(SEED)) == "ok"
    assert fn.calls == 2
    assert sleeps == [3.0]


@pytest.mark.parametrize("retries", [1, 2, 3])
def test_rate_limited_without_retry_after_backs_off(sleeps, retries):
    fn = Script(*[RateLimited("429", retry_after=None)] * retries, "ok")
    policy = RetryPolicy(base=0.5, cap=30.0)
    assert call_with_retries(fn, policy, sleep=sleeps, rng=random.Random(SEED)) == "ok"
    assert len(sleeps) == retries
    for n, slept in enumerate(sleeps):
        assert 0.0 <= slept <= 0.5 * 2**n
    rng = random.Random(SEED)
    assert sleeps == [rng.uniform(0, 0.5 * 2**n) for n in range(retries)]


@pytest.mark.parametrize(
    "error",
    [
        OutcomeUnknown("read timed out: may have been sent"),
        ProviderError("Textlocal error 7: Insufficient credits", code=7),
        ValueError("a bug"),
        KeyboardInterrupt(),
    ],
)
def test_anything_but_not_sent_is_raised_at_once(sleeps, error):
    fn = Script(error, "never reached")
    retries = []
    with pytest.raises(type(error)) as info:
        call_with_retries(fn, sleep=sleeps, on_retry=lambda *a: retries.append(a))
    assert info.value is error
    assert (fn.calls, sleeps, retries) == (1, [], [])


def test_outcome_unknown_after_a_retry_is_not_retried_again(sleeps):
    fn = Script(NotSentError("refused"), OutcomeUnknown("reset"), "never reached")
    with pytest.raises(OutcomeUnknown):
        call_with_retries(fn, sleep=sleeps, rng=random.Random(SEED))
    assert (fn.calls, len(sleeps)) == (2, 1)


def test_attempts_exhausted_reraises_the_last_not_sent(sleeps):
    errors = [NotSentError(f"refused #{n}") for n in range(4)]
    fn = Script(*errors, "never reached")
    with pytest.raises(NotSentError) as info:
        call_with_retries(fn, RetryPolicy(attempts=4), sleep=sleeps, rng=random.Random(SEED))
    assert info.value is errors[-1]
    assert fn.calls == 4
    assert len(sleeps) == 3


def test_a_single_attempt_never_retries(sleeps):
    error = NotSentError("refused")
    fn = Script(error, "never reached")
    with pytest.raises(NotSentError) as info:
        call_with_retries(fn, RetryPolicy(attempts=1), sleep=sleeps)
    assert info.value is error
    assert (fn.calls, sleeps) == (1, [])


def test_retry_after_over_the_maximum_gives_up_without_sleeping(sleeps):
    error = RateLimited("429", retry_after=121)
    fn = Script(error, "never reached")
    with pytest.raises(RateLimited) as info:
        call_with_retries(fn, RetryPolicy(max_retry_after=120), sleep=sleeps)
    assert info.value is error
    assert (fn.calls, sleeps) == (1, [])


def test_retry_after_at_the_maximum_is_waited(sleeps):
    fn = Script(RateLimited("429", retry_after=120), "ok")
    assert call_with_retries(fn, RetryPolicy(max_retry_after=120), sleep=sleeps) == "ok"
    assert sleeps == [120.0]


def test_retry_after_is_not_capped_by_the_backoff_cap(sleeps):
    fn = Script(RateLimited("429", retry_after=45), "ok")
    assert call_with_retries(fn, RetryPolicy(cap=1.0), sleep=sleeps) == "ok"
    assert sleeps == [45.0]


def test_backoff_never_exceeds_the_cap(sleeps):
    fn = Script(*[NotSentError("refused")] * 11, "ok")
    policy = RetryPolicy(attempts=12, base=1.0, cap=2.5)
    assert call_with_retries(fn, policy, sleep=sleeps, rng=random.Random(SEED)) == "ok"
    assert len(sleeps) == 11
    assert all(0.0 <= s <= 2.5 for s in sleeps)
    assert max(sleeps[2:]) > 1.0  # past the first doubling the cap, not base * 2**n, binds


def test_on_retry_sees_attempt_error_and_delay_before_sleeping(sleeps):
    first, second = RateLimited("429", retry_after=2), NotSentError("refused")
    fn = Script(first, second, "ok")
    events = []

    def on_retry(attempt, error, delay):
        events.append((attempt, error, delay, len(sleeps)))

    call_with_retries(fn, sleep=sleeps, rng=random.Random(SEED), on_retry=on_retry)
    assert events == [(0, first, 2.0, 0), (1, second, sleeps[1], 1)]


def test_ctrl_c_during_the_sleep_propagates():
    def interrupted(seconds):
        raise KeyboardInterrupt

    fn = Script(NotSentError("refused"), "never reached")
    with pytest.raises(KeyboardInterrupt):
        call_with_retries(fn, sleep=interrupted, rng=random.Random(SEED))
    assert fn.calls == 1


def test_default_rng_and_policy_work(sleeps):
    fn = Script(NotSentError("refused"), "ok")
    assert call_with_retries(fn, sleep=sleeps) == "ok"
    assert len(sleeps) == 1 and 0.0 <= sleeps[0] <= 0.5


# -- with the real Textlocal client, HTTP faked at the transport ---------------------------

BULK = DEFAULT_BASE_URL + "bulk_json/"
KEY = "test-key-123"
NUMBER = "919876543210"
BULK_OK = {
    "status": "success",
    "test": False,
    "balance_pre_send": 10,
    "total_cost": 1,
    "balance_post_send": 9,
    "messages": [
        {
            "balance": 9,
            "batch_id": 596486325,
            "cost": 1,
            "num_messages": 1,
            "message": {"num_parts": 1, "sender": "ABCDEF", "content": "Hi"},
            "receipt_url": "",
            "custom": "",
            "messages": [{"id": 77, "recipient": NUMBER}],
        }
    ],
}
ACCEPTED = {NUMBER: Accepted(NUMBER, "77", "596486325", 1)}


def _refused() -> requests.ConnectionError:
    """The chain requests raises for "connection refused" (providers/test_textlocal.py)."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    return requests.ConnectionError(MaxRetryError(None, "/bulk_json/", reason))


def _send(sleeps: Sleeps, policy: RetryPolicy | None = None):
    with TextlocalClient(KEY) as client:
        return call_with_retries(
            lambda: client.send_bulk([Outgoing(NUMBER, "Hi")], sender="ABCDEF"),
            policy or RetryPolicy(),
            sleep=sleeps,
            rng=random.Random(SEED),
        )


@responses.activate(registry=OrderedRegistry, assert_all_requests_are_fired=True)
def test_http_connection_refused_twice_then_sent_once(sleeps):
    responses.post(BULK, body=_refused())
    responses.post(BULK, body=_refused())
    responses.post(BULK, json=BULK_OK)
    result = _send(sleeps)
    assert result.accepted == ACCEPTED
    assert len(responses.calls) == 3
    outcomes = [type(c.response).__name__ for c in responses.calls]
    assert outcomes == ["ConnectionError", "ConnectionError", "Response"]
    assert responses.calls[2].response.status_code == 200
    rng = random.Random(SEED)
    assert sleeps == [rng.uniform(0, 0.5), rng.uniform(0, 1.0)]


@responses.activate(registry=OrderedRegistry, assert_all_requests_are_fired=True)
def test_http_connection_refused_every_time_is_not_sent(sleeps):
    for _ in range(3):
        responses.post(BULK, body=_refused())
    with pytest.raises(NotSentError) as info:
        _send(sleeps, RetryPolicy(attempts=3))
    assert type(info.value) is NotSentError
    assert "nothing was sent" in str(info.value)
    assert len(responses.calls) == 3
    assert len(sleeps) == 2


@responses.activate(registry=OrderedRegistry, assert_all_requests_are_fired=True)
def test_http_429_retry_after_then_sent(sleeps):
    responses.post(BULK, status=429, headers={"Retry-After": "2"}, json={})
    responses.post(BULK, json=BULK_OK)
    result = _send(sleeps)
    assert result.accepted == ACCEPTED
    assert sleeps == [2.0]
    assert [c.response.status_code for c in responses.calls] == [429, 200]


@responses.activate(registry=OrderedRegistry, assert_all_requests_are_fired=True)
def test_http_429_without_retry_after_backs_off(sleeps):
    responses.post(BULK, status=429, json={})
    responses.post(BULK, json=BULK_OK)
    assert _send(sleeps).accepted == ACCEPTED
    assert sleeps == [random.Random(SEED).uniform(0, 0.5)]
    assert len(responses.calls) == 2


def _not_retried(sleeps: Sleeps, first: dict, expected: type[Exception]) -> Exception:
    """Serve `first` then a 200; the call must fail with `expected` and leave the 200 unused."""
    with responses.RequestsMock(
        registry=OrderedRegistry, assert_all_requests_are_fired=False
    ) as rsps:
        rsps.post(BULK, **first)
        # A retry would get this 200 and succeed, so pytest.raises below would fail.
        rsps.post(BULK, json=BULK_OK)
        with pytest.raises(expected) as info:
            _send(sleeps)
        assert len(rsps.calls) == 1
        assert [r.call_count for r in rsps.registered()] == [0]  # the 200 was never fetched
    assert sleeps == []
    return info.value


def test_http_500_is_outcome_unknown_and_not_retried(sleeps):
    error = _not_retried(sleeps, {"status": 500, "body": "oops"}, OutcomeUnknown)
    assert "HTTP 500" in str(error)


def test_http_read_timeout_is_outcome_unknown_and_not_retried(sleeps):
    error = _not_retried(
        sleeps, {"body": requests.exceptions.ReadTimeout("read timed out")}, OutcomeUnknown
    )
    assert "ReadTimeout" in str(error)


def test_http_garbage_body_is_outcome_unknown_and_not_retried(sleeps):
    error = _not_retried(
        sleeps, {"status": 200, "body": "<html>Bad gateway</html>"}, OutcomeUnknown
    )
    assert "not JSON" in str(error)


def test_http_failure_envelope_is_provider_error_and_not_retried(sleeps):
    body = {"status": "failure", "errors": [{"code": 7, "message": "Insufficient credits"}]}
    error = _not_retried(sleeps, {"json": body}, ProviderError)
    assert error.code == 7


def test_http_429_retry_after_too_long_gives_up(sleeps):
    error = _not_retried(
        sleeps, {"status": 429, "headers": {"Retry-After": "600"}, "json": {}}, RateLimited
    )
    assert error.retry_after == 600.0
