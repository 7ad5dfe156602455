//! The order lifecycle as a state machine, and the lifecycles of payments and returns.
//!
//! Every change of state goes through [`OrderStatus::apply`] (or its siblings), which returns
//! the next state or refuses the event; code that stores a status never computes one itself,
//! so an illegal transition cannot be written. Property tests at the bottom drive random
//! event sequences through the machines.

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    PartiallyFulfilled,
    Fulfilled,
    Delivered,
    Cancelled,
    PartiallyRefunded,
    Refunded,
}

/// What can happen to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderEvent {
    /// The payment succeeded.
    PaymentSucceeded,
    /// The payment failed or timed out, or the customer or an admin cancelled before paying.
    Cancel,
    /// A shipment left; `all_shipped` when every fulfilment group has now shipped.
    Shipped { all_shipped: bool },
    /// Every shipment arrived.
    Delivered,
    /// Money went back to the customer; `in_full` when the whole paid amount is refunded.
    Refunded { in_full: bool },
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 8] = [
        Self::PendingPayment,
        Self::Paid,
        Self::PartiallyFulfilled,
        Self::Fulfilled,
        Self::Delivered,
        Self::Cancelled,
        Self::PartiallyRefunded,
        Self::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingPayment => "pending_payment",
            Self::Paid => "paid",
            Self::PartiallyFulfilled => "partially_fulfilled",
            Self::Fulfilled => "fulfilled",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Invalid::new("status", format!("unknown order status {s:?}")))
    }

    /// Whether money was taken for this order (and not all of it given back).
    pub fn is_paid(self) -> bool {
        matches!(
            self,
            Self::Paid
                | Self::PartiallyFulfilled
                | Self::Fulfilled
                | Self::Delivered
                | Self::PartiallyRefunded
        )
    }

    /// The state after `event`, or `None` when the event is illegal in this state.
    pub fn apply(self, event: OrderEvent) -> Option<OrderStatus> {
        use OrderEvent as E;
        use OrderStatus as S;
        Some(match (self, event) {
            (S::PendingPayment, E::PaymentSucceeded) => S::Paid,
            (S::PendingPayment, E::Cancel) => S::Cancelled,
            (S::Paid | S::PartiallyFulfilled, E::Shipped { all_shipped: false }) => {
                S::PartiallyFulfilled
            }
            (S::Paid | S::PartiallyFulfilled, E::Shipped { all_shipped: true }) => S::Fulfilled,
            (S::Fulfilled, E::Delivered) => S::Delivered,
            // A paid order can be refunded at any point after payment: before shipping (a
            // cancellation with money back), after delivery (a return), or in parts.
            (
                S::Paid
                | S::PartiallyFulfilled
                | S::Fulfilled
                | S::Delivered
                | S::PartiallyRefunded,
                E::Refunded { in_full },
            ) => {
                if in_full {
                    S::Refunded
                } else {
                    S::PartiallyRefunded
                }
            }
            _ => return None,
        })
    }
}

/// A payment's state at the provider, as Emporium knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Created in Emporium; the provider has not answered yet.
    Pending,
    /// The customer must complete a challenge (3-D Secure style).
    RequiresAction,
    /// The provider is working on it and will report by webhook.
    Processing,
    Succeeded,
    Failed,
    /// Cancelled before money moved.
    Voided,
    PartiallyRefunded,
    Refunded,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 8] = [
        Self::Pending,
        Self::RequiresAction,
        Self::Processing,
        Self::Succeeded,
        Self::Failed,
        Self::Voided,
        Self::PartiallyRefunded,
        Self::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::RequiresAction => "requires_action",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Voided => "voided",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Invalid::new("status", format!("unknown payment status {s:?}")))
    }

    /// Not yet decided: the provider may still report success or failure.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Self::Pending | Self::RequiresAction | Self::Processing
        )
    }

    /// Money was captured (some of it may have been given back).
    pub fn captured(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::PartiallyRefunded | Self::Refunded
        )
    }

    /// Whether the provider's report `next` may replace this state. Reports arrive late,
    /// twice and out of order: a decided payment never goes back to an open state, and a
    /// failure never overrides a capture.
    pub fn accepts(self, next: PaymentStatus) -> bool {
        use PaymentStatus as P;
        match (self, next) {
            (a, b) if a == b => false,
            (P::Pending, _) => next != P::Pending,
            (P::RequiresAction | P::Processing, P::Pending) => false,
            (P::RequiresAction | P::Processing, _) => true,
            (P::Succeeded | P::PartiallyRefunded, P::PartiallyRefunded | P::Refunded) => true,
            // A payment Emporium gave up on (timeout) that the provider later captured:
            // the capture is the truth, and reconciliation refunds it.
            (P::Failed | P::Voided, P::Succeeded) => true,
            _ => false,
        }
    }
}

/// A return of delivered items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReturnStatus {
    Requested,
    Approved,
    Rejected,
    Received,
    Refunded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnEvent {
    Approve,
    Reject,
    Receive,
    Refund,
}

