//! The cockpit: a ratatui screen over the release engine.

pub mod app;
pub mod canary;
pub mod command;
pub mod detail;
pub mod footer;
pub mod help;
pub mod keymap;
pub mod logs;
pub mod run;
pub mod theme;
pub mod ui;
