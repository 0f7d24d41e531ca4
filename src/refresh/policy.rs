//! The decision for one peer at one pass, as a pure function of plain values, so that every
//! case (a DNS change before or during refresh, a roam, a stale handshake, no endpoint yet) is
//! one row of a table test.

use std::net::SocketAddr;

/// Why a peer's endpoint is pushed or left as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The device has no endpoint (the name did not resolve at up): set one.
    NoEndpoint,
    /// The answer no longer has the baseline: the name moved, followed at once.
    DnsChanged,
    /// The live endpoint is not among the answers and the handshake is stale.
    Stale,
    /// The live endpoint is among the answers: nothing to do.
    Current,
    /// The answer still has the baseline, the live endpoint is elsewhere and the handshake is
    /// fresh: the peer roamed, left alone.
    Roamed,
    /// The answer moved but the peer has no refresh period: not followed.
    NotFollowed,
    /// No baseline yet (a record of an older wg-exec) and a fresh handshake elsewhere: left
    /// alone, and the answer becomes the baseline.
    Adopted,
}

/// What to do with one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The endpoint to set; None: the live one stays.
    pub push: Option<SocketAddr>,
    /// The baseline from now on.
    pub baseline: Option<SocketAddr>,
    pub why: Why,
}

/// Decides for a peer whose name answered `answer` (not empty): `baseline` is what the name
/// resolved to before (at up, a reload, or refresh's last push), `live` the device's endpoint,
/// `stale` whether its handshake is older than 135 s (or never was), `follow` whether the peer
/// has a refresh period (without one, 0, a name is only set where the device has no endpoint or
/// its handshake is stale, never followed to a new answer).
///
/// A roam is a live endpoint that differs from the baseline while the answer still has the
/// baseline; it is fought only when the handshake is stale. A change of the answer is followed
/// whenever it happened, also before this refresh started (the baseline is persisted).
pub fn decide(
    baseline: Option<SocketAddr>,
    answer: &[SocketAddr],
    live: Option<SocketAddr>,
    stale: bool,
    follow: bool,
) -> Decision {
    let Some(&first) = answer.first() else {
        return Decision {
            push: None,
            baseline,
            why: Why::Current,
        };
    };
    let pick = prefer(answer, live);
    let push = |why| Decision {
        push: Some(pick),
        baseline: Some(pick),
        why,
    };
    let keep = |baseline, why| Decision {
        push: None,
        baseline,
        why,
    };
    let Some(live) = live else {
        return push(Why::NoEndpoint);
    };
    if answer.contains(&live) {
        // Round-robin answers: the baseline stays while the answer has it.
        let base = baseline.filter(|b| answer.contains(b)).unwrap_or(live);
        return keep(Some(base), Why::Current);
    }
    match baseline {
        Some(b) if follow && !answer.contains(&b) => push(Why::DnsChanged),
        _ if stale => push(Why::Stale),
        Some(b) if answer.contains(&b) => keep(Some(b), Why::Roamed),
        Some(b) => keep(Some(b), Why::NotFollowed),
        None => keep(Some(first), Why::Adopted),
    }
}

