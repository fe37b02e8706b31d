//! The embedded demo environment.
