//! ReferrerPolicy evaluation. `pods`, `selector`, `glob`, `compile`, `select`, `requirement`
//! and `evaluate` are pure; the controller and `refwarden evaluate` feed them pods and
//! discovery results.

pub mod compile;
pub mod evaluate;
pub mod glob;
pub mod pods;
pub mod requirement;
pub mod run;
pub mod select;
pub mod selector;
pub mod status;
pub mod trust;
pub mod verification;

#[cfg(test)]
mod tests;

pub use evaluate::{
    COMPLIANT, CompiledPolicy, Evaluation, InvalidSpec, NamespaceLabels, Selection, compile,
    invalid_spec_status, judge, select, selects_pod, status,
};
pub use pods::{ImageKey, PodInfo};
pub use run::{PolicyInput, PolicyResult, evaluate_policy};
pub use trust::TrustObjects;
pub use verification::Verifier;
