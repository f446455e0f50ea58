//! Running a node for years: `hedgerow config show|set`, `hedgerow completions SHELL` and
//! `hedgerow man`, all from definitions kept elsewhere (the config keys in
//! `hedgerow_node::config_file`, the command tree in `args.rs`).

use crate::args::{Cli, ConfigCommand};
use anyhow::{Context, Result};
use clap::CommandFactory;
use hedgerow_node::config_file::{self, env_name, to_pairs, ENV_PREFIX, KEYS};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::process::ExitCode;

/// `hedgerow config show|set`.
pub fn config(home: &Path, command: ConfigCommand) -> Result<ExitCode> {
    match command {
        ConfigCommand::Set { key, value } => {
            config_file::set(home, &key, &value)?;
            eprintln!(
                "set {key} in {}",
                home.join(config_file::TOML_FILE).display()
            );
        }
        ConfigCommand::Show(json) => show(home, json.json)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Every key with its value and source: the environment over the file over the default.
fn show(home: &Path, json: bool) -> Result<()> {
    let file = config_file::read_file(home)?;
    let mut effective = file.clone();
    let from_env = config_file::apply_env(&mut effective, std::env::vars())?;
    let in_file: Vec<String> = to_pairs(&file).into_iter().map(|(k, _)| k).collect();
    let file_name = if home.join(config_file::TOML_FILE).exists() {
        config_file::TOML_FILE
    } else {
        config_file::JSON_FILE
    };
    let set: Map<String, Value> = to_pairs(&effective)
        .into_iter()
        .map(|(k, v)| (k, toml_to_json(&v)))
        .collect();
    let mut rows = Vec::new();
    let mut names: Vec<String> = KEYS.iter().map(|k| k.name.to_string()).collect();
    names.extend(
        set.keys()
            .filter(|k| !names.contains(k))
            .cloned()
            .collect::<Vec<_>>(),
    );
    for name in names {
        let source = if from_env.contains(&name) {
            format!("{ENV_PREFIX}{}", env_name(&name))
        } else if in_file.contains(&name) {
            file_name.to_string()
        } else {
            "default".to_string()
        };
        let value = set.get(&name).cloned().unwrap_or(Value::Null);
        let doc = KEYS
            .iter()
            .find(|k| k.name == name)
            .map_or("fetch role for one commons", |k| k.doc);
        rows.push((name, value, source, doc));
    }
    if json {
        let out: Map<String, Value> = rows
            .into_iter()
            .map(|(name, value, source, _)| (name, json!({"value": value, "source": source})))
            .collect();
        println!("{}", serde_json::to_string_pretty(&Value::Object(out))?);
        return Ok(());
    }
    for (name, value, source, doc) in rows {
        let shown = match value {
            Value::Null => "(default)".to_string(),
            other => other.to_string(),
        };
        println!("{name} = {shown}  # {source}: {doc}");
    }
    Ok(())
}

fn toml_to_json(value: &toml_edit::Value) -> Value {
    match value {
        toml_edit::Value::String(s) => Value::String(s.value().clone()),
        toml_edit::Value::Integer(n) => json!(n.value()),
        toml_edit::Value::Boolean(b) => json!(b.value()),
        toml_edit::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        other => Value::String(other.to_string().trim().to_string()),
    }
}

/// `hedgerow completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "hedgerow", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// `hedgerow man [--out DIR]`: hedgerow.1 to standard output, or every page into DIR.
pub fn man(out: Option<&Path>) -> Result<ExitCode> {
    let command = Cli::command();
    match out {
        None => clap_mangen::Man::new(command)
            .render(&mut std::io::stdout())
            .context("cannot write the man page")?,
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("cannot write the man pages to {}", dir.display()))?;
            eprintln!("wrote the man pages to {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
