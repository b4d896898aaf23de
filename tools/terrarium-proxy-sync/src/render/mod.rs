//! Pure renderers: plan in, file contents out.

pub mod dynamic;
pub mod entrypoints;
pub mod oauth2_proxy;