impl ReturnStatus {
    pub const ALL: [ReturnStatus; 5] = [
        Self::Requested,
        Self::Approved,
        Self::Rejected,
        Self::Received,
        Self::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Received => "received",
            Self::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Invalid::new("status", format!("unknown return status {s:?}")))
    }

    pub fn apply(self, event: ReturnEvent) -> Option<ReturnStatus> {
        use ReturnEvent as E;
        use ReturnStatus as S;
        Some(match (self, event) {
            (S::Requested, E::Approve) => S::Approved,
            (S::Requested, E::Reject) => S::Rejected,
            (S::Approved, E::Receive) => S::Received,
            (S::Received, E::Refund) => S::Refunded,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event() -> impl Strategy<Value = OrderEvent> {
        prop_oneof![
            Just(OrderEvent::PaymentSucceeded),
            Just(OrderEvent::Cancel),
            any::<bool>().prop_map(|all_shipped| OrderEvent::Shipped { all_shipped }),
            Just(OrderEvent::Delivered),
            any::<bool>().prop_map(|in_full| OrderEvent::Refunded { in_full }),
        ]
    }

    fn payment_status() -> impl Strategy<Value = PaymentStatus> {
        proptest::sample::select(PaymentStatus::ALL.to_vec())
    }

    proptest! {
        /// Whatever happens, in any order: an order is paid at most once, never ships
        /// unpaid, never leaves a terminal state, and never returns to pending payment.
        #[test]
        fn no_sequence_of_events_reaches_an_illegal_state(events in proptest::collection::vec(event(), 0..40)) {
            let mut status = OrderStatus::PendingPayment;
            let mut payments = 0;
            for e in events {
                let before = status;
                if let Some(next) = status.apply(e) {
                    if e == OrderEvent::PaymentSucceeded { payments += 1; }
                    prop_assert!(next != OrderStatus::PendingPayment);
                    prop_assert!(!matches!(before, OrderStatus::Cancelled | OrderStatus::Refunded), "{before:?} is terminal");
                    if matches!(next, OrderStatus::PartiallyFulfilled | OrderStatus::Fulfilled | OrderStatus::Delivered) {
                        prop_assert!(before.is_paid(), "shipped from {before:?}");
                    }
                    if next == OrderStatus::Cancelled {
                        prop_assert_eq!(before, OrderStatus::PendingPayment, "only unpaid orders are cancelled without a refund");
                    }
                    status = next;
                }
            }
            prop_assert!(payments <= 1);
        }

        /// Reports of a payment in any order and any number of times: once captured, it is
        /// never failed or reopened; once decided, never open again.
        #[test]
        fn payment_reports_never_undo_a_capture(reports in proptest::collection::vec(payment_status(), 0..30)) {
            let mut status = PaymentStatus::Pending;
            for next in reports {
                let before = status;
                if before.accepts(next) {
                    prop_assert!(!before.captured() || next.captured(), "{before:?} -> {next:?}");
                    prop_assert!(before.is_open() || !next.is_open(), "{before:?} -> {next:?}");
                    status = next;
                }
            }
        }

        #[test]
        fn returns_move_forward_only(events in proptest::collection::vec(proptest::sample::select(vec![ReturnEvent::Approve, ReturnEvent::Reject, ReturnEvent::Receive, ReturnEvent::Refund]), 0..20)) {
            let mut status = ReturnStatus::Requested;
            let mut seen = vec![status];
            for e in events {
                if let Some(next) = status.apply(e) {
                    prop_assert!(!seen.contains(&next), "{next:?} reached twice");
                    seen.push(next);
                    status = next;
                }
            }
            if seen.contains(&ReturnStatus::Refunded) {
                prop_assert!(seen.contains(&ReturnStatus::Received));
            }
        }
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Ok(s));
        }
        for s in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(s.as_str()), Ok(s));
        }
        for s in ReturnStatus::ALL {
            assert_eq!(ReturnStatus::parse(s.as_str()), Ok(s));
        }
        assert!(OrderStatus::parse("shipped-ish").is_err());
    }

    #[test]
    fn the_happy_path_is_allowed() {
        let s = OrderStatus::PendingPayment;
        let s = s.apply(OrderEvent::PaymentSucceeded);
        let s = s.and_then(|s| s.apply(OrderEvent::Shipped { all_shipped: false }));
        let s = s.and_then(|s| s.apply(OrderEvent::Shipped { all_shipped: true }));
        let s = s.and_then(|s| s.apply(OrderEvent::Delivered));
        assert_eq!(s, Some(OrderStatus::Delivered));
        assert_eq!(
            OrderStatus::Delivered.apply(OrderEvent::Refunded { in_full: false }),
            Some(OrderStatus::PartiallyRefunded)
        );
        assert_eq!(
            OrderStatus::Cancelled.apply(OrderEvent::PaymentSucceeded),
            None
        );
    }
}
