//! Nothing here: the check lives in `tests/`.
