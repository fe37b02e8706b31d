//! Themes and keymap through the public API: the built-in themes, theme
//! files and their errors, NO_COLOR, the default keymap, overrides, help,
//! footer and the `:` command line.

use std::collections::HashSet;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Color, Modifier, Style};
use rolldeck::tui::keymap::{
    Action, CommandLine, Context, HelpGroup, KeyCombo, Keymap, KeymapError, parse_command,
};
use rolldeck::tui::theme::{Theme, ThemeError};

use rolldeck::tui::screen::NAMED_COLOURS as NAMED_16;

fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
    KeyEvent::new(code, modifiers)
}

// ---- themes ----

#[test]
fn every_builtin_theme_loads() {
    assert_eq!(
        Theme::builtin_names(),
        ["dark", "light", "high-contrast", "ansi16", "mono"]
    );
    for name in Theme::builtin_names() {
        let theme = Theme::builtin(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(theme.name, *name);
        assert_eq!(Theme::load(name).unwrap(), theme);
        assert_eq!(theme.slots().len(), Theme::SLOT_NAMES.len());
    }
    assert!(Theme::builtin("solarized").is_none());
}

#[test]
fn theme_files_in_the_repo_are_the_builtins() {
    // Users copy these files; what they copy must be what they see.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/themes");
    for name in Theme::builtin_names() {
        let path = format!("{dir}/{name}.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# rolldeck theme"), "{path} has no header");
        for slot in Theme::SLOT_NAMES {
            assert!(
                text.contains(&format!("#   {slot} ")),
                "{path} header skips {slot}"
            );
        }
        assert_eq!(Theme::load(&path).unwrap(), Theme::builtin(name).unwrap());
    }
}

#[test]
fn ansi16_uses_only_the_sixteen_named_colours() {
    let theme = Theme::builtin("ansi16").unwrap();
    for (slot, style) in theme.slots() {
        for colour in [style.fg, style.bg, style.underline_color]
            .into_iter()
            .flatten()
        {
            assert!(
                colour == Color::Reset || NAMED_16.contains(&colour),
                "ansi16.{slot} uses {colour:?}"
            );
        }
    }
}

#[test]
fn mono_has_no_colours() {
    let mono = Theme::builtin("mono").unwrap();
    assert!(mono.monochrome);
    for (slot, style) in mono.slots() {
        assert_eq!(style.fg, None, "mono.{slot}");
        assert_eq!(style.bg, None, "mono.{slot}");
        assert_eq!(style.underline_color, None, "mono.{slot}");
    }
    assert!(
        mono.crit
            .add_modifier
            .contains(Modifier::BOLD | Modifier::REVERSED)
    );
    assert!(mono.warn.add_modifier.contains(Modifier::BOLD));
    assert_eq!(mono.ok, Style::new());
    assert!(mono.selection.add_modifier.contains(Modifier::REVERSED));
    assert!(
        mono.danger_env
            .add_modifier
            .contains(Modifier::BOLD | Modifier::REVERSED | Modifier::UNDERLINED)
    );
}

#[test]
fn no_color_selects_mono() {
    for requested in [
        None,
        Some("dark"),
        Some("light"),
        Some("/no/such/theme.toml"),
    ] {
        let theme = Theme::select(requested, true).unwrap();
        assert_eq!(theme.name, "mono", "{requested:?}");
        assert!(theme.monochrome);
    }
    assert_eq!(Theme::select(None, false).unwrap().name, "dark");
    assert_eq!(Theme::select(Some("light"), false).unwrap().name, "light");
}

