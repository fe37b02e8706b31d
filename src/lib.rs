//! rolldeck — a terminal cockpit for releases and incidents.
//!
//! The library holds everything the `rolldeck` binary drives:
//! [`config`] (TOML schema and validation with `file:line:col` errors),
//! [`release`] (the pure release engine, canary analysis, journal),
//! [`sources`] (Prometheus, direct scrape, HTTP health),
//! [`docker`] (containers per track through the Docker Engine API),
//! [`exec`] (command and HTTP actions, audit log),
//! [`runbook`] (Markdown runbooks: sections, runnable blocks, checks, progress),
//! [`incident`] (incidents and their durable timeline),
//! [`runtime`] (the I/O around the engine: headless runs, lock, status),
//! [`units`] (numbers shown to people, in their unit)
//! and [`demo`] (the embedded demo environment).
#![forbid(unsafe_code)]

pub mod config;
pub mod control;
pub mod demo;
pub mod docker;
pub mod exec;
pub mod incident;
pub mod migrations;
pub mod preflight;
pub mod redact;
pub mod release;
pub mod runbook;
pub mod runtime;
pub mod sources;
pub mod store;
pub mod tui;
pub mod units;
