from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from pipelines.reasons import ReasonCode
from proxy_auth import (
    Binding,
    Carried,
    Consent,
    ConsentMethod,
    ProxyAuthError,
    ProxyPolicy,
    Relationship,
    carried_over,
    check_new_binding,
    check_relative_slot,
    needs_consent,
    record_failure,
    require_usable,
    reusable_consent,
)

T0 = dt.datetime(2026, 1, 5, 9, 0)
POLICY = ProxyPolicy()


def binding(
    relative: str,
    elder: str,
    *,
    ended: bool = False,
    consent: bool = True,
    flagged: bool = False,
    locked: bool = False,
    failures: int = 0,
    day: int = 0,
) -> Binding:
    return Binding(
        relative_id=relative,
        elder_id=elder,
        relationship=Relationship.CHILD,
        created_at=T0 + dt.timedelta(days=day),
        consent=Consent(ConsentMethod.LIVE_VIDEO, T0, "session-1") if consent else None,
        ended_at=T0 + dt.timedelta(days=day + 1) if ended else None,
        locked=locked,
        failures=failures,
        flagged=flagged,
    )


def limit_error(relative: str, elder: str, history: list[Binding], elder_bindings: list[Binding]) -> str:
    with pytest.raises(ProxyAuthError) as info:
        check_new_binding(relative, elder, history, elder_bindings, POLICY)
    assert info.value.reason is ReasonCode.PROXY_LIMIT_REACHED
    return info.value.detail


def test_five_active_bindings_per_relative() -> None:
    history = [binding("r1", f"e{i}") for i in range(4)]
    check_new_binding("r1", "e4", history, [], POLICY)  # the fifth is allowed
    history.append(binding("r1", "e4"))
    assert "5 active" in limit_error("r1", "e5", history, [])


def test_eight_bindings_in_a_lifetime_including_ended_ones() -> None:
    history = [binding("r1", f"e{i}", ended=True) for i in range(7)]
    check_new_binding("r1", "e7", history, [], POLICY)  # the eighth is allowed
    history.append(binding("r1", "e7", ended=True))
    assert "8 bindings" in limit_error("r1", "e8", history, [])
    # Unbinding and re-binding the same elder still counts: the history cannot be reset by churn.
    assert "8 bindings" in limit_error("r1", "e0", history, [])


def test_two_relatives_per_elder_at_a_time() -> None:
    elder_bindings = [binding("r1", "e1"), binding("r2", "e1")]
    assert "2 relatives" in limit_error("r3", "e1", [], elder_bindings)
    # After one unbinds, another relative may bind.
    elder_bindings[0] = binding("r1", "e1", ended=True)
    check_new_binding("r3", "e1", [], elder_bindings, POLICY)


def test_no_double_binding_and_no_self_binding() -> None:
    assert "already bound" in limit_error("r1", "e1", [binding("r1", "e1")], [binding("r1", "e1")])
    assert "own proxy" in limit_error("p1", "p1", [], [])


def test_consent_is_given_to_one_relative() -> None:
    assert needs_consent("r1", [])
    assert needs_consent("r1", [binding("r1", "e1", consent=False)])
    # The same relative binding again keeps the elder's consent, even after unbinding...
    assert not needs_consent("r1", [binding("r1", "e1", consent=True, ended=True)])
    # ...but another relative's consent, live or ended, is not theirs.
    assert needs_consent("r2", [binding("r1", "e1", consent=True)])
    assert needs_consent("r2", [binding("r1", "e1", consent=True, ended=True), binding("r2", "e1", consent=False)])
    # Once the relative filmed themselves, the elder must consent again.
    flagged = [binding("r1", "e1", flagged=True, ended=True), binding("r1", "e1", consent=True, day=2, ended=True)]
    assert needs_consent("r1", flagged)


