//! Donations through Stripe: creating Checkout Sessions, verifying and parsing webhooks.
//!
//! No IO beyond the one Stripe API call and no store access: the routes combine these pieces with the
//! ledger. The flow:
//!
//! 1. [`checkout::create_checkout_session`] asks Stripe for a hosted Checkout page for the configured
//!    donation, tagged with the account; the player is sent to its URL.
//! 2. Stripe calls the webhook. [`signature::verify_signature`] checks the `Stripe-Signature` header
//!    over the raw body before anything else looks at it; [`events::parse_event`] turns the verified
//!    body into an [`events::Effect`] (grant, refund, dispute or nothing) keyed by the event id, which
//!    the store applies exactly once.
//!
//! [`fake::FakeStripe`] stands in for Stripe's API in tests; it is compiled into the library (not only
//! under `cfg(test)`) so other crates' integration tests can use it.

pub mod checkout;
pub mod events;
pub mod fake;
pub mod signature;

pub use checkout::{CheckoutSession, DonationConfig, PaymentError, create_checkout_session};
pub use events::{Effect, EventError, ParsedEvent, parse_event};
pub use signature::{DEFAULT_TOLERANCE_SECS, SignatureError, sign, verify_signature};
