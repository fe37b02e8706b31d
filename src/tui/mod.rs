//! The cockpit: a ratatui screen over the release engine.

pub mod app;
pub mod attach;
pub mod canary;
pub mod clock;
pub mod command;
pub mod containers;
pub mod desk;
pub mod detail;
pub mod footer;
pub mod help;
pub mod keymap;
pub mod logs;
pub mod run;
pub mod runbook;
pub mod screen;
pub mod theme;
pub mod ui;