def test_the_elders_withdrawal_is_carried_and_no_consent_before_it_is_reused() -> None:
    """The elder ended a binding of the relative (withdrew consent): a later binding of the pair reuses no consent
    given before that, of any of the pair's bindings; one given after it (the elder consented again) is reused."""
    earlier = binding("r1", "e1", consent=True, ended=True)  # consented at T0, unbound by the relative
    ended_by_elder = replace(binding("r1", "e1", consent=True, day=2, ended=True), withdrawn=True)
    kept = carried_over("r1", [earlier, ended_by_elder])
    assert kept.withdrawn_at == T0 + dt.timedelta(days=3)
    assert not needs_consent("r1", [earlier])  # today's rule: her own earlier consent is reused
    assert needs_consent("r1", [earlier, ended_by_elder], kept.withdrawn_at)
    assert reusable_consent("r1", [earlier, ended_by_elder], kept.withdrawn_at) is None
    anew = Consent(ConsentMethod.STAFF_APPROVAL, T0 + dt.timedelta(days=5), "staff-1")
    later = replace(binding("r1", "e1", day=4, ended=True), consent=anew)
    assert reusable_consent("r1", [earlier, ended_by_elder, later], kept.withdrawn_at) == anew
    assert carried_over("r2", [ended_by_elder]).withdrawn_at is None  # another relative's is not theirs


def test_binding_again_carries_the_pairs_record() -> None:
    assert carried_over("r1", []) == Carried()
    history = [
        binding("r1", "e1", flagged=True, locked=False, failures=0, ended=True),
        binding("r2", "e1", locked=True, failures=3),  # another relative's record is theirs
        binding("r1", "e1", locked=True, failures=3, day=3, ended=True),
    ]
    assert carried_over("r1", history) == Carried(failures=3, locked=True, flagged=True)
    # The latest binding's failures and lock count (staff unlock resets them there); a flag is never dropped.
    history.append(binding("r1", "e1", failures=1, day=5, ended=True))
    assert carried_over("r1", history) == Carried(failures=1, locked=False, flagged=True)
    assert carried_over("r3", history) == Carried()


def test_repeated_failures_lock_the_binding() -> None:
    b = binding("r1", "e1")
    for _ in range(POLICY.failures_before_lock - 1):
        b = record_failure(b, POLICY)
        assert require_usable(b) is b
    b = record_failure(b, POLICY)
    assert b.locked
    with pytest.raises(ProxyAuthError) as info:
        require_usable(b)
    assert info.value.reason is ReasonCode.ATTEMPTS_EXCEEDED
    with pytest.raises(ProxyAuthError) as info:
        require_usable(binding("r1", "e1", ended=True))
    assert info.value.reason is ReasonCode.PROXY_NOT_BOUND


def test_a_binding_waiting_for_consent_holds_no_slot() -> None:
    """Strangers who know the elder's name and number can ask to bind; until the elder consents they take no slot,
    so a real child can still bind and be consented to; the slot is counted again when consent is given."""
    elder = [binding("daughter", "E", day=1), binding("stranger-1", "E", consent=False, day=2)]
    elder.append(binding("stranger-2", "E", consent=False, day=3))
    check_new_binding("son", "E", [], elder, POLICY)  # two pending strangers: the son may still bind
    check_relative_slot("son", elder, POLICY)  # and be consented to (daughter + son = 2)
    elder.append(binding("son", "E", day=4))
    with pytest.raises(ProxyAuthError) as info:
        check_relative_slot("stranger-1", elder, POLICY)  # consenting to a third is refused
    assert info.value.reason is ReasonCode.PROXY_LIMIT_REACHED
    with pytest.raises(ProxyAuthError):
        check_new_binding("stranger-3", "E", [], elder, POLICY)  # and so is a new binding once full
    check_relative_slot("son", elder, POLICY)  # a relative's own consented binding is not "another" relative


def test_another_account_of_the_person_may_bind_the_elder_again() -> None:
    """The person's history (all accounts) counts for the limits; only the binding account's live binding of the
    elder refuses another (a lost phone's binding nobody can end must not keep the relative out)."""
    t = dt.datetime(2026, 1, 1)
    old_phone = Binding("person", "E", Relationship.CHILD, t, None)
    check_new_binding("person", "E", [old_phone], [], POLICY, account_history=[])
    with pytest.raises(ProxyAuthError):
        check_new_binding("person", "E", [old_phone], [], POLICY)
    five = [Binding("person", f"e{i}", Relationship.CHILD, t, None) for i in range(5)]
    with pytest.raises(ProxyAuthError):  # the active limit counts every account's bindings
        check_new_binding("person", "E", five, [], POLICY, account_history=[])
