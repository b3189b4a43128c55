//! The one place that decides whether a trace is kept. Every span block passes through
//! [`RoutingPolicy::decide`] before it is written, so the sampling policy of issue 7 plugs in here.
//! Today the policy keeps everything: session traces always (that never changes), and other traffic too
//! until a ratio is configured.

/// Why a trace was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepReason {
    Session,
    Error,
    Policy,
}

/// The decision for one trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Keep(KeepReason),
    Drop,
}

/// What the router knows of a trace when it decides.
#[derive(Debug, Clone, Copy)]
pub struct TraceFacts<'a> {
    pub trace_id: &'a [u8; 16],
    pub is_session: bool,
    pub has_error: bool,
}

/// The configured policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingPolicy {
    /// Share of non-session, non-error traces kept, 0.0 to 1.0.
    pub sampling_ratio: f64,
}

impl Default for RoutingPolicy {
    fn default() -> Self {
        RoutingPolicy { sampling_ratio: 1.0 }
    }
}

impl RoutingPolicy {
    /// Decides one trace. The probability is consistent: it reads the trace id's last 8 bytes (random in
    /// W3C ids), so every replica decides the same trace the same way.
    pub fn decide(&self, facts: TraceFacts<'_>) -> Decision {
        if facts.is_session {
            return Decision::Keep(KeepReason::Session);
        }
        if facts.has_error {
            return Decision::Keep(KeepReason::Error);
        }
        if self.sampling_ratio >= 1.0 {
            return Decision::Keep(KeepReason::Policy);
        }
        let random = u64::from_be_bytes(facts.trace_id[8..].try_into().expect("8 bytes"));
        let threshold = (self.sampling_ratio.max(0.0) * u64::MAX as f64) as u64;
        if random < threshold { Decision::Keep(KeepReason::Policy) } else { Decision::Drop }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_and_errors_are_always_kept() {
        let policy = RoutingPolicy { sampling_ratio: 0.0 };
        let id = [7u8; 16];
        let facts = TraceFacts { trace_id: &id, is_session: true, has_error: false };
        assert_eq!(policy.decide(facts), Decision::Keep(KeepReason::Session));
        let facts = TraceFacts { trace_id: &id, is_session: false, has_error: true };
        assert_eq!(policy.decide(facts), Decision::Keep(KeepReason::Error));
        let facts = TraceFacts { trace_id: &id, is_session: false, has_error: false };
        assert_eq!(policy.decide(facts), Decision::Drop);
    }

    #[test]
    fn ratio_is_roughly_honoured() {
        let policy = RoutingPolicy { sampling_ratio: 0.25 };
        let kept = (0..20_000u64)
            .filter(|i| {
                let mut id = [1u8; 16];
                id[8..].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
                policy.decide(TraceFacts { trace_id: &id, is_session: false, has_error: false }) != Decision::Drop
            })
            .count();
        assert!((4_500..5_500).contains(&kept), "kept {kept}");
    }
}