#[test]
fn unknown_slot_is_an_error_with_a_suggestion() {
    let err =
        Theme::from_toml("mine", "ok = { fg = \"green\" }\ncirt = { bold = true }\n").unwrap_err();
    match &err {
        ThemeError::UnknownSlot {
            slot,
            suggestion,
            line,
            ..
        } => {
            assert_eq!(slot, "cirt");
            assert_eq!(suggestion.as_deref(), Some("crit"));
            assert_eq!(*line, 2);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("did you mean `crit`"), "{err}");

    let err = Theme::from_toml("mine", "ok = { forground = \"green\" }").unwrap_err();
    assert!(
        matches!(&err, ThemeError::UnknownKey { key, .. } if key == "forground"),
        "{err}"
    );
}

#[test]
fn bad_colour_is_an_error() {
    for (value, expect) in [
        ("gren", "did you mean `green`"),
        ("#12345", "#rrggbb"),
        ("indexed:300", "0 to 255"),
        ("chartreuse-ish", "unknown colour"),
    ] {
        let err = Theme::from_toml("mine", &format!("warn = {{ fg = \"{value}\" }}")).unwrap_err();
        assert!(
            matches!(&err, ThemeError::BadColour { slot, key, .. } if *slot == "warn" && *key == "fg"),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains(value) && text.contains(expect), "{text}");
    }
}

#[test]
fn user_theme_file_overrides_and_falls_back_to_dark() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pager.toml");
    std::fs::write(
        &path,
        "crit = { fg = \"white\", bg = \"red\", bold = true }\nmuted = { fg = \"indexed:244\" }\n",
    )
    .unwrap();
    let theme = Theme::load(path.to_str().unwrap()).unwrap();
    let dark = Theme::builtin("dark").unwrap();
    assert_eq!(theme.name, "pager");
    assert_eq!(
        theme.crit,
        Style::new()
            .fg(Color::White)
            .bg(Color::Red)
            .add_modifier(Modifier::BOLD)
    );
    assert_eq!(theme.muted, Style::new().fg(Color::Indexed(244)));
    assert_eq!(theme.ok, dark.ok);
    assert_eq!(theme.selection, dark.selection);

    std::fs::write(&path, "ok = { fg = \"green\" }\n\nbogus = {}\n").unwrap();
    let err = Theme::load(path.to_str().unwrap()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:3:", path.display())),
        "{err}"
    );
}

#[test]
fn unknown_theme_name_suggests_a_builtin() {
    let err = Theme::load("ligth").unwrap_err();
    assert!(err.to_string().contains("did you mean `light`"), "{err}");
}

// ---- keymap ----

#[test]
fn rollback_and_help_resolve_in_every_context() {
    let map = Keymap::default_map();
    let big_r = press(KeyCode::Char('R'), KeyModifiers::SHIFT);
    let small_r = press(KeyCode::Char('r'), KeyModifiers::NONE);
    let help = press(KeyCode::Char('?'), KeyModifiers::SHIFT);
    for context in Context::ALL {
        assert_eq!(
            map.action(context, &big_r),
            Some(Action::Rollback),
            "{context}"
        );
        assert_eq!(map.action(context, &help), Some(Action::Help), "{context}");
        // Lower-case r must never roll back.
        assert_ne!(
            map.action(context, &small_r),
            Some(Action::Rollback),
            "{context}"
        );
    }
}

