//! The in-process API of [`MockEntra`](crate::MockEntra), one file per concern.
//! Setup steps panic with a clear message on misuse (a bug in the test); the control
//! API offers the same steps over HTTP with 400 answers instead.

pub(crate) mod browser;
mod directory;
mod identity;
mod keys;
mod log;
mod settings;
