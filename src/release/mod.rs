//! Releases: the resolved [`plan`], the pure [`engine`], canary
//! [`analysis`] and the [`journal`].

pub mod analysis;
pub mod engine;
pub mod journal;
pub mod nonfinite;
pub mod plan;

pub use analysis::{CheckDef, Measurement, Reading, TrackResult, Verdict, VerdictKind};
pub use engine::{
    Command, Effect, Event, Issued, Notice, Outcome, Phase, ProbeKind, Release, StepRef, StepStatus,
};
pub use plan::{Plan, Step, StepAction, Trigger};