#[test]
fn default_keys_follow_k9s_conventions() {
    let map = Keymap::default_map();
    let g = Context::Global;
    let cases = [
        (KeyCode::Char(':'), KeyModifiers::NONE, Action::CommandMode),
        (KeyCode::Char('/'), KeyModifiers::NONE, Action::Filter),
        (KeyCode::Esc, KeyModifiers::NONE, Action::Back),
        (KeyCode::Tab, KeyModifiers::NONE, Action::NextPane),
        (KeyCode::BackTab, KeyModifiers::SHIFT, Action::PrevPane),
        (KeyCode::Char('3'), KeyModifiers::NONE, Action::FocusPane(3)),
        (KeyCode::Char('z'), KeyModifiers::NONE, Action::Zoom),
        (KeyCode::Char('q'), KeyModifiers::NONE, Action::Quit),
        (KeyCode::Char('j'), KeyModifiers::NONE, Action::Down),
        (KeyCode::Up, KeyModifiers::NONE, Action::Up),
        (KeyCode::PageDown, KeyModifiers::NONE, Action::PageDown),
        (KeyCode::Char('g'), KeyModifiers::NONE, Action::Top),
        (KeyCode::Char('G'), KeyModifiers::SHIFT, Action::Bottom),
        (KeyCode::Enter, KeyModifiers::NONE, Action::Select),
        (KeyCode::Char('a'), KeyModifiers::NONE, Action::Approve),
        (KeyCode::Char('p'), KeyModifiers::NONE, Action::PauseResume),
        (KeyCode::Char('P'), KeyModifiers::SHIFT, Action::Promote),
        (KeyCode::Char('F'), KeyModifiers::SHIFT, Action::PromoteFull),
        (KeyCode::Char('w'), KeyModifiers::NONE, Action::SetWeight),
        (KeyCode::Char('t'), KeyModifiers::NONE, Action::Retry),
        (KeyCode::Char('A'), KeyModifiers::SHIFT, Action::Abort),
        (KeyCode::Char('r'), KeyModifiers::CONTROL, Action::Refresh),
    ];
    for (code, modifiers, action) in cases {
        assert_eq!(
            map.action(g, &press(code, modifiers)),
            Some(action),
            "{code:?}"
        );
    }
    let logs = Context::Logs;
    for (c, action) in [
        ('f', Action::LogFollow),
        ('W', Action::LogWrap),
        ('T', Action::LogTimestamps),
        ('s', Action::LogSave),
    ] {
        assert_eq!(
            map.action(logs, &press(KeyCode::Char(c), KeyModifiers::NONE)),
            Some(action)
        );
    }
    // Log keys do nothing outside the logs pane; `w` is still set-weight there.
    assert_eq!(
        map.action(g, &press(KeyCode::Char('f'), KeyModifiers::NONE)),
        None
    );
    assert_eq!(
        map.action(logs, &press(KeyCode::Char('w'), KeyModifiers::NONE)),
        Some(Action::SetWeight)
    );
}

#[test]
fn context_binding_shadows_global() {
    let map = Keymap::default_map();
    let q = press(KeyCode::Char('q'), KeyModifiers::NONE);
    assert_eq!(map.action(Context::Global, &q), Some(Action::Quit));
    assert_eq!(map.action(Context::Canary, &q), Some(Action::Quit));
    assert_eq!(map.action(Context::Popup, &q), Some(Action::Back));
}

#[test]
fn overrides_replace_keys() {
    let config: toml::Table =
        toml::from_str("[keys]\nrollback = [\"ctrl-x\"]\napprove = [\"a\", \"y\"]\n").unwrap();
    let map = Keymap::default_map().with_overrides(&config).unwrap();
    assert_eq!(
        map.keys_for(Action::Rollback),
        vec!["ctrl-x".parse::<KeyCombo>().unwrap()]
    );
    assert_eq!(
        map.keys_for(Action::Approve)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["a", "y"]
    );
    let big_r = press(KeyCode::Char('R'), KeyModifiers::SHIFT);
    assert_eq!(map.action(Context::Global, &big_r), None);
    let ctrl_x = press(KeyCode::Char('x'), KeyModifiers::CONTROL);
    assert_eq!(map.action(Context::Canary, &ctrl_x), Some(Action::Rollback));
    // The footer and help follow the override.
    assert!(
        map.footer(Context::Global)
            .contains(&("ctrl-x".into(), "rollback".into()))
    );
    let incident = &map.help()[0].1;
    assert!(incident.iter().any(|(keys, _)| keys == "ctrl-x"));
}

#[test]
fn unknown_action_name_suggests() {
    let config: toml::Table = toml::from_str("[keys]\nrolback = [\"X\"]\n").unwrap();
    let err = Keymap::default_map().with_overrides(&config).unwrap_err();
    assert_eq!(
        err,
        KeymapError::UnknownAction {
            name: "rolback".into(),
            suggestion: Some("rollback".into())
        }
    );
    assert!(err.to_string().contains("did you mean `rollback`"));

    let config: toml::Table = toml::from_str("[keys]\nrollback = [\"ctrl-bogus\"]\n").unwrap();
    let err = Keymap::default_map().with_overrides(&config).unwrap_err();
    assert!(
        matches!(&err, KeymapError::BadKey { action: Action::Rollback, error } if error.key == "ctrl-bogus"),
        "{err}"
    );
    assert!(err.to_string().contains("ctrl-bogus"));
}

