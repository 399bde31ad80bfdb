//! Redundant collection and takeover (`[cluster] membership = "jetstream"`).
//!
//! Every instance plans every configured symbol (connections grouped per
//! symbol) and collects those it owns: rendezvous top-`replicas` over
//! itself and the alive, warm members of a JetStream key-value bucket
//! ([`members`]). Each core keeps an ownership table ([`owned`]) that its
//! sessions and polls wait on, and runs a task ([`run`]) that reads the
//! bucket and applies the rule; core 0 also keeps the instance's key alive.
//! A symbol taken over first seeds trade continuity from the last trade
//! the stream holds ([`seed`]), so the REST backfill fetches exactly what
//! the stream lacks. Static mode uses none of this at run time.

pub mod build;
pub mod check;
pub mod members;
pub mod owned;
pub mod run;
pub mod seed;
