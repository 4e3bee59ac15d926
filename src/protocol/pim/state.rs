//! The request/activation state machine.
//!
//! A request is stored with one state; every change goes through
//! [`transition`] so that an impossible move (approving a cancelled request,
//! ending one that never started) is refused in one place. [`effective`] lets
//! readers see what time alone implies without writing anything back.

use chrono::{DateTime, Utc};

/// Where a request or activation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Approved,
    Active,
    Ended,
    Expired,
    Denied,
    Cancelled,
    Revoked,
}

impl State {
    /// Every state, in life order, for listings and exhaustive tests.
    pub const ALL: [State; 8] = [
        State::Pending,
        State::Approved,
        State::Active,
        State::Ended,
        State::Expired,
        State::Denied,
        State::Cancelled,
        State::Revoked,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Active => "active",
            State::Ended => "ended",
            State::Expired => "expired",
            State::Denied => "denied",
            State::Cancelled => "cancelled",
            State::Revoked => "revoked",
        }
    }

    /// The inverse of [`State::as_str`]; anything else is `None`.
    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// No event leaves a final state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            State::Ended | State::Expired | State::Denied | State::Cancelled | State::Revoked
        )
    }

    /// A window was granted and is not over yet.
    pub fn is_live(self) -> bool {
        matches!(self, State::Approved | State::Active)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// One approval recorded; `final_approval` when enough approvals are in, `started` when the start time has come.
    Approved { final_approval: bool, started: bool },
    /// Pending -> Denied.
    Denied,
    /// Pending|Approved -> Cancelled (requester withdraws before the window starts).
    Cancelled,
    /// Approved -> Active (start time reached).
    Started,
    /// Active -> Ended.
    EndedByUser,
    /// Active|Approved -> Ended (end time reached).
    WindowElapsed,
    /// Pending|Approved|Active -> Revoked (admin, or the user was disabled).
    Revoked,
    /// Pending -> Expired.
    PendingTimedOut,
}

impl Event {
    /// What the event would do to a request, phrased to follow "cannot".
    fn phrase(self) -> &'static str {
        match self {
            Event::Approved { .. } => "be approved",
            Event::Denied => "be denied",
            Event::Cancelled => "be cancelled",
            Event::Started => "be started",
            Event::EndedByUser => "be ended by the requester",
            Event::WindowElapsed => "reach the end of its window",
            Event::Revoked => "be revoked",
            Event::PendingTimedOut => "time out waiting for approval",
        }
    }
}

/// An event that does not apply to the state the request is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionError {
    pub from: State,
    pub event: Event,
}

impl std::fmt::Display for TransitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.from.as_str();
        let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        write!(f, "{article} {name} request cannot {}", self.event.phrase())
    }
}

impl std::error::Error for TransitionError {}

/// Approved from Pending: !final -> Pending; final && started -> Active; final && !started -> Approved.
pub fn transition(from: State, event: Event) -> Result<State, TransitionError> {
    use State as S;
    let to = match (from, event) {
        (
            S::Pending,
            Event::Approved {
                final_approval,
                started,
            },
        ) => match (final_approval, started) {
            (false, _) => S::Pending,
            (true, true) => S::Active,
            (true, false) => S::Approved,
        },
        (S::Pending, Event::Denied) => S::Denied,
        (S::Pending | S::Approved, Event::Cancelled) => S::Cancelled,
        (S::Approved, Event::Started) => S::Active,
        (S::Active, Event::EndedByUser) => S::Ended,
        (S::Active | S::Approved, Event::WindowElapsed) => S::Ended,
        (S::Pending | S::Approved | S::Active, Event::Revoked) => S::Revoked,
        (S::Pending, Event::PendingTimedOut) => S::Expired,
        _ => return Err(TransitionError { from, event }),
    };
    Ok(to)
}