#[test]
fn help_lists_every_binding_exactly_once() {
    let map = Keymap::default_map();
    let help = map.help();
    assert_eq!(help[0].0, HelpGroup::Incident.title());
    let rows: usize = help.iter().map(|(_, rows)| rows.len()).sum();
    assert_eq!(rows, map.bindings().len());
    let mut seen = HashSet::new();
    for binding in map.bindings() {
        let title = binding.help_group().title();
        let keys = binding
            .keys
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let group = &help.iter().find(|(t, _)| t == title).unwrap().1;
        let hits = group
            .iter()
            .filter(|(k, d)| *k == keys && *d == binding.desc)
            .count();
        assert_eq!(hits, 1, "{title}: {keys} {}", binding.desc);
        assert!(seen.insert((title, keys)), "duplicate help row");
    }
    // Every context title appears at most once.
    let titles: HashSet<_> = help.iter().map(|(t, _)| t).collect();
    assert_eq!(titles.len(), help.len());
}

#[test]
fn changes_world_flags() {
    let world = [
        Action::Approve,
        Action::PauseResume,
        Action::Promote,
        Action::PromoteFull,
        Action::SetWeight,
        Action::Retry,
        Action::Rollback,
        Action::Abort,
    ];
    for action in Action::ALL {
        assert_eq!(action.changes_world(), world.contains(action), "{action}");
    }
    let map = Keymap::default_map();
    for binding in map.bindings() {
        assert_eq!(
            binding.changes_world,
            world.contains(&binding.action),
            "{}",
            binding.action
        );
    }
    // Rebinding never clears the flag.
    let config: toml::Table = toml::from_str("rollback = [\"X\"]").unwrap();
    let map = map.with_overrides(&config).unwrap();
    assert!(
        map.bindings()
            .iter()
            .filter(|b| b.action == Action::Rollback)
            .all(|b| b.changes_world)
    );
}

#[test]
fn footer_is_short_and_in_keymap_order() {
    let map = Keymap::default_map();
    let footer = map.footer(Context::Canary);
    let expected: Vec<(String, String)> = [
        ("?", "help"),
        (":", "command"),
        ("tab", "pane"),
        ("R", "rollback"),
        ("q", "quit"),
    ]
    .iter()
    .map(|(k, l)| (k.to_string(), l.to_string()))
    .collect();
    assert_eq!(footer, expected);
}

#[test]
fn parse_command_cases() {
    assert_eq!(
        parse_command("rollback"),
        Ok(CommandLine::Rollback { reason: None })
    );
    assert_eq!(
        parse_command("rollback error rate above SLO"),
        Ok(CommandLine::Rollback {
            reason: Some("error rate above SLO".into())
        })
    );
    assert_eq!(parse_command("promote"), Ok(CommandLine::Promote));
    assert_eq!(
        parse_command("promote --full"),
        Ok(CommandLine::PromoteFull)
    );
    assert_eq!(parse_command("weight 50"), Ok(CommandLine::Weight(50)));
    assert_eq!(parse_command("weight 100"), Ok(CommandLine::Weight(100)));
    assert!(parse_command("weight 101").is_err());
    assert!(parse_command("weight x").is_err());
    assert_eq!(parse_command("pause"), Ok(CommandLine::Pause));
    assert_eq!(parse_command("resume"), Ok(CommandLine::Resume));
    assert_eq!(parse_command("approve"), Ok(CommandLine::Approve));
    assert_eq!(parse_command("retry"), Ok(CommandLine::Retry));
    assert_eq!(parse_command("abort"), Ok(CommandLine::Abort));
    assert_eq!(parse_command("quit"), Ok(CommandLine::Quit));
    assert_eq!(parse_command("q"), Ok(CommandLine::Quit));
    assert_eq!(parse_command("help"), Ok(CommandLine::Help));
    let err = parse_command("promot").unwrap_err();
    assert!(err.contains("did you mean `promote`"), "{err}");
    for command in [
        "rollback", "promote", "weight", "pause", "resume", "approve", "retry", "abort", "quit",
        "help",
    ] {
        assert!(err.contains(command), "{err} does not list {command}");
    }
}