/// The address to use: one of the same family as the live endpoint when there is one, else the
/// first.
pub fn prefer(addrs: &[SocketAddr], live: Option<SocketAddr>) -> SocketAddr {
    live.and_then(|l| addrs.iter().find(|a| a.is_ipv4() == l.is_ipv4()).copied())
        .unwrap_or(addrs[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    type Addr = Option<SocketAddr>;
    /// (baseline, answer, live, stale) -> (push, baseline, why)
    type Row = (Addr, Vec<SocketAddr>, Addr, bool, Addr, Addr, Why);

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_decision_table() {
        let (old, new, roam) = (
            a("203.0.113.2:51821"),
            a("203.0.113.3:51821"),
            a("203.0.113.9:51821"),
        );
        let other = a("203.0.113.4:51821");
        // (baseline, answer, live, stale) -> (push, baseline, why)
        #[rustfmt::skip]
        let table: &[Row] = &[
            // Nothing changed.
            (Some(old), vec![old], Some(old), false, None, Some(old), Why::Current),
            (Some(old), vec![old], Some(old), true, None, Some(old), Why::Current),
            // The name moved before refresh started, or while it ran: followed at once,
            // fresh handshake or not.
            (Some(old), vec![new], Some(old), false, Some(new), Some(new), Why::DnsChanged),
            (Some(old), vec![new], Some(old), true, Some(new), Some(new), Why::DnsChanged),
            // The name moved and the peer had roamed: the new answer wins.
            (Some(old), vec![new], Some(roam), false, Some(new), Some(new), Why::DnsChanged),
            // A roam: the answer still has the baseline. Left alone while the handshake is
            // fresh (also by a restarted refresh, which reads the baseline back).
            (Some(old), vec![old], Some(roam), false, None, Some(old), Why::Roamed),
            (Some(new), vec![new], Some(roam), false, None, Some(new), Why::Roamed),
            // ... and replaced once it is stale.
            (Some(old), vec![old], Some(roam), true, Some(old), Some(old), Why::Stale),
            // The name moved to where the peer already is: nothing to push, a new baseline.
            (Some(old), vec![new], Some(new), false, None, Some(new), Why::Current),
            // Round-robin: the live endpoint is one of the answers, the baseline stays.
            (Some(old), vec![old, other], Some(other), false, None, Some(old), Why::Current),
            (Some(old), vec![other, old], Some(old), false, None, Some(old), Why::Current),
            // No endpoint yet (no DNS at up): the answer is set.
            (None, vec![new], None, true, Some(new), Some(new), Why::NoEndpoint),
            (Some(old), vec![new], None, true, Some(new), Some(new), Why::NoEndpoint),
            // No baseline (a record of an older wg-exec): the stale rule alone, then the answer
            // becomes the baseline.
            (None, vec![new], Some(roam), false, None, Some(new), Why::Adopted),
            (None, vec![new], Some(roam), true, Some(new), Some(new), Why::Stale),
            (None, vec![new], Some(new), false, None, Some(new), Why::Current),
        ];
        for (i, (baseline, answer, live, stale, push, next, why)) in table.iter().enumerate() {
            assert_eq!(
                decide(*baseline, answer, *live, *stale, true),
                Decision {
                    push: *push,
                    baseline: *next,
                    why: *why
                },
                "row {i}: baseline {baseline:?}, answer {answer:?}, live {live:?}, stale {stale}"
            );
        }
    }

    #[test]
    fn without_a_period_a_name_is_set_but_not_followed() {
        let (old, new) = (a("203.0.113.2:51821"), a("203.0.113.3:51821"));
        let d = decide(Some(old), &[new], Some(old), false, false);
        assert_eq!(
            (d.push, d.baseline, d.why),
            (None, Some(old), Why::NotFollowed)
        );
        // A stale handshake and no endpoint still get the answer, as with a period.
        let d = decide(Some(old), &[new], Some(old), true, false);
        assert_eq!((d.push, d.why), (Some(new), Why::Stale));
        let d = decide(None, &[new], None, true, false);
        assert_eq!((d.push, d.why), (Some(new), Why::NoEndpoint));
    }

    #[test]
    fn the_same_family_is_preferred() {
        let v4 = a("203.0.113.5:51820");
        let v6 = a("[2001:db8::5]:51820");
        assert_eq!(prefer(&[v6, v4], Some(a("203.0.113.9:51820"))), v4);
        assert_eq!(prefer(&[v6, v4], None), v6);
        // A DNS change to another family: pushed in the family the name has now.
        assert_eq!(
            decide(
                Some(a("203.0.113.9:51820")),
                &[v6],
                Some(a("203.0.113.9:51820")),
                false,
                true
            )
            .push,
            Some(v6)
        );
    }
}