/// The state time alone implies: Approved with starts_at <= now < ends_at is Active; Approved or Active with now >= ends_at is Ended; otherwise `stored`.
pub fn effective(
    stored: State,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> State {
    match stored {
        State::Approved | State::Active if now >= ends_at => State::Ended,
        State::Approved if starts_at <= now => State::Active,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    const fn approved(final_approval: bool, started: bool) -> Event {
        Event::Approved {
            final_approval,
            started,
        }
    }

    /// The table's columns: Approved with every flag combination, then the rest.
    const EVENTS: [Event; 11] = [
        approved(false, false),
        approved(false, true),
        approved(true, false),
        approved(true, true),
        Event::Denied,
        Event::Cancelled,
        Event::Started,
        Event::EndedByUser,
        Event::WindowElapsed,
        Event::Revoked,
        Event::PendingTimedOut,
    ];

    const X: Option<State> = None;
    const PE: Option<State> = Some(State::Pending);
    const AP: Option<State> = Some(State::Approved);
    const AC: Option<State> = Some(State::Active);
    const EN: Option<State> = Some(State::Ended);
    const EX: Option<State> = Some(State::Expired);
    const DE: Option<State> = Some(State::Denied);
    const CA: Option<State> = Some(State::Cancelled);
    const RV: Option<State> = Some(State::Revoked);

    /// Expected outcome per state and event (columns in `EVENTS` order:
    /// Approved ff, ft, tf, tt, Denied, Cancelled, Started, EndedByUser,
    /// WindowElapsed, Revoked, PendingTimedOut); `X` means refused.
    const TABLE: [(State, [Option<State>; 11]); 8] = [
        (State::Pending, [PE, PE, AP, AC, DE, CA, X, X, X, RV, EX]),
        (State::Approved, [X, X, X, X, X, CA, AC, X, EN, RV, X]),
        (State::Active, [X, X, X, X, X, X, X, EN, EN, RV, X]),
        (State::Ended, [X; 11]),
        (State::Expired, [X; 11]),
        (State::Denied, [X; 11]),
        (State::Cancelled, [X; 11]),
        (State::Revoked, [X; 11]),
    ];

    #[test]
    fn every_state_and_event_matches_the_table() {
        let rows: Vec<State> = TABLE.iter().map(|(s, _)| *s).collect();
        assert_eq!(rows, State::ALL, "one row per state");
        let mut checked = 0;
        for (from, outcomes) in TABLE {
            for (event, outcome) in EVENTS.into_iter().zip(outcomes) {
                let got = transition(from, event);
                match outcome {
                    Some(to) => assert_eq!(got, Ok(to), "{from:?} + {event:?}"),
                    None => assert_eq!(
                        got,
                        Err(TransitionError { from, event }),
                        "{from:?} + {event:?}"
                    ),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 88);
    }

    #[test]
    fn final_states_accept_nothing_and_live_ones_are_approved_or_active() {
        for s in State::ALL {
            if s.is_final() {
                assert!(EVENTS.iter().all(|e| transition(s, *e).is_err()));
            }
            assert_eq!(s.is_live(), matches!(s, State::Approved | State::Active));
            assert!(!(s.is_live() && s.is_final()));
        }
    }

    #[test]
    fn names_round_trip() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<State>(&json).unwrap(), s);
        }
        assert_eq!(State::parse("Pending"), None);
        assert_eq!(State::parse(""), None);
    }

    #[test]
    fn errors_read_as_sentences() {
        let e = transition(State::Cancelled, approved(true, false)).unwrap_err();
        assert_eq!(e.to_string(), "a cancelled request cannot be approved");
        let e = transition(State::Ended, Event::Revoked).unwrap_err();
        assert_eq!(e.to_string(), "an ended request cannot be revoked");
        let e = transition(State::Pending, Event::Started).unwrap_err();
        assert_eq!(e.to_string(), "a pending request cannot be started");
    }

    #[test]
    fn effective_around_start_and_end() {
        let start = Utc.with_ymd_and_hms(2026, 3, 30, 12, 30, 0).unwrap();
        let end = start + Duration::hours(1);
        let s = Duration::seconds(1);
        let at = |stored, now| effective(stored, start, end, now);

        assert_eq!(at(State::Approved, start - s), State::Approved);
        assert_eq!(at(State::Approved, start), State::Active);
        assert_eq!(at(State::Approved, start + s), State::Active);
        assert_eq!(at(State::Approved, end - s), State::Active);
        assert_eq!(at(State::Approved, end), State::Ended);
        assert_eq!(at(State::Approved, end + s), State::Ended);

        assert_eq!(at(State::Active, start - s), State::Active);
        assert_eq!(at(State::Active, end - s), State::Active);
        assert_eq!(at(State::Active, end), State::Ended);
        assert_eq!(at(State::Active, end + s), State::Ended);

        for stored in [
            State::Pending,
            State::Ended,
            State::Expired,
            State::Denied,
            State::Cancelled,
            State::Revoked,
        ] {
            for now in [start - s, start, start + s, end - s, end, end + s] {
                assert_eq!(at(stored, now), stored);
            }
        }
    }
}
