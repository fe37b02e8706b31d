//! Command and HTTP actions, timeouts, process groups, output streaming, audit log.
